"""docker-compose.yml and the rendered files it mounts (deploy/compose/).

No Docker engine runs where the tests run, so the compose file is checked as
data: its services, images, commands and ports, every file it mounts exists
in the repository, and the mounted configuration points each service at the
others by their compose names and ports. deploy/compose/ must be exactly what
``aerostat stack render`` makes with the options below."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from aerostat.stack import StackOptions, render_stack

ROOT = Path(__file__).resolve().parents[2]
RENDERED = ROOT / "deploy" / "compose"
DASHBOARDS_IN_GRAFANA = "/etc/grafana/dashboards/aerostat"
COMPOSE_OPTIONS = StackOptions(
    aerostat_targets=("aerostat:9102",),
    prometheus_url="http://prometheus:9090",
    grafana_dashboards_dir=DASHBOARDS_IN_GRAFANA,
)
RENDER_COMMAND = (
    "./run aerostat stack render deploy/compose --aerostat-target aerostat:9102 "
    f"--prometheus-url http://prometheus:9090 --grafana-dashboards-dir {DASHBOARDS_IN_GRAFANA}"
)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found: dict[str, Any] = compose["services"]
    return found


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path → repository path of each bind mount."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = ROOT / source
    return mounts


def _published(service: dict[str, Any]) -> set[str]:
    """Each published port as CONTAINER_PORT/PROTOCOL."""
    published = set()
    for port in service["ports"]:
        container = port.rsplit(":", 1)[-1]
        published.add(container if "/" in container else container + "/tcp")
    return published


def test_the_rendered_copy_is_current() -> None:
    expected = render_stack(COMPOSE_OPTIONS)
    on_disk = {path.relative_to(RENDERED).as_posix(): path.read_text()
               for path in RENDERED.rglob("*") if path.is_file()}
    stale = sorted(path for path in expected.keys() | on_disk.keys()
                   if expected.get(path) != on_disk.get(path))
    assert not stale, f"deploy/compose is stale ({', '.join(stale)}); run: {RENDER_COMMAND}"


def test_three_services(services: dict[str, Any]) -> None:
    assert set(services) == {"aerostat", "prometheus", "grafana"}


def test_aerostat_is_built_here_and_serves_airflow(services: dict[str, Any]) -> None:
    aerostat = services["aerostat"]
    assert (ROOT / aerostat["build"] / "Dockerfile").is_file()
    assert aerostat["command"] == ["serve", "--airflow", "--otlp.listen-address=:4318"]
    assert {"9125/udp", "9125/tcp", "9102/tcp", "4318/tcp"} <= _published(aerostat)
    checked = subprocess.run([sys.executable, "-m", "aerostat.cli", *aerostat["command"],
                              "--check-config"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def _chart_tag(component: str) -> str:
    values = yaml.safe_load((ROOT / "charts" / "aerostat-platform" / "values.yaml").read_text())
    tag: str = values[component]["image"]["tag"]
    return tag


@pytest.mark.parametrize(("service", "image"), [
    ("prometheus", "prom/prometheus"), ("grafana", "grafana/grafana")])
def test_images_are_the_helm_charts_versions(services: dict[str, Any], service: str,
                                             image: str) -> None:
    name, tag = services[service]["image"].split(":")
    assert name == image
    assert tag == _chart_tag(service)


def test_every_mounted_path_is_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, source in _mounts(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) is missing"


def test_prometheus_reads_the_rendered_config_and_scrapes_aerostat(
        services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    flags = dict(flag.split("=", 1) for flag in prometheus["command"])
    config_path = flags["--config.file"]
    directory, file = config_path.rsplit("/", 1)
    mounted = _mounts(prometheus)[directory]
    config = yaml.safe_load((mounted / file).read_text())
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["aerostat:9102"]
    for pattern in config["rule_files"]:
        assert list(mounted.glob(pattern)), f"no rule file matches {pattern} in {mounted}"
    assert "9090/tcp" in _published(prometheus)


def test_grafana_provisions_the_data_source_and_dashboards(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    mounts = _mounts(grafana)
    datasources = yaml.safe_load(
        (mounts["/etc/grafana/provisioning/datasources"] / "aerostat.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (mounts["/etc/grafana/provisioning/dashboards"] / "aerostat.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert sorted(mounts[path].glob("*.json")), f"no dashboard mounted at {path}"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[path] / home.removeprefix(path + "/")).is_file()
    assert "3000/tcp" in _published(grafana)
