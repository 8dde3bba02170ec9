"""Chart `aerostat`, one per Airflow deployment: what it sends to the cluster,
what its notes tell the user, and that aerostat accepts the command line and
mapping it renders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from charts.helm_engine import ChartError, Engine, Release, example

RELEASE, NAMESPACE = "etl", "airflow-etl"
MAPPING = {"mappings": [{"match": "airflow.custom.*", "name": "airflow_custom_total",
                         "labels": {"kind": "$1"}}]}


def install(helm: Engine, values: dict[str, Any] | None = None,
            release: str = RELEASE, namespace: str = NAMESPACE) -> Release:
    return helm.install("aerostat", values or {}, release=release, namespace=namespace)


def container(release: Release) -> dict[str, Any]:
    (aerostat,) = release.one("Deployment")["spec"]["template"]["spec"]["containers"]
    return aerostat


def test_service_takes_statsd_over_udp_and_tcp_and_serves_metrics(helm: Engine) -> None:
    service = install(helm).one("Service")
    assert service["metadata"]["name"] == "etl-aerostat"
    # a ClusterIP: the stable address Airflow resolves once
    assert service["spec"]["type"] == "ClusterIP"
    ports = {(port["name"], port["port"], port["protocol"]) for port in service["spec"]["ports"]}
    assert ports == {("statsd-udp", 9125, "UDP"), ("statsd-tcp", 9125, "TCP"),
                     ("metrics", 9102, "TCP")}


def test_otlp_for_airflow_s_opentelemetry_mode_is_a_port_of_its_own(helm: Engine) -> None:
    release = install(helm, {"otlp": {"enabled": True}})
    ports = {(port["name"], port["port"], port["protocol"])
             for port in release.one("Service")["spec"]["ports"]}
    assert ("otlp-http", 4318, "TCP") in ports
    assert "--otlp.listen-address=:4318" in container(release)["args"]
    assert "otel_port = 4318" in release.notes
    assert not any(arg.startswith("--otlp.") for arg in container(install(helm))["args"])


@pytest.mark.parametrize("values", [{}, {"otlp": {"enabled": True}}], ids=["statsd", "otlp"])
def test_service_selects_the_pod_and_targets_its_named_ports(
    helm: Engine, values: dict[str, Any]
) -> None:
    release = install(helm, values)
    service = release.one("Service")
    pod = release.one("Deployment")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    container_ports = {
        (p["name"], p["containerPort"], p["protocol"]) for p in container(release)["ports"]
    }
    for port in service["spec"]["ports"]:
        assert (port["targetPort"], port["port"], port["protocol"]) in container_ports


@pytest.mark.parametrize(
    ("values", "deployment"),
    [
        pytest.param({}, RELEASE, id="default-release-name"),
        pytest.param({"deployment": "etl-prod"}, "etl-prod", id="named"),
    ],
)
def test_discovery_labels_on_service_and_pods(
    helm: Engine, values: dict[str, Any], deployment: str
) -> None:
    release = install(helm, values)
    for labels in (release.one("Service")["metadata"]["labels"],
                   release.one("Deployment")["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/name"] == "aerostat"
        assert labels["aerostat/airflow-deployment"] == deployment
    assert f'deployment="{deployment}"' in release.notes


def test_one_replica_rolled_without_a_gap(helm: Engine) -> None:
    spec = install(helm).one("Deployment")["spec"]
    assert spec["replicas"] == 1  # replicas would split the counters and gauges
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_probes_use_the_health_endpoints(helm: Engine) -> None:
    aerostat = container(install(helm))
    assert aerostat["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "metrics"}
    assert aerostat["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "metrics"}


def test_locked_down_security_context(helm: Engine) -> None:
    release = install(helm)
    pod = release.one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = container(release)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_airflow_mapping_alone_by_default(helm: Engine) -> None:
    release = install(helm)
    args = container(release)["args"]
    assert args[:2] == ["serve", "--airflow"]
    assert not any(arg.startswith("--statsd.mapping-config") for arg in args)
    assert release.of_kind("ConfigMap") == []


def test_airflow_mapping_can_be_turned_off(helm: Engine) -> None:
    assert "--airflow" not in container(install(helm, {"airflowMapping": False}))["args"]


def mounted_mapping(release: Release) -> tuple[str, str]:
    """(path aerostat is told to read, text the pod finds there)."""
    aerostat = container(release)
    (flag,) = [arg for arg in aerostat["args"] if arg.startswith("--statsd.mapping-config=")]
    path = Path(flag.partition("=")[2])
    (mount,) = [m for m in aerostat["volumeMounts"] if path.parent == Path(m["mountPath"])]
    (volume,) = [
        v for v in release.one("Deployment")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == mount["name"]
    ]
    config_map = release.one("ConfigMap", volume["configMap"]["name"])
    return str(path), config_map["data"][path.name]


@pytest.mark.parametrize(
    "mapping",
    [pytest.param(MAPPING, id="as-yaml"), pytest.param(yaml.safe_dump(MAPPING), id="as-string")],
)
def test_user_mapping_reaches_the_pod_beside_the_airflow_mapping(
    helm: Engine, mapping: dict[str, Any] | str
) -> None:
    release = install(helm, {"mapping": mapping})
    _, text = mounted_mapping(release)
    assert yaml.safe_load(text) == MAPPING
    assert "--airflow" in container(release)["args"]


def test_changed_mapping_rolls_the_pod(helm: Engine) -> None:
    def checksum(mapping: dict[str, Any]) -> str:
        template = install(helm, {"mapping": mapping}).one("Deployment")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/mapping"])

    changed = {"mappings": [{**MAPPING["mappings"][0], "name": "airflow_other_total"}]}
    assert checksum(MAPPING) != checksum(changed)


@pytest.mark.parametrize(
    "values",
    [pytest.param({}, id="default"), pytest.param({"mapping": MAPPING}, id="with-mapping"),
     pytest.param(example("aerostat-etl.yaml"), id="example-etl"),
     pytest.param({"otlp": {"enabled": True, "port": 4319}}, id="otlp")],
)
def test_aerostat_accepts_the_rendered_command_line(
    helm: Engine, values: dict[str, Any], tmp_path: Path
) -> None:
    """The container's arguments, with the mapping written where they point,
    pass aerostat's own --check-config."""
    release = install(helm, values)
    args = container(release)["args"]
    if any(arg.startswith("--statsd.mapping-config=") for arg in args):
        path, text = mounted_mapping(release)
        (tmp_path / "mapping.yml").write_text(text, encoding="utf-8")
        args = [arg.replace(path, str(tmp_path / "mapping.yml")) for arg in args]
    checked = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", *args, "--check-config"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_placement_values_pass_through(helm: Engine) -> None:
    values = {
        "nodeSelector": {"pool": "airflow"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {}},
        "resources": {"limits": {"memory": "1Gi"}},
    }
    release = install(helm, values)
    pod = release.one("Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert container(release)["resources"]["limits"] == {"memory": "1Gi"}


def test_notes_give_the_airflow_chart_values(helm: Engine) -> None:
    release = install(helm)
    service = release.one("Service")["metadata"]["name"]
    notes = release.notes
    assert "statsd:\n    enabled: false" in notes
    assert f"statsd_host: {service}.{NAMESPACE}.svc" in notes
    assert "statsd_port: 9125" in notes
    assert 'statsd_on: "True"' in notes


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({"deployment": "etl prod"}, "/deployment", id="label-value"),
        pytest.param({"deployment": "x" * 64}, "/deployment", id="too-long"),
        pytest.param({"mapping": ["not", "a", "file"]}, "/mapping", id="mapping-list"),
        pytest.param({"extraArgs": "--statsd.ttl=30m"}, "/extraArgs", id="args-not-a-list"),
    ],
)
def test_mistakes_are_named_before_reaching_the_cluster(
    helm: Engine, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ChartError, match=named):
        install(helm, values)


API = {"url": "http://airflow-api-server.airflow-etl.svc:8080", "username": "aerostat",
       "existingSecret": "airflow-api"}


def api_volume(release: Release) -> dict[str, Any]:
    (volume,) = [v for v in release.one("Deployment")["spec"]["template"]["spec"]["volumes"]
                 if "secret" in v]
    return volume


def test_the_rest_api_is_polled_with_a_password_from_a_secret(helm: Engine) -> None:
    release = install(helm, {"airflowApi": API, "mapping": MAPPING})
    args = container(release)["args"]
    assert f"--airflow.api-url={API['url']}" in args
    assert "--airflow.api-username=aerostat" in args
    (flag,) = [arg for arg in args if arg.startswith("--airflow.api-password-file=")]
    path = Path(flag.partition("=")[2])
    volume = api_volume(release)
    assert volume["secret"]["secretName"] == "airflow-api"
    assert volume["secret"]["items"] == [{"key": "password", "path": path.name}]
    mounts = {m["name"]: m["mountPath"] for m in container(release)["volumeMounts"]}
    assert mounts[volume["name"]] == str(path.parent)
    # beside the mapping's mount, not inside it
    assert not str(path.parent).startswith(mounts["mapping"])
    # nothing secret in the manifests: no Secret of the chart's, no env
    assert release.of_kind("Secret") == []
    assert "env" not in container(release)


def test_a_token_and_a_ca_instead_of_a_password(helm: Engine) -> None:
    values = {**API, "username": "", "tokenKey": "token", "caKey": "ca.pem"}
    release = install(helm, {"airflowApi": values})
    args = container(release)["args"]
    assert not any(arg.startswith(("--airflow.api-username", "--airflow.api-password"))
                   for arg in args)
    assert any(arg.startswith("--airflow.api-token-file=") for arg in args)
    assert any(arg.startswith("--airflow.api-ca-file=") for arg in args)
    assert api_volume(release)["secret"]["items"] == [
        {"key": "token", "path": "token"}, {"key": "ca.pem", "path": "ca.crt"}]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({**API, "existingSecret": ""}, "existingSecret", id="no-secret"),
        pytest.param({**API, "username": ""}, "airflowApi", id="no-user-nor-token"),
        pytest.param({**API, "url": "airflow:8080"}, "/airflowApi/url", id="not-a-url"),
        pytest.param({**API, "password": "hunter2"}, "password", id="password-in-values"),
    ],
)
def test_rest_api_mistakes_are_named_before_reaching_the_cluster(
    helm: Engine, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ChartError, match=named):
        install(helm, {"airflowApi": values})


def test_aerostat_accepts_the_rendered_rest_api_flags(helm: Engine, tmp_path: Path) -> None:
    """The rendered --airflow.api-* flags, with the Secret's file where they
    point, pass aerostat's own --check-config."""
    release = install(helm, {"airflowApi": API})
    args = container(release)["args"]
    (flag,) = [arg for arg in args if arg.startswith("--airflow.api-password-file=")]
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    args = [arg.replace(flag.partition("=")[2], str(secret)) for arg in args]
    checked = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", *args, "--check-config"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert checked.returncode == 0, checked.stderr
    # and without the file, --check-config names the flag
    missing = [arg.replace(str(secret), str(tmp_path / "gone")) for arg in args]
    refused = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", *missing, "--check-config"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert refused.returncode == 1 and "--airflow.api-password-file" in refused.stderr
