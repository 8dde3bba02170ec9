"""The rendered Prometheus files pass Prometheus's own checks (promtool from
Debian's prometheus 2.42, what ./run installs), every alert has a unit test
where it fires and one where it does not, and every recording rule is
pinned by one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

RULE_FILES = ("airflow-recording.yml", "airflow-alerts.yml", "aerostat-alerts.yml")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: ./run tests installs it (Debian package prometheus)"
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config(rendered: Path) -> None:
    # also loads and checks the rule files that rule_files names
    result = _promtool("check", "config", "prometheus/prometheus.yml", cwd=rendered)
    _ok(result)
    assert "3 rule files found" in result.stdout


def test_promtool_check_rules(rendered: Path) -> None:
    _ok(_promtool("check", "rules", *(f"prometheus/rules/{name}" for name in RULE_FILES),
                  cwd=rendered))


def test_promtool_test_rules(rendered: Path) -> None:
    tests = sorted(p.name for p in (rendered / "prometheus/tests").glob("*.test.yml"))
    assert tests
    result = _promtool("test", "rules", *tests, cwd=rendered / "prometheus/tests")
    _ok(result)
    assert result.stdout.count("SUCCESS") == len(tests)


def test_a_wrong_expectation_fails(rendered: Path, tmp_path: Path) -> None:
    """The unit tests compare the rendered annotations: a wrong one fails."""
    tests = tmp_path / "prometheus/tests"
    tests.mkdir(parents=True)
    shutil.copytree(rendered / "prometheus/rules", tmp_path / "prometheus/rules")
    text = (rendered / "prometheus/tests/airflow-alerts.test.yml").read_text()
    assert "20m 0s" in text
    (tests / "broken.test.yml").write_text(text.replace("20m 0s", "19m 0s"))
    result = _promtool("test", "rules", "broken.test.yml", cwd=tests)
    assert result.returncode != 0
    assert "AirflowDagFileNotParsed" in result.stdout + result.stderr


def _rules(files: dict[str, str]) -> list[dict[str, Any]]:
    return [rule for name in RULE_FILES
            for group in yaml.safe_load(files[f"prometheus/rules/{name}"])["groups"]
            for rule in group["rules"]]


def _unit_tests(files: dict[str, str]) -> list[dict[str, Any]]:
    return [group for path, text in files.items() if path.startswith("prometheus/tests/")
            for group in yaml.safe_load(text)["tests"]]


def _alert_names(files: dict[str, str]) -> list[str]:
    return [rule["alert"] for rule in _rules(files) if "alert" in rule]


def test_every_alert_fires_and_stays_quiet_in_a_test(files: dict[str, str]) -> None:
    fires, quiet = set(), set()
    for group in _unit_tests(files):
        for check in group.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = set(_alert_names(files))
    assert alerts - fires == set(), "alerts without a test where they fire"
    assert alerts - quiet == set(), "alerts without a test where they must not fire"
    assert (fires | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_every_recording_rule_is_tested(files: dict[str, str]) -> None:
    tested = {check["expr"] for group in _unit_tests(files)
              for check in group.get("promql_expr_test", [])}
    recorded = {rule["record"] for rule in _rules(files) if "record" in rule}
    assert recorded - tested == set()


def test_alerts_say_what_and_how_bad(files: dict[str, str]) -> None:
    names = _alert_names(files)
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in _rules(files):
        if "alert" not in rule:
            continue
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, rule["alert"]
        assert "\n" not in annotations["runbook"], f"{rule['alert']}: runbook is one line"
        assert all(len(text) > 30 for text in annotations.values()), rule["alert"]


@pytest.mark.parametrize("alert", [
    "AirflowSchedulerDown", "AirflowSchedulerProcessDown", "AirflowDagProcessorDown",
    "AirflowDagProcessorProcessDown", "AirflowTriggererDown", "AirflowTriggererProcessDown",
    "AirflowDeploymentSilent", "AirflowDagFileNotParsed", "AirflowDagImportErrors",
    "AirflowTaskFailureRatioHigh", "AirflowPoolStarving", "AirflowTasksKilledWithoutHeartbeat",
    "AirflowExecutorBacklogGrowing", "AirflowTriggererFull",
    "AerostatDown", "AerostatDroppingDatagrams", "AerostatRefusingSeries", "AerostatNoTraffic",
])
def test_alert_exists(files: dict[str, str], alert: str) -> None:
    assert alert in _alert_names(files)


def test_airflow_rules_work_per_deployment(files: dict[str, str]) -> None:
    for rule in yaml.safe_load(files["prometheus/rules/airflow-alerts.yml"])["groups"][0][
            "rules"]:
        assert "deployment" in rule["expr"], rule["alert"]


def test_alertmanager_example_names_real_alerts(files: dict[str, str]) -> None:
    config = yaml.safe_load(files["alertmanager/alertmanager.yml"])
    alerts = set(_alert_names(files))
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            found = re.fullmatch(r'alertname(=~?)"(.+)"', matcher)
            assert found, matcher
            operator, value = found.groups()
            matched = {a for a in alerts if (re.fullmatch(value, a) if operator == "=~"
                                             else a == value)}
            assert matched, f"{matcher} matches none of the alerts"
