"""The multi-deployment example and charts/README.md stay true: each Airflow
is pointed at the Service its aerostat really gets, by the commands written
beside the values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from charts.helm_engine import CHARTS, EXAMPLES, Engine, example

ROOT = CHARTS.parent
INSTALL = re.compile(
    r"helm install (?P<release>\S+) (?P<chart>\S+) --namespace (?P<namespace>\S+)"
)
DEPLOYMENTS = ("etl", "ml")


def install_command(name: str) -> dict[str, str]:
    """The `helm install` a values file's header comment gives."""
    header = " ".join(
        line.lstrip("# ").rstrip("\\ ")
        for line in (EXAMPLES / name).read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    )
    found = INSTALL.search(header)
    assert found, f"{name} says nothing of how to install it"
    return found.groupdict()


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_airflow_sends_to_its_own_aerostat(helm: Engine, deployment: str) -> None:
    aerostat_file, airflow_file = f"aerostat-{deployment}.yaml", f"airflow-{deployment}.yaml"
    command = install_command(aerostat_file)
    assert command["chart"] == "charts/aerostat"
    release = helm.install("aerostat", example(aerostat_file), release=command["release"],
                           namespace=command["namespace"])
    service = release.one("Service")["metadata"]["name"]

    airflow = example(airflow_file)
    assert install_command(airflow_file)["namespace"] == command["namespace"]
    # the official chart's own statsd_exporter is replaced, not run beside
    assert airflow["statsd"] == {"enabled": False}
    assert airflow["config"]["metrics"] == {
        "statsd_on": "True",
        "statsd_host": f"{service}.{command['namespace']}.svc",
        "statsd_port": 9125,
        "statsd_prefix": "airflow",
    }
    assert f"statsd_host: {service}.{command['namespace']}.svc" in release.notes


def test_each_deployment_is_labelled_apart(helm: Engine) -> None:
    labels = set()
    for deployment in DEPLOYMENTS:
        command = install_command(f"aerostat-{deployment}.yaml")
        release = helm.install("aerostat", example(f"aerostat-{deployment}.yaml"),
                               release=command["release"], namespace=command["namespace"])
        labels.add(release.one("Service")["metadata"]["labels"]["aerostat/airflow-deployment"])
    assert labels == set(DEPLOYMENTS)


def test_platform_example_installs_the_platform_chart() -> None:
    assert install_command("platform.yaml")["chart"] == "charts/aerostat-platform"


def readme() -> str:
    return (CHARTS / "README.md").read_text(encoding="utf-8")


def test_readme_points_at_files_that_exist() -> None:
    paths = set(re.findall(r"(charts/[\w./-]+)", readme()))
    assert paths
    for path in paths:
        assert (ROOT / path.rstrip(".")).exists(), path


def test_readme_airflow_values_match_the_example() -> None:
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", readme(), re.S)]
    airflow = [block for block in blocks if isinstance(block, dict) and "statsd" in block]
    assert airflow
    for values in airflow:
        assert values["statsd"] == {"enabled": False}
        metrics = values["config"]["metrics"]
        assert metrics["statsd_on"] == "True"
        assert metrics["statsd_port"] == 9125
        assert re.fullmatch(r"[\w<>.-]+\.svc", metrics["statsd_host"])


def test_every_example_file_is_used() -> None:
    used = set(re.findall(r"examples/multi-deployment/([\w.-]+)", readme()))
    assert used == {path.name for path in Path(EXAMPLES).glob("*.yaml")}
