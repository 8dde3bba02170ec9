"""render_stack's layout and options, write_stack, `aerostat stack render`,
and the committed copy in stack/ staying what render_stack produces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aerostat.cli import main
from aerostat.errors import AerostatError
from aerostat.stack import StackOptions, render_stack, write_stack

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "stack"

# other parts of aerostat (aerostat up, the Helm chart, docker-compose)
# read these paths
LAYOUT = {
    "prometheus/prometheus.yml",
    "prometheus/rules/airflow-recording.yml",
    "prometheus/rules/airflow-alerts.yml",
    "prometheus/rules/aerostat-alerts.yml",
    "prometheus/tests/airflow-recording.test.yml",
    "prometheus/tests/airflow-alerts.test.yml",
    "prometheus/tests/aerostat-alerts.test.yml",
    "alertmanager/alertmanager.yml",
    "grafana/provisioning/datasources/aerostat.yml",
    "grafana/provisioning/dashboards/aerostat.yml",
    "grafana/dashboards/airflow-overview.json",
    "grafana/dashboards/airflow-scheduler.json",
    "grafana/dashboards/airflow-pools-executor.json",
    "grafana/dashboards/airflow-dag-processing.json",
    "grafana/dashboards/airflow-dags-tasks.json",
    "grafana/dashboards/airflow-triggerer.json",
}


def test_layout(files: dict[str, str]) -> None:
    assert set(files) == LAYOUT


def test_rendering_is_deterministic(files: dict[str, str]) -> None:
    assert render_stack() == files


def test_committed_copy_is_current(files: dict[str, str]) -> None:
    regenerate = "regenerate it with: ./run aerostat stack render stack"
    on_disk = {path.relative_to(COMMITTED).as_posix(): path.read_text(encoding="utf-8")
               for path in COMMITTED.rglob("*") if path.is_file()}
    assert sorted(on_disk) == sorted(files), f"stack/ has other files than rendered; {regenerate}"
    stale = [path for path, text in sorted(files.items()) if on_disk[path] != text]
    assert not stale, f"stack/ differs from render_stack() in {stale}; {regenerate}"


def test_default_options(files: dict[str, str]) -> None:
    prometheus = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert prometheus["rule_files"] == ["rules/*.yml"]
    assert prometheus["global"]["scrape_interval"] == "15s"
    (job,) = prometheus["scrape_configs"]
    assert job["job_name"] == "aerostat"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9102"]}]
    assert "alerting" not in prometheus
    assert "# alerting:" in files["prometheus/prometheus.yml"]
    (source,) = yaml.safe_load(files["grafana/provisioning/datasources/aerostat.yml"])[
        "datasources"]
    assert source["uid"] == "aerostat-prometheus"
    assert source["url"] == "http://127.0.0.1:9090"
    assert source["jsonData"]["timeInterval"] == "15s"
    (provider,) = yaml.safe_load(files["grafana/provisioning/dashboards/aerostat.yml"])[
        "providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/aerostat"


def _deployment_variable(files: dict[str, str], name: str) -> dict[str, object]:
    dashboard = json.loads(files[f"grafana/dashboards/{name}.json"])
    (variable,) = (v for v in dashboard["templating"]["list"] if v["name"] == "deployment")
    return variable


def test_options_reach_the_files() -> None:
    files = render_stack(StackOptions(
        deployments=("prod", "staging"), aerostat_targets=("a:9102", "b:9102"),
        scrape_interval="30s", prometheus_url="http://prometheus:9090",
        alertmanager="alertmanager:9093", grafana_dashboards_dir="/dashboards"))
    prometheus = yaml.safe_load(files["prometheus/prometheus.yml"])
    assert prometheus["global"] == {"scrape_interval": "30s", "evaluation_interval": "30s"}
    assert prometheus["scrape_configs"][0]["static_configs"] == [
        {"targets": ["a:9102", "b:9102"]}]
    assert prometheus["alerting"]["alertmanagers"] == [
        {"static_configs": [{"targets": ["alertmanager:9093"]}]}]
    source = yaml.safe_load(files["grafana/provisioning/datasources/aerostat.yml"])
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert source["datasources"][0]["jsonData"]["timeInterval"] == "30s"
    provider = yaml.safe_load(files["grafana/provisioning/dashboards/aerostat.yml"])
    assert provider["providers"][0]["options"]["path"] == "/dashboards"
    for name in ("airflow-overview", "airflow-dags-tasks"):
        assert _deployment_variable(files, name)["current"] == {
            "selected": True, "text": ["prod", "staging"], "value": ["prod", "staging"]}


def test_all_deployments_by_default(files: dict[str, str]) -> None:
    variable = _deployment_variable(files, "airflow-overview")
    assert variable["current"] == {"selected": True, "text": ["All"], "value": ["$__all"]}


@pytest.mark.parametrize(("options", "flag"), [
    pytest.param(StackOptions(scrape_interval="1m"), "--scrape-interval", id="slow-scrape"),
    pytest.param(StackOptions(scrape_interval="15"), "--scrape-interval", id="no-unit"),
    pytest.param(StackOptions(aerostat_targets=("aerostat",)), "--aerostat-target",
                 id="no-port"),
    pytest.param(StackOptions(aerostat_targets=("a:99999",)), "--aerostat-target",
                 id="port-range"),
    pytest.param(StackOptions(aerostat_targets=()), "--aerostat-target", id="no-target"),
    pytest.param(StackOptions(alertmanager="am"), "--alertmanager", id="alertmanager"),
    pytest.param(StackOptions(prometheus_url="prometheus:9090"), "--prometheus-url",
                 id="url"),
    pytest.param(StackOptions(grafana_dashboards_dir="dashboards"),
                 "--grafana-dashboards-dir", id="relative-dir"),
    pytest.param(StackOptions(deployments=("",)), "--deployment", id="empty-deployment"),
])
def test_bad_options_name_their_flag(options: StackOptions, flag: str) -> None:
    with pytest.raises(AerostatError) as raised:
        render_stack(options)
    assert raised.value.source == flag


def test_write_removes_files_no_longer_rendered(files: dict[str, str], tmp_path: Path) -> None:
    leftover = tmp_path / "prometheus/rules/old-alerts.yml"
    mine = tmp_path / "prometheus/web.yml"  # not in a globbed directory: kept
    for path in (leftover, mine):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("groups: []\n")
    removed = write_stack(tmp_path, files)
    assert removed == [leftover]
    assert not leftover.exists() and mine.exists()
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(files) | {"prometheus/web.yml"}


def test_write_into_a_file_is_a_user_error(files: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "prometheus").write_text("not a directory")
    with pytest.raises(AerostatError, match="cannot write"):
        write_stack(tmp_path, files)


def test_cli_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["stack", "render", str(tmp_path / "out"), "--deployment", "prod",
                   "--aerostat-target", "aerostat:9102"])
    assert status == 0
    assert capsys.readouterr().out == f"{tmp_path / 'out'}: wrote {len(LAYOUT)} files\n"
    prometheus = yaml.safe_load((tmp_path / "out/prometheus/prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"] == [
        {"targets": ["aerostat:9102"]}]


@pytest.mark.parametrize("args", [
    ["--scrape-interval", "5m"],
    ["--aerostat-target", "no-port"],
])
def test_cli_user_mistake_is_one_line(tmp_path: Path, args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", "stack", "render", str(tmp_path), *args],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("aerostat: error: --")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not any(tmp_path.iterdir())
