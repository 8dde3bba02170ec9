"""The dashboards: stable uids, the shared variables, a description on every
panel, queries that keep to the chosen deployments and do the math right,
and every expression valid PromQL for Prometheus 2.42 (promtool parses them
as recording rules). all_queries() lists each of them ready to evaluate."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aerostat.stack import all_queries

UIDS = {
    "airflow-overview": "aerostat-airflow-overview",
    "airflow-scheduler": "aerostat-airflow-scheduler",
    "airflow-pools-executor": "aerostat-airflow-pools",
    "airflow-dag-processing": "aerostat-airflow-dag-processing",
    "airflow-dags-tasks": "aerostat-airflow-dags",
    "airflow-triggerer": "aerostat-airflow-triggerer",
}
IN_DEPLOYMENT = 'deployment=~"$deployment"'
# a metric name and its matchers, if any (recorded series start with "deployment:")
SELECTOR = re.compile(
    r"(?<![\w:$])(?P<name>[a-zA-Z_][\w:]*)(?![\w:])(?P<matchers>\{[^}]*\})?(?!\s*\()")
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+), \w+\)")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "le",
            # aggregations, whose "(" comes after their by (...) clause
            "sum", "min", "max", "avg", "count", "group", "topk", "bottomk"}


def _dashboards(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {Path(path).stem: json.loads(text) for path, text in files.items()
            if path.startswith("grafana/dashboards/")}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            yield panel


def _exprs(files: dict[str, str], *, variables: bool = True) -> Iterator[tuple[str, str]]:
    """(where, expr) of every panel target, and the selector of every
    drill-down variable, before substitution."""
    for name, dashboard in _dashboards(files).items():
        for variable in dashboard["templating"]["list"] if variables else []:
            # the deployment variable lists every deployment: it cannot filter by itself
            if variable["type"] == "query" and variable["name"] != "deployment":
                found = LABEL_VALUES.fullmatch(variable["query"])
                assert found, variable["query"]
                yield f"{name} variable {variable['name']}", found["selector"]
        for panel in _panels(dashboard):
            for target in panel["targets"]:
                yield f"{name}: {panel['title']}", target["expr"]


def _selectors(expr: str) -> Iterator[tuple[str, str, int]]:
    """(metric, matchers, position) of every series selector in expr."""
    without_strings = re.sub(r'"[^"]*"', lambda m: '"' + "x" * (len(m[0]) - 2) + '"', expr)
    without_ranges = re.sub(r"\[[^\]]*\]", lambda m: " " * len(m[0]), without_strings)
    for found in SELECTOR.finditer(without_ranges):
        name = found["name"]
        if name in KEYWORDS or re.fullmatch(r"[0-9.e]+", name):
            continue
        before = without_ranges[:found.start()].rstrip()
        if before.endswith(("by (", "by(", "on (", "on(")) or re.search(
                r"(by|on|without|ignoring)\s*\([\w\s,]*$", before):
            continue  # a label in a grouping clause
        matchers = expr[found.start("matchers"):found.end("matchers")] if found["matchers"] else ""
        yield name, matchers, found.start()


def test_uids_are_stable(files: dict[str, str]) -> None:
    assert {name: d["uid"] for name, d in _dashboards(files).items()} == UIDS


def test_every_dashboard_has_datasource_and_deployment_variables(files: dict[str, str]) -> None:
    for name, dashboard in _dashboards(files).items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        datasource = variables["datasource"]
        assert datasource["type"] == "datasource" and datasource["query"] == "prometheus", name
        assert datasource["current"]["value"] == "aerostat-prometheus", name
        deployment = variables["deployment"]
        assert deployment["query"] == "label_values(airflow_scheduler_heartbeat_total, deployment)"
        assert deployment["multi"] and deployment["includeAll"], name
        # matches series without the label too: one deployment, no prefix
        assert deployment["allValue"] == ".*", name


def test_drill_down_variables(files: dict[str, str]) -> None:
    dashboard = _dashboards(files)["airflow-dags-tasks"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "deployment", "dag_id", "task_id"]
    assert IN_DEPLOYMENT in variables["dag_id"]["query"]
    assert 'dag_id=~"$dag_id"' in variables["task_id"]["query"]


def test_every_panel_explains_itself(files: dict[str, str]) -> None:
    for name, dashboard in _dashboards(files).items():
        for panel in _panels(dashboard):
            description = panel.get("description", "")
            assert len(description) > 80, f"{name}: {panel['title']}: description too short"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_panels_are_numbered_and_fit_the_grid(files: dict[str, str]) -> None:
    for name, dashboard in _dashboards(files).items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert ids == list(range(1, len(ids) + 1)), name
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel.get('title')}"
            refs = [target["refId"] for target in panel.get("targets", [])]
            assert len(refs) == len(set(refs)), f"{name}: {panel.get('title')}"


def test_every_airflow_query_keeps_to_the_chosen_deployments(files: dict[str, str]) -> None:
    for where, expr in _exprs(files):
        for name, matchers, _ in _selectors(expr):
            if name.startswith(("airflow_", "deployment:")):
                assert IN_DEPLOYMENT in matchers, f"{where}: {name} in {expr}"
            else:
                # aerostat's own metrics carry no deployment
                assert name.startswith(("aerostat_", "statsd_exporter_", "up")), f"{where}: {name}"
                assert 'job="aerostat"' in matchers, f"{where}: {expr}"


def test_counters_only_through_rate_or_increase(files: dict[str, str]) -> None:
    for where, expr in _exprs(files, variables=False):
        for name, _, position in _selectors(expr):
            if name.endswith(("_total", "_count", "_bucket", "_sum")):
                assert expr[:position].endswith(("rate(", "increase(")), f"{where}: {expr}"


def test_quantiles_from_buckets_summed_by_le(files: dict[str, str]) -> None:
    quantile = re.compile(r"histogram_quantile\(0\.\d+, sum by \(le(, [\w, ]+)?\) "
                          r"\(rate\(\w+_bucket\{[^}]*\}\[\$__rate_interval\]\)\)\)")
    seen = 0
    for where, expr in _exprs(files):
        calls = expr.count("histogram_quantile(")
        assert len(quantile.findall(expr)) == calls, f"{where}: {expr}"
        # a sum (or average) of quantiles is not a quantile
        assert not re.search(r"(sum|avg)\s*(by\s*\([^)]*\)\s*)?\(\s*histogram_quantile", expr)
        seen += calls
    assert seen > 10


def test_recorded_series_in_dashboards_exist(files: dict[str, str]) -> None:
    recorded = {rule["record"] for group in yaml.safe_load(
        files["prometheus/rules/airflow-recording.yml"])["groups"] for rule in group["rules"]}
    used = {name for _, expr in _exprs(files) for name, _, _ in _selectors(expr)
            if name.startswith("deployment:")}
    assert used and used <= recorded


def test_all_queries_lists_every_panel_variable_and_rule(files: dict[str, str]) -> None:
    queries = all_queries(files)
    rules = [rule for path, text in files.items() if path.startswith("prometheus/rules/")
             for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]
    deployment_variables = len(_dashboards(files))
    assert len(queries) == len(list(_exprs(files))) + deployment_variables + len(rules)
    for origin, expr in queries:
        assert "$" not in expr, f"{origin}: {expr}"
        assert "label_values" not in expr, origin
    origins = [origin for origin, _ in queries]
    assert len(origins) == len(set(origins))
    assert ("grafana/dashboards/airflow-overview.json: panel 2 'Schedulers alive' query A"
            in origins)
    assert "prometheus/rules/airflow-alerts.yml: alert AirflowSchedulerDown" in origins


def test_all_queries_substitutes_given_values(files: dict[str, str]) -> None:
    queries = dict(all_queries(files, {"deployment": "prod", "__rate_interval": "2m"}))
    expr = queries["grafana/dashboards/airflow-scheduler.json: panel 4 "
                   "'Heartbeats per scheduler process' query A"]
    assert expr == ('sum by (deployment, sender) (rate(airflow_scheduler_heartbeat_total'
                    '{deployment=~"prod"}[2m]))')
    variable = queries["grafana/dashboards/airflow-dags-tasks.json: variable task_id"]
    assert variable == ('group by (task_id) (airflow_task_duration_seconds_count'
                        '{deployment=~"prod", dag_id=~".*"})')


def test_all_queries_refuses_unknown_variables(files: dict[str, str]) -> None:
    broken = files["grafana/dashboards/airflow-overview.json"].replace(
        "$__rate_interval", "$__unknown", 1)
    with pytest.raises(ValueError, match=r"\$__unknown"):
        all_queries({"grafana/dashboards/airflow-overview.json": broken})


def test_every_query_is_valid_promql(files: dict[str, str], tmp_path: Path) -> None:
    """promtool parses each expression (Grafana variables substituted) as
    the expression of a recording rule."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: ./run tests installs it (Debian package prometheus)"
    rules = [{"record": f"aerostat:query_check:{index}", "expr": expr}
             for index, (_, expr) in enumerate(all_queries(files))]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize(("check", "old", "new"), [
    pytest.param(test_every_airflow_query_keeps_to_the_chosen_deployments,
                 r'airflow_ti_successes_total{deployment=~\"$deployment\"}',
                 "airflow_ti_successes_total", id="unfiltered"),
    pytest.param(test_counters_only_through_rate_or_increase,
                 r'rate(airflow_ti_successes_total{deployment=~\"$deployment\"}[$__rate_interval])',
                 r'airflow_ti_successes_total{deployment=~\"$deployment\"}', id="raw-counter"),
    pytest.param(test_quantiles_from_buckets_summed_by_le,
                 "sum by (le, deployment) (rate(airflow_scheduler_scheduler_loop",
                 "sum by (deployment) (rate(airflow_scheduler_scheduler_loop", id="no-le"),
    pytest.param(test_quantiles_from_buckets_summed_by_le,
                 "histogram_quantile(0.95, sum by (le, deployment) (rate(airflow_dagrun_schedule",
                 "sum(histogram_quantile(0.95, sum by (le, deployment) (rate("
                 "airflow_dagrun_schedule", id="summed-quantile"),
    pytest.param(test_every_panel_explains_itself, '"description": "How late DAG runs',
                 '"description": "", "x": "', id="no-description"),
])
def test_the_checks_catch_mistakes(files: dict[str, str], check: Any, old: str,
                                   new: str) -> None:
    mutated = {path: text.replace(old, new, 1) for path, text in files.items()}
    assert mutated != files, f"{old!r} is not in the dashboards"
    with pytest.raises(AssertionError):
        check(mutated)
