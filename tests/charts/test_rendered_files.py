"""The platform chart's rules and dashboards are `aerostat stack render`'s
files, byte for byte: one source of truth for the local stack, compose and
Helm."""

from __future__ import annotations

from pathlib import Path

from aerostat.stack.render import render_stack

FILES = Path(__file__).resolve().parents[2] / "charts/aerostat-platform/files"
# chart folder ← rendered folder
FOLDERS = {"rules": "prometheus/rules/", "dashboards": "grafana/dashboards/"}
REGENERATE = "run .venv/bin/python tools/sync_chart_files.py"


def test_the_chart_carries_exactly_the_rendered_rules_and_dashboards() -> None:
    rendered = render_stack()
    for folder, prefix in FOLDERS.items():
        wanted = {path.removeprefix(prefix): text for path, text in rendered.items()
                  if path.startswith(prefix)}
        assert wanted, f"render_stack gave no {prefix} files"
        present = {path.name: path.read_text() for path in (FILES / folder).iterdir()}
        assert sorted(present) == sorted(wanted), f"charts files/{folder} drifted: {REGENERATE}"
        for name, text in wanted.items():
            assert present[name] == text, f"files/{folder}/{name} drifted: {REGENERATE}"
