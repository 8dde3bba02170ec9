"""Chart `aerostat-platform`, once per cluster: Prometheus with its disk, its
discovery rights and a configuration that finds the aerostats of chart
`aerostat` and labels their series; Grafana with the dashboards; Alertmanager
when asked for."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from aerostat.stack.configs import DATASOURCE_UID
from charts.discovery import endpointslice_targets, relabel, scraped_labels
from charts.helm_engine import CHARTS, ChartError, Engine, Release, example

RELEASE, NAMESPACE = "platform", "monitoring"
FILES = CHARTS / "aerostat-platform" / "files"


def install(helm: Engine, values: dict[str, Any] | None = None) -> Release:
    return helm.install("aerostat-platform", values or {}, release=RELEASE, namespace=NAMESPACE)


def prometheus_config(release: Release) -> dict[str, Any]:
    config_map = release.one("ConfigMap", "platform-prometheus")
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["prometheus.yml"])
    return config


def scrape_job(release: Release, name: str) -> dict[str, Any]:
    (job,) = [job for job in prometheus_config(release)["scrape_configs"]
              if job["job_name"] == name]
    return job


def prometheus_container(release: Release) -> dict[str, Any]:
    statefulset = release.one("StatefulSet", "platform-prometheus")
    (prometheus,) = statefulset["spec"]["template"]["spec"]["containers"]
    return prometheus


# --- Prometheus: storage and retention ---------------------------------------

def test_prometheus_keeps_its_data_on_a_claimed_volume(helm: Engine) -> None:
    release = install(helm, {"prometheus": {"persistence": {"size": "50Gi",
                                                            "storageClass": "fast-ssd"}}})
    statefulset = release.one("StatefulSet", "platform-prometheus")
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    mounts = {m["name"]: m["mountPath"] for m in prometheus_container(release)["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/prometheus"
    assert "--storage.tsdb.path=/prometheus" in prometheus_container(release)["args"]


@pytest.mark.parametrize(
    ("storage_class", "expected"),
    [pytest.param("", None, id="cluster-default"),
     pytest.param("-", "", id="no-dynamic-provisioning")],
)
def test_storage_class_choices(helm: Engine, storage_class: str, expected: str | None) -> None:
    release = install(helm, {"prometheus": {"persistence": {"storageClass": storage_class}}})
    (claim,) = release.one("StatefulSet")["spec"]["volumeClaimTemplates"]
    assert claim["spec"].get("storageClassName") == expected


def test_without_persistence_an_empty_dir(helm: Engine) -> None:
    release = install(helm, {"prometheus": {"persistence": {"enabled": False}}})
    spec = release.one("StatefulSet")["spec"]
    assert "volumeClaimTemplates" not in spec
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_retention_by_time_and_size(helm: Engine) -> None:
    args = prometheus_container(
        install(helm, {"prometheus": {"retention": {"time": "30d", "size": "45GB"}}})
    )["args"]
    assert "--storage.tsdb.retention.time=30d" in args
    assert "--storage.tsdb.retention.size=45GB" in args
    unlimited = prometheus_container(install(helm, {"prometheus": {"retention": {"size": ""}}}))
    assert not any(arg.startswith("--storage.tsdb.retention.size") for arg in unlimited["args"])


# --- Prometheus: discovery rights --------------------------------------------

def test_discovery_may_only_read_what_endpointslice_discovery_watches(helm: Engine) -> None:
    release = install(helm)
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in release.one("ClusterRole")["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("discovery.k8s.io", "endpointslices"): {"list", "watch"},
        ("", "services"): {"list", "watch"},
        ("", "pods"): {"list", "watch"},
    }
    binding = release.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == release.one("ClusterRole")["metadata"]["name"]
    (subject,) = binding["subjects"]
    account = release.one("ServiceAccount")["metadata"]
    assert (subject["name"], subject["namespace"]) == (account["name"], NAMESPACE)
    pod = release.one("StatefulSet")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]


def test_cluster_role_name_carries_the_namespace(helm: Engine) -> None:
    # cluster-scoped: two releases "platform" in two namespaces must not collide
    assert install(helm).one("ClusterRole")["metadata"]["name"] == "monitoring-platform-prometheus"


# --- Prometheus: what it scrapes and how it labels ----------------------------

def aerostat_targets(helm: Engine, release: str, namespace: str,
                     values: dict[str, Any]) -> list[dict[str, str]]:
    """Targets discovery announces for one install of chart `aerostat`."""
    installed = helm.install("aerostat", values, release=release, namespace=namespace)
    pod_labels = installed.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    return endpointslice_targets(installed.one("Service"), pod_labels,
                                 pod_name=f"{release}-aerostat-0", pod_ip="10.0.0.1")


def scraped(platform: Release, targets: list[dict[str, str]]) -> list[dict[str, str]]:
    job = scrape_job(platform, "aerostat")
    kept = (relabel(target, job["relabel_configs"]) for target in targets)
    return [scraped_labels(target, job["job_name"]) for target in kept if target is not None]


def test_every_aerostat_metrics_port_is_scraped_with_namespace_and_deployment(
    helm: Engine,
) -> None:
    platform = install(helm)
    targets = (aerostat_targets(helm, "aerostat", "airflow-etl", example("aerostat-etl.yaml"))
               + aerostat_targets(helm, "aerostat", "airflow-ml", example("aerostat-ml.yaml")))
    found = scraped(platform, targets)
    # one target per aerostat: the metrics port, not the two StatsD ports
    assert [(t["namespace"], t["deployment"], t["instance"]) for t in found] == [
        ("airflow-etl", "etl", "10.0.0.1:9102"), ("airflow-ml", "ml", "10.0.0.1:9102"),
    ]
    assert {t["job"] for t in found} == {"aerostat"}
    assert found[0]["pod"] == "aerostat-aerostat-0"


def test_a_shared_aerostats_own_deployment_labels_win(helm: Engine) -> None:
    """One aerostat for several deployments (statsd_prefix airflow.<name>)
    labels its series itself; the target's deployment only fills the gaps."""
    assert scrape_job(install(helm), "aerostat")["honor_labels"] is True


def test_deployment_defaults_to_the_release_name(helm: Engine) -> None:
    found = scraped(install(helm), aerostat_targets(helm, "sales", "airflow-sales", {}))
    assert [(t["namespace"], t["deployment"]) for t in found] == [("airflow-sales", "sales")]


def test_deployment_falls_back_to_namespace_and_release(helm: Engine) -> None:
    """An aerostat Service made by other means, without the deployment label."""
    targets = aerostat_targets(helm, "sales", "airflow-sales", {})
    for target in targets:
        del target["__meta_kubernetes_service_label_aerostat_airflow_deployment"]
    found = scraped(install(helm), targets)
    assert [t["deployment"] for t in found] == ["airflow-sales/sales"]
    for target in targets:
        del target["__meta_kubernetes_service_label_app_kubernetes_io_instance"]
    assert [t["deployment"] for t in scraped(install(helm), targets)] == ["airflow-sales"]


def test_the_platform_itself_is_not_taken_for_an_aerostat(helm: Engine) -> None:
    platform = install(helm, {"alertmanager": {"enabled": True}})
    targets = [
        target
        for service in platform.of_kind("Service")
        for target in endpointslice_targets(service, {}, pod_name="x", pod_ip="10.0.0.2")
    ]
    assert scraped(platform, targets) == []


def test_discovery_across_all_namespaces_or_the_listed_ones(helm: Engine) -> None:
    (everywhere,) = scrape_job(install(helm), "aerostat")["kubernetes_sd_configs"]
    assert everywhere == {"role": "endpointslice"}
    listed = install(helm, {"discovery": {"namespaces": ["airflow-etl", "airflow-ml"]}})
    (some,) = scrape_job(listed, "aerostat")["kubernetes_sd_configs"]
    assert some["namespaces"] == {"names": ["airflow-etl", "airflow-ml"]}


def test_remote_write_only_when_set(helm: Engine) -> None:
    assert "remote_write" not in prometheus_config(install(helm))
    targets = [{"url": "http://mimir-nginx.mimir.svc/api/v1/push",
                "headers": {"X-Scope-OrgID": "airflow"}},
               {"url": "http://vminsert.vm.svc:8480/insert/0/prometheus/api/v1/write"}]
    config = prometheus_config(install(helm, {"prometheus": {"remoteWrite": targets}}))
    assert config["remote_write"] == targets


def test_remote_write_examples_for_three_stores(helm: Engine) -> None:
    examples = sorted((CHARTS / "examples" / "remote-write").glob("*.yaml"))
    assert [path.stem for path in examples] == [
        "mimir", "thanos-receive", "victoriametrics-cluster"]
    for path in examples:
        values = yaml.safe_load(path.read_text())
        config = prometheus_config(install(helm, values))
        assert config["remote_write"] == values["prometheus"]["remoteWrite"], path.name
        assert config["global"]["external_labels"] == {"cluster": "prod-eu"}, path.name
        assert f"examples/remote-write/{path.name}" in (CHARTS / "README.md").read_text()


def test_secrets_for_remote_write_are_mounted_not_copied(helm: Engine) -> None:
    release = install(helm, {"prometheus": {"secrets": ["mimir-remote-write", "ca.bundle"]}})
    pod = release.one("StatefulSet")["spec"]["template"]["spec"]
    (prometheus,) = pod["containers"]
    mounts = {mount["mountPath"]: mount for mount in prometheus["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for name in ("mimir-remote-write", "ca.bundle"):
        mount = mounts[f"/etc/prometheus/secrets/{name}"]
        assert mount["readOnly"] is True
        assert volumes[mount["name"]]["secret"] == {"secretName": name}
    assert "secret-" not in str(install(helm).one("StatefulSet"))


def test_external_labels(helm: Engine) -> None:
    config = prometheus_config(install(helm, {"prometheus": {"externalLabels": {"cluster": "eu"}}}))
    assert config["global"]["external_labels"] == {"cluster": "eu"}


def test_rule_files_are_mounted_where_prometheus_yml_looks(helm: Engine) -> None:
    release = install(helm)
    assert prometheus_config(release)["rule_files"] == ["rules/*.yml"]
    pod = release.one("StatefulSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (rules_source,) = [
        source["configMap"] for source in volumes["config"]["projected"]["sources"]
        if "items" in source["configMap"]
    ]
    assert {item["path"] for item in rules_source["items"]} == {
        f"rules/{path.name}" for path in (FILES / "rules").glob("*.yml")
    }
    rules = release.one("ConfigMap", rules_source["name"])["data"]
    for path in (FILES / "rules").glob("*.yml"):
        assert rules[path.name] == path.read_text(encoding="utf-8")


# --- Alertmanager -------------------------------------------------------------

def test_alertmanager_off_by_default(helm: Engine) -> None:
    release = install(helm)
    assert "alerting" not in prometheus_config(release)
    assert not [m for m in release.manifests if "alertmanager" in m["metadata"]["name"]]


def test_alertmanager_when_enabled_receives_prometheus_alerts(helm: Engine) -> None:
    config = {"route": {"receiver": "team"},
              "receivers": [{"name": "team", "webhook_configs": [{"url": "http://hook"}]}]}
    release = install(helm, {"alertmanager": {"enabled": True, "config": config}})
    service = release.one("Service", "platform-alertmanager")
    (port,) = service["spec"]["ports"]
    (alertmanagers,) = prometheus_config(release)["alerting"]["alertmanagers"]
    (static,) = alertmanagers["static_configs"]
    assert static["targets"] == [f"platform-alertmanager.{NAMESPACE}.svc:{port['port']}"]
    secret = release.one("Secret", "platform-alertmanager")
    assert yaml.safe_load(secret["stringData"]["alertmanager.yml"]) == config
    release.one("Deployment", "platform-alertmanager")


def test_alertmanager_default_config_notifies_nobody(helm: Engine) -> None:
    release = install(helm, {"alertmanager": {"enabled": True}})
    secret = release.one("Secret", "platform-alertmanager")
    config = yaml.safe_load(secret["stringData"]["alertmanager.yml"])
    assert config["receivers"] == [{"name": config["route"]["receiver"]}]


# --- Grafana ------------------------------------------------------------------

def provisioning(release: Release, key: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        release.one("ConfigMap", "platform-grafana")["data"][key]
    )
    return loaded


def test_grafana_data_source_is_the_platform_prometheus(helm: Engine) -> None:
    release = install(helm)
    (source,) = provisioning(release, "datasources.yaml")["datasources"]
    service = release.one("Service", "platform-prometheus")
    (port,) = service["spec"]["ports"]
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://platform-prometheus.{NAMESPACE}.svc:{port['port']}"
    # what the dashboards of `aerostat stack render` select by default
    assert source["uid"] == DATASOURCE_UID


def test_grafana_finds_every_dashboard_file(helm: Engine) -> None:
    release = install(helm)
    (provider,) = provisioning(release, "dashboards.yaml")["providers"]
    deployment = release.one("Deployment", "platform-grafana")
    (grafana,) = deployment["spec"]["template"]["spec"]["containers"]
    (mount,) = [m for m in grafana["volumeMounts"]
                if m["mountPath"] == provider["options"]["path"]]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounted: dict[str, str] = {}
    for source in volumes[mount["name"]]["projected"]["sources"]:
        mounted.update(release.one("ConfigMap", source["configMap"]["name"])["data"])
    files = sorted((FILES / "dashboards").glob("*.json"))
    assert files
    assert mounted == {path.name: path.read_text(encoding="utf-8") for path in files}


def test_grafana_admin_password_generated_or_from_an_existing_secret(helm: Engine) -> None:
    def secret_refs(release: Release) -> set[str]:
        (grafana,) = release.one("Deployment", "platform-grafana")["spec"]["template"]["spec"][
            "containers"]
        return {env["valueFrom"]["secretKeyRef"]["name"] for env in grafana["env"]
                if env["name"].startswith("GF_SECURITY_ADMIN_")}

    generated = install(helm)
    secret = generated.one("Secret", "platform-grafana-admin")
    assert len(secret["data"]["admin-password"]) >= 24
    assert secret_refs(generated) == {"platform-grafana-admin"}
    own = install(helm, {"grafana": {"admin": {"existingSecret": "grafana-admin"}}})
    assert own.of_kind("Secret") == []
    assert secret_refs(own) == {"grafana-admin"}


def test_grafana_can_be_left_out(helm: Engine) -> None:
    release = install(helm, {"grafana": {"enabled": False}})
    assert not [m for m in release.manifests if "grafana" in m["metadata"]["name"]]


def test_every_container_is_locked_down(helm: Engine) -> None:
    release = install(helm, example("platform.yaml"))
    pods = [workload["spec"]["template"]["spec"]
            for workload in release.of_kind("Deployment") + release.of_kind("StatefulSet")]
    assert len(pods) == 3
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]


def test_placement_values_pass_through(helm: Engine) -> None:
    placement = {"nodeSelector": {"pool": "monitoring"},
                 "tolerations": [{"key": "monitoring", "operator": "Exists"}]}
    release = install(helm, {part: placement for part in ("prometheus", "grafana")})
    for workload in (release.one("StatefulSet"), release.one("Deployment", "platform-grafana")):
        pod = workload["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == placement["nodeSelector"]
        assert pod["tolerations"] == placement["tolerations"]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({"prometheus": {"retention": {"time": "15 days"}}},
                     "/prometheus/retention/time", id="retention-time"),
        pytest.param({"prometheus": {"retention": {"size": "18G"}}},
                     "/prometheus/retention/size", id="retention-size-unit"),
        pytest.param({"prometheus": {"remoteWrite": [{"headers": {}}]}},
                     "url", id="remote-write-without-url"),
        pytest.param({"prometheus": {"remoteWrite": {"url": "http://x"}}},
                     "/prometheus/remoteWrite", id="remote-write-not-a-list"),
    ],
)
def test_mistakes_are_named_before_reaching_the_cluster(
    helm: Engine, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(ChartError, match=named):
        install(helm, values)


def test_every_file_in_files_is_one_the_chart_loads() -> None:
    """The chart globs files/rules/*.yml and files/dashboards/*.json (what
    `aerostat stack render` writes): a .yaml rule file, say, would be left
    out without a word."""
    for folder, pattern in (("rules", "*.yml"), ("dashboards", "*.json")):
        present = {path.name for path in (FILES / folder).iterdir()}
        assert present == {path.name for path in (FILES / folder).glob(pattern)}
