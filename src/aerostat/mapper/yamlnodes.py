"""Reading YAML as nodes, so that every mistake names the file, the line
and column of the offending node and its key path: the structure (mappings,
lists, unknown keys), Go's scalars (numbers as Go's YAML reads them, Go
duration strings) and YAML's own errors, located. The mapping schema that
uses it is config.py."""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections.abc import Sequence
from typing import NoReturn, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aerostat.errors import AerostatError

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"

# Go's time.ParseDuration: [sign] then (number unit)+, or a bare "0".
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# A plain scalar PyYAML leaves as a string but Go's YAML reads as a float.
_GO_FLOAT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?").fullmatch

def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration string (``1m30s``, ``500ms``, ``0``), or
    None if it is not one. The sign is kept; callers refuse negatives."""
    sign = 1.0
    if text[:1] in ("-", "+"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        return None
    total = 0.0
    pos = 0
    while pos < len(text):
        part = _DURATION_PART.match(text, pos)
        if part is None or part.end() == pos:
            return None
        whole, fraction, unit = part.groups()
        if not whole and not fraction:
            return None
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            return None
        total += float(f"{whole or 0}.{fraction or 0}") * scale
        pos = part.end()
    return sign * total


_E = TypeVar("_E", bound=enum.Enum)


class NodeReader:
    """Walks the composed YAML; every check that fails raises through
    ``fail`` with the node's position."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader

    def fail(self, node: Node, field: str | None, message: str) -> NoReturn:
        mark = node.start_mark
        raise AerostatError(
            message, source=self.source, line=mark.line + 1, column=mark.column + 1, field=field
        )

    # -- structure --------------------------------------------------------

    def pairs(self, node: Node, field: str | None) -> list[tuple[str, Node, Node]]:
        """The entries of a mapping node, in file order; null reads as empty."""
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, MappingNode):
            self.fail(node, field, f"expected a mapping of keys to values, got {describe(node)}")
        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, ScalarNode):
                self.fail(
                    key_node,
                    join(field, "<key>"),
                    f"a key must be a plain value, got {describe(key_node)}",
                )
            key = key_node.value
            if key in seen:
                first = seen[key].start_mark.line + 1
                self.fail(
                    key_node, join(field, key), f"key '{key}' repeated (first on line {first})"
                )
            seen[key] = key_node
        # "<<" merge keys: PyYAML puts the merged entries first, so the last
        # entry for a key is the one that counts.
        self.loader.flatten_mapping(node)
        entries: dict[str, tuple[str, Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.fail(key_node, join(field, "<key>"), "a merged key must be a plain value")
            entries[key_node.value] = (key_node.value, key_node, value_node)
        return list(entries.values())

    def fields(self, node: Node, field: str | None, allowed: Sequence[str]) -> dict[str, Node]:
        """A mapping with a fixed set of keys: unknown ones are errors."""
        out: dict[str, Node] = {}
        for key, key_node, value_node in self.pairs(node, field):
            if key not in allowed:
                self.fail(key_node, join(field, key), _unknown_key(key, allowed))
            out[key] = value_node
        return out

    def items(self, node: Node, field: str) -> list[Node]:
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, SequenceNode):
            self.fail(node, field, f"expected a list, got {describe(node)}")
        return list(node.value)

    # -- scalars ----------------------------------------------------------

    def string(self, node: Node, field: str) -> str | None:
        """Any scalar as written (Go's YAML does the same for a string
        field); None for null."""
        if not isinstance(node, ScalarNode):
            self.fail(node, field, f"expected a string, got {describe(node)}")
        return None if node.tag == _NULL else str(node.value)

    def number(self, node: Node, field: str) -> float:
        value: float | None = None
        if isinstance(node, ScalarNode):
            if node.tag == _INT:
                value = float(self.loader.construct_yaml_int(node))
            elif node.tag == _FLOAT:
                value = float(self.loader.construct_yaml_float(node))
            elif node.tag == _STR and node.style is None and _GO_FLOAT(node.value):
                value = float(node.value)  # 1e-6: YAML 1.1 wants a dot, Go does not
        if value is None:
            self.fail(node, field, f"expected a number, got {describe(node)}")
        return value

    def finite(self, node: Node, field: str) -> float:
        value = self.number(node, field)
        if not math.isfinite(value):
            self.fail(node, field, f"expected a finite number, got {value}")
        return value

    def count(self, node: Node, field: str) -> int:
        if not (isinstance(node, ScalarNode) and node.tag == _INT):
            self.fail(node, field, f"expected a whole number, got {describe(node)}")
        value = int(self.loader.construct_yaml_int(node))
        if value < 0:
            self.fail(node, field, f"must not be negative, got {value}")
        return value

    def boolean(self, node: Node, field: str) -> bool:
        if not (isinstance(node, ScalarNode) and node.tag == _BOOL):
            self.fail(node, field, f"expected true or false, got {describe(node)}")
        return bool(self.loader.construct_yaml_bool(node))

    def duration(self, node: Node, field: str) -> float:
        """Seconds. A Go duration string (``1m30s``) as upstream; a bare
        number is read as seconds."""
        seconds: float | None
        if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT):
            # deviation: upstream reads a bare number as nanoseconds.
            seconds = self.number(node, field)
        elif isinstance(node, ScalarNode) and node.tag == _STR:
            seconds = parse_duration(node.value)
            if seconds is None:
                self.fail(
                    node,
                    field,
                    f"invalid duration '{node.value}': write a number with a unit, "
                    "as in 30s, 1m30s, 500ms, 2h",
                )
        else:
            self.fail(node, field, f"expected a duration such as 30s, got {describe(node)}")
        if not math.isfinite(seconds) or seconds < 0:
            self.fail(node, field, f"a duration must be zero or more, got {node.value}")
        return seconds

    def choice(self, node: Node, field: str, enum_type: type[_E], what: str) -> _E:
        text = self.string(node, field) or ""
        try:
            return enum_type(text)
        except ValueError:
            allowed = " or ".join(member.value for member in enum_type)
            self.fail(node, field, f"invalid {what} '{text}': expected {allowed}")


def join(field: str | None, key: str) -> str:
    return key if field is None else f"{field}.{key}"


def describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    return f"'{node.value}'"


def _unknown_key(key: str, allowed: Sequence[str]) -> str:
    message = f"unknown key '{key}'"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    return message + "; known keys: " + ", ".join(allowed)


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def syntax_error(exc: yaml.YAMLError, source: str) -> AerostatError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        if exc.context == "while scanning an alias":
            what += " (a value starting with '*' must be quoted: \"*.foo\")"
        return AerostatError(
            f"invalid YAML: {what}",
            source=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
    return AerostatError(f"invalid YAML: {exc}", source=source)


def unreadable(exc: yaml.reader.ReaderError, text: str, source: str) -> AerostatError:
    """A character YAML does not allow (a control character, say), located."""
    before = text[: exc.position]
    return AerostatError(
        f"invalid YAML: the control character U+{exc.character:04X} is not allowed",
        source=source,
        line=before.count("\n") + 1,
        column=exc.position - (before.rfind("\n") + 1) + 1,
    )
