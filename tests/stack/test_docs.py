"""docs/stack.md names every alert, recording rule, dashboard and panel the
stack renders, so the reference does not fall behind the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

DOC = Path(__file__).parents[2] / "docs" / "stack.md"


def _doc_text() -> str:
    return re.sub(r"\s+", " ", DOC.read_text(encoding="utf-8"))


def test_docs_name_every_rule(files: dict[str, str]) -> None:
    text = _doc_text()
    for path, content in files.items():
        if not path.startswith("prometheus/rules/"):
            continue
        for group in yaml.safe_load(content)["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                assert f"`{name}`" in text or f"| {name} |" in text, f"{name} not in {DOC}"
                if "alert" in rule:
                    assert f"**{name}**" in text, f"{name} has no runbook in {DOC}"


def test_docs_name_every_dashboard_and_panel(files: dict[str, str]) -> None:
    text = _doc_text()
    for path, content in files.items():
        if not path.startswith("grafana/dashboards/"):
            continue
        dashboard = json.loads(content)
        assert f"### {dashboard['title']} (`{dashboard['uid']}`)" in text
        for panel in dashboard["panels"]:
            assert panel["title"] in text, f"{dashboard['title']}: {panel['title']!r}"
