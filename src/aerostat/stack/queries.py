"""Every PromQL expression of a rendered stack, with where it comes from, as
Prometheus can evaluate it: Grafana's variables replaced by concrete values.
A test that replays real Airflow traffic into a real Prometheus evaluates
them all, so a panel that can never show data is found without a browser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import yaml

# "All" in every drill-down variable, and the intervals Grafana would pick
# for a 1-hour range scraped every 15 s
DEFAULT_VARIABLES = {
    "deployment": ".*",
    "dag_id": ".*",
    "task_id": ".*",
    "pool": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)", re.S)


class Query(NamedTuple):
    origin: str  # file, and the panel, variable or rule in it
    expr: str


def substitute(expr: str, variables: Mapping[str, str], origin: str) -> str:
    def value(found: re.Match[str]) -> str:
        name = found[1] or found[2]
        if name not in variables:
            raise ValueError(f"{origin}: no value for Grafana variable ${name}")
        return variables[name]

    return _VARIABLE.sub(value, expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _dashboard_queries(path: str, text: str) -> Iterator[tuple[str, str]]:
    dashboard = json.loads(text)
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") != "query" or not isinstance(query, str):
            continue
        found = _LABEL_VALUES.fullmatch(query.strip())
        if found is None:
            raise ValueError(f"{path}: variable {variable['name']}: not label_values(): {query}")
        # what Grafana asks Prometheus for, as an expression
        yield (f"{path}: variable {variable['name']}",
               f"group by ({found['label']}) ({found['selector']})")
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield (f"{path}: panel {panel.get('id')} {panel.get('title')!r} query "
                       f"{target.get('refId')}", target["expr"])


def _rule_queries(path: str, text: str) -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            kind = "alert" if "alert" in rule else "record"
            yield f"{path}: {kind} {rule[kind]}", rule["expr"]


def all_queries(files: Mapping[str, str],
                variables: Mapping[str, str] | None = None) -> list[Query]:
    """The expressions of every dashboard panel and variable
    (``grafana/dashboards/*.json``) and every rule (``prometheus/rules/*.yml``)
    in ``files``, as render_stack() returns them. ``variables`` overrides
    DEFAULT_VARIABLES (e.g. ``{"deployment": "prod"}``)."""
    values = {**DEFAULT_VARIABLES, **(variables or {})}
    queries = []
    for path, text in sorted(files.items()):
        if path.startswith("grafana/dashboards/") and path.endswith(".json"):
            found = _dashboard_queries(path, text)
        elif path.startswith("prometheus/rules/") and path.endswith(".yml"):
            found = _rule_queries(path, text)
        else:
            continue
        queries += [Query(origin, substitute(expr, values, origin)) for origin, expr in found]
    return queries
