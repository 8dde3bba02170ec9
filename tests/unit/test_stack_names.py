"""Every metric name a rendered dashboard or rule asks for exists: the
Airflow ones in the exported metric list, the recorded ones in a rule. A
rename in the mapping fails here, in the fast loop, instead of only in the
minute-long run against a real Prometheus (tests/stack)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from aerostat.airflow.api import API_METRICS
from aerostat.airflow.mapping import airflow_mapping, airflow_metrics
from aerostat.stack import render_stack
from aerostat.stack.queries import all_queries
from aerostat.store import MetricType
from aerostat.store.registry import BY_SENDER, sample_names

# a metric name: letters, digits, underscores and colons, not inside a string
_NAME = re.compile(r'"[^"]*"|\b[a-zA-Z_:][a-zA-Z0-9_:]*\b')


def exported_names() -> set[str]:
    names = set()
    for metric in airflow_metrics():
        names.update(sample_names(metric.name, MetricType(metric.type)))
        names.add(metric.name + BY_SENDER)
    for rule in airflow_mapping().rules:  # the gauges derived at scrape time
        if rule.built_in is not None and rule.built_in.liveness is not None:
            names.update(rule.built_in.liveness[:2])
    for api_metric in API_METRICS:  # what the REST-API source shows
        names.update(sample_names(api_metric.name, MetricType(api_metric.type)))
    return names


def recorded_names(files: dict[str, str]) -> set[str]:
    return {rule["record"]
            for path, text in files.items()
            if path.startswith("prometheus/rules/")
            for group in yaml.safe_load(text)["groups"]
            for rule in group["rules"] if "record" in rule}


def names_in(expr: str) -> set[str]:
    return {token for token in _NAME.findall(expr) if not token.startswith(('"', ':'))}


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return render_stack()


def test_every_airflow_name_asked_for_is_exported(files: dict[str, str]) -> None:
    exported = exported_names()
    missing = {
        (query.origin, name)
        for query in all_queries(files)
        for name in names_in(query.expr)
        if name.startswith("airflow_") and name not in exported
    }
    assert not missing, sorted(missing)


def test_every_recorded_name_asked_for_is_recorded(files: dict[str, str]) -> None:
    recorded = recorded_names(files)
    missing = {
        (query.origin, name)
        for query in all_queries(files)
        for name in names_in(query.expr)
        if ":" in name and name not in recorded
    }
    assert not missing, sorted(missing)


def test_the_check_sees_a_rename() -> None:
    exported = exported_names()
    assert "airflow_ti_finish_total" in exported
    assert not names_in('sum(rate(airflow_ti_finished_total{state="x"}[5m]))') <= exported


def test_alert_texts_name_the_default_deployment_never_an_empty_one() -> None:
    """"…in deployment  failed" with traffic that names no deployment: the
    texts fall back to the name --airflow gives such traffic."""
    from aerostat.airflow.frontend import DEFAULT_DEPLOYMENT

    rules = "\n".join(text for path, text in render_stack().items()
                      if path.startswith("prometheus/rules/"))
    mentions = re.findall(r"\{\{[^}]*\$labels\.deployment[^}]*\}\}", rules)
    assert mentions
    assert set(mentions) == {f"{{{{ or $labels.deployment `{DEFAULT_DEPLOYMENT}` }}}}"}


def test_no_name_carries_the_prefix_twice(files: dict[str, str]) -> None:
    """Airflow names some metrics with its own prefix inside
    (airflow.io.load_filesystems): the catalog must not export
    airflow_airflow_io_..., nor may any document, dashboard or rule say so."""
    root = Path(__file__).resolve().parents[2]
    doubled = re.compile(r"airflow_airflow_\w*")
    found = {name for name in exported_names() if doubled.search(name)}
    for path in [*root.glob("docs/*.md"), root / "README.md"]:
        found.update(f"{path.name}: {name}" for name in doubled.findall(path.read_text()))
    found.update(f"{path}: {name}" for path, text in files.items()
                 for name in doubled.findall(text))
    assert found == set()
