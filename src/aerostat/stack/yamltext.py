"""YAML text for the rendered files: keys in the order written, multi-line
strings (PromQL, descriptions) as literal blocks so a reviewer reads the
expression as it was written, not as one escaped line."""

from __future__ import annotations

from typing import Any

import yaml


class _BlockDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    if "\n" in text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", text)


_BlockDumper.add_representer(str, _represent_str)


def dump_yaml(data: Any, header: str = "") -> str:
    """``data`` as YAML; ``header`` lines become ``#`` comments on top."""
    body = yaml.dump(
        # no folding of long lines: a fold inside a {{ template }} reads wrong
        data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=1_000_000,
        default_flow_style=False,
    )
    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comments + body
