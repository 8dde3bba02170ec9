"""Copies `aerostat stack render`'s rules and dashboards into the platform
Helm chart (charts/aerostat-platform/files/), replacing what was there.
tests/charts/test_rendered_files.py fails until this has been run after a
change to the stack."""

from __future__ import annotations

import shutil
from pathlib import Path

from aerostat.stack.render import render_stack

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "charts/aerostat-platform/files"
FOLDERS = {"rules": "prometheus/rules/", "dashboards": "grafana/dashboards/"}


def main() -> None:
    rendered = render_stack()
    for folder, prefix in FOLDERS.items():
        target = FILES / folder
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path, text in rendered.items():
            if path.startswith(prefix):
                (target / path.removeprefix(prefix)).write_text(text)
                print(f"wrote {target / path.removeprefix(prefix)}")


if __name__ == "__main__":
    main()
