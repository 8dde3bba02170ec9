"""Both charts through the real tools, for the default values, the
multi-deployment example and the remote-write examples: helm lint --strict,
every manifest against the Kubernetes API schemas in strict mode
(kubernetes-validate, offline), and Prometheus's configuration and rules
through promtool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from charts.helm_engine import CHARTS, Engine, Release, example

# the newest Kubernetes release whose schemas the package ships
KUBERNETES = kubernetes_validate.utils.latest_version()
RULES = sorted((CHARTS / "aerostat-platform" / "files" / "rules").glob("*.yml"))
DASHBOARDS = sorted((CHARTS / "aerostat-platform" / "files" / "dashboards").glob("*.json"))

# (chart, release, namespace, values)
CASES = {
    "aerostat-default": ("aerostat", "aerostat", "airflow", {}),
    "aerostat-string-mapping": ("aerostat", "sales", "airflow-sales",
                                {"mapping": "mappings:\n  - match: a.*\n    name: a_total\n"}),
    "aerostat-example-etl": ("aerostat", "aerostat", "airflow-etl", example("aerostat-etl.yaml")),
    "aerostat-example-ml": ("aerostat", "aerostat", "airflow-ml", example("aerostat-ml.yaml")),
    "aerostat-web-tls-basic-auth": ("aerostat", "aerostat", "airflow-etl", {"web": {
        "tls": {"enabled": True, "existingSecret": "aerostat-tls", "minVersion": "TLS13"},
        "basicAuth": {"enabled": True, "existingSecret": "aerostat-scrape"},
        "headers": {"X-Frame-Options": "deny"}}}),
    "aerostat-web-tls": ("aerostat", "aerostat", "airflow-etl",
                         {"web": {"tls": {"enabled": True, "existingSecret": "aerostat-tls"}}}),
    "platform-default": ("aerostat-platform", "platform", "monitoring", {}),
    "platform-aerostat-scrape": ("aerostat-platform", "platform", "monitoring", {
        "prometheus": {"secrets": ["aerostat-scrape"]},
        "aerostatScrape": {
            "tls": {"enabled": True, "caSecret": "aerostat-ca", "serverName": "aerostat"},
            "basicAuth": {"enabled": True, "passwordSecret": "aerostat-scrape"}}}),
    "platform-example": ("aerostat-platform", "platform", "monitoring", example("platform.yaml")),
    "platform-minimal": ("aerostat-platform", "platform", "monitoring",
                         {"grafana": {"enabled": False},
                          "prometheus": {"persistence": {"enabled": False}}}),
    **{f"platform-remote-write-{path.stem}": (
        "aerostat-platform", "platform", "monitoring", yaml.safe_load(path.read_text()))
       for path in sorted((CHARTS / "examples" / "remote-write").glob("*.yaml"))},
}
PLATFORM_CASES = [name for name, case in CASES.items() if case[0] == "aerostat-platform"]


def install(helm: Engine, case: str) -> Release:
    chart, release, namespace, values = CASES[case]
    return helm.install(chart, values, release=release, namespace=namespace)


@pytest.mark.parametrize("case", CASES)
def test_helm_lint_strict(helm: Engine, case: str) -> None:
    chart, _, _, values = CASES[case]
    assert helm.lint(chart, values) == []


@pytest.mark.parametrize("case", CASES)
def test_manifests_match_the_kubernetes_api_strictly(helm: Engine, case: str) -> None:
    release = install(helm, case)
    assert release.manifests
    refused = []
    for manifest in release.manifests:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as invalid:
            path = ".".join(str(part) for part in invalid.path)
            where = f"{manifest['kind']}/{manifest['metadata']['name']}"
            refused.append(f"{where}: {path}: {invalid.message}")
    assert refused == [], f"refused by the schemas of Kubernetes {KUBERNETES}"


def write_projected_volume(release: Release, volume: dict[str, Any], into: Path) -> None:
    """Lay out the files a pod sees in a projected volume of ConfigMaps."""
    for source in volume["projected"]["sources"]:
        data = release.one("ConfigMap", source["configMap"]["name"])["data"]
        items = source["configMap"].get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            path = into / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]], encoding="utf-8")


# Prometheus's kubernetes_sd_config: its roles and keys, as documented.
KUBERNETES_SD_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}
KUBERNETES_SD_KEYS = {
    "role", "namespaces", "selectors", "attach_metadata", "api_server", "kubeconfig_file",
    "basic_auth", "authorization", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment",
    "proxy_connect_header", "follow_redirects", "enable_http2", "tls_config",
}


def without_kubernetes_discovery(config_file: Path) -> None:
    """Swap each kubernetes_sd_configs block for a file_sd_configs one.

    Debian's Prometheus (where promtool comes from) is built without
    Kubernetes discovery and refuses the key outright; everything else in
    the file (globals, rule files, relabelling, remote_write, alerting) is
    still promtool's to check. The swapped-out block is checked here against
    the documented keys, and what its targets look like after relabelling
    is test_platform_chart's business."""
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    targets = config_file.parent / "kubernetes-targets.json"
    targets.write_text("[]", encoding="utf-8")
    for job in config["scrape_configs"]:
        discoveries = job.pop("kubernetes_sd_configs", None)
        if discoveries is None:
            continue
        for discovery in discoveries:
            assert discovery["role"] in KUBERNETES_SD_ROLES
            assert set(discovery) <= KUBERNETES_SD_KEYS
            assert set(discovery.get("namespaces", {})) <= {"names", "own_namespace"}
        job["file_sd_configs"] = [{"files": [str(targets)]}]
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.parametrize("case", PLATFORM_CASES)
def test_prometheus_sees_a_configuration_promtool_accepts(
    helm: Engine, case: str, tmp_path: Path
) -> None:
    """prometheus.yml and its rule files, laid out as the pod mounts them."""
    release = install(helm, case)
    pod = release.one("StatefulSet")["spec"]["template"]["spec"]
    (prometheus,) = pod["containers"]
    (config_flag,) = [a for a in prometheus["args"] if a.startswith("--config.file=")]
    config_file = Path(config_flag.partition("=")[2])
    (mount,) = [m for m in prometheus["volumeMounts"] if m["mountPath"] == str(config_file.parent)]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    write_projected_volume(release, volume, tmp_path)
    without_kubernetes_discovery(tmp_path / config_file.name)

    checked = promtool("check", "config", str(tmp_path / config_file.name))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the rules were found beside it and checked too
    for rule_file in RULES:
        assert f"rules/{rule_file.name}" in checked.stdout


def test_there_are_rules_and_dashboards() -> None:
    assert RULES and DASHBOARDS


@pytest.mark.parametrize("rule_file", RULES, ids=lambda path: path.name)
def test_rule_files_pass_promtool(rule_file: Path) -> None:
    checked = promtool("check", "rules", str(rule_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("dashboard_file", DASHBOARDS, ids=lambda path: path.name)
def test_dashboards_are_grafana_dashboards(dashboard_file: Path) -> None:
    dashboard = json.loads(dashboard_file.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["panels"], list)
    # the provisioned data source, by the uid the chart gives it
    datasource_uid = yaml.safe_load(
        (CHARTS / "aerostat-platform" / "values.yaml").read_text(encoding="utf-8")
    )["grafana"]["datasourceUid"]
    for panel in dashboard["panels"]:
        source = panel.get("datasource")
        if isinstance(source, dict) and source.get("type") == "prometheus":
            assert source["uid"] in (datasource_uid, "${datasource}", "$datasource")
