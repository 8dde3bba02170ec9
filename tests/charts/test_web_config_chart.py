"""The charts' TLS and basic auth, run rather than only read: chart
`aerostat` with web.tls and web.basicAuth is laid out as its pod sees it
(the web ConfigMap, the Secrets' files from a throwaway CA), its init
container's command writes the web config with the password's hash, aerostat
starts with the rendered command line, the probes' command passes; and the
scrape job of chart `aerostat-platform` with aerostatScrape, in a real
Prometheus, scrapes it over TLS with the credentials."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from charts.helm_engine import ChartError, Engine, Release
from pki import Pki, make_pki
from stack.prometheus_process import free_port, running_prometheus

PASSWORD = "a scrape password"
AEROSTAT_VALUES = {
    "web": {
        "tls": {"enabled": True, "existingSecret": "aerostat-tls"},
        "basicAuth": {"enabled": True, "existingSecret": "aerostat-scrape"},
        "headers": {"X-Content-Type-Options": "nosniff"},
    },
}
PLATFORM_VALUES = {
    "aerostatScrape": {
        "tls": {"enabled": True, "caSecret": "aerostat-ca", "serverName": "localhost"},
        "basicAuth": {"enabled": True, "passwordSecret": "aerostat-scrape"},
    },
}


def install(helm: Engine, values: dict[str, Any]) -> Release:
    return helm.install("aerostat", values, release="etl", namespace="airflow-etl")


def pod(release: Release) -> dict[str, Any]:
    spec: dict[str, Any] = release.one("Deployment")["spec"]["template"]["spec"]
    return spec


class PodFiles:
    """The pod's paths under a test directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, text: str) -> str:
        for prefix in ("/run/", "/etc/aerostat-web"):
            text = text.replace(prefix, f"{self.root}{prefix}")
        return text

    def write(self, path: str, text: str) -> None:
        target = Path(self(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def lay_out(release: Release, pki: Pki, files: PodFiles, password: str) -> None:
    """What the kubelet would mount: the ConfigMap and the Secrets' items,
    as the volumes map them."""
    spec = pod(release)
    secrets = {
        "aerostat-tls": {"tls.crt": pki.server_cert.read_text(),
                         "tls.key": pki.server_key.read_text()},
        # a Secret made from a file often ends in a newline
        "aerostat-scrape": {"password": password + "\n"},
    }
    (aerostat,) = spec["containers"]
    mounts = [*aerostat["volumeMounts"],
              *(m for c in spec.get("initContainers", []) for m in c["volumeMounts"])]
    for volume in spec["volumes"]:
        paths = {m["mountPath"] for m in mounts if m["name"] == volume["name"]}
        for path in paths:
            if "configMap" in volume:
                data = release.one("ConfigMap", volume["configMap"]["name"])["data"]
                for key, text in data.items():
                    files.write(f"{path}/{key}", files(text))
            elif "secret" in volume:
                data = secrets[volume["secret"]["secretName"]]
                for item in volume["secret"]["items"]:
                    files.write(f"{path}/{item['path']}", data[item["key"]])
            else:
                Path(files(path)).mkdir(parents=True, exist_ok=True)


def run(command: list[str], files: PodFiles, port: int) -> subprocess.CompletedProcess[str]:
    """A container command, with the pod's paths and port moved."""
    command = [files(part).replace(":9102", f":{port}") for part in command]
    if command[0] == "python":
        command[0] = sys.executable
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def aerostat_pod(helm: Engine, pki: Pki, tmp_path: Path) -> Iterator[tuple[Release, PodFiles,
                                                                           int]]:
    """Chart aerostat's pod, run here: init container, then aerostat."""
    release = install(helm, AEROSTAT_VALUES)
    files = PodFiles(tmp_path / "pod")
    lay_out(release, pki, files, PASSWORD)
    port = free_port()
    (init,) = pod(release)["initContainers"]
    written = run(init["command"], files, port)
    assert written.returncode == 0, written.stderr
    (aerostat,) = pod(release)["containers"]
    args = [files(arg) for arg in aerostat["args"]]
    args = [arg.replace(":9125", "127.0.0.1:0").replace(":9102", f"127.0.0.1:{port}")
            for arg in args]
    process = subprocess.Popen([sys.executable, "-m", "aerostat.cli", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield release, files, port
    finally:
        process.terminate()
        process.wait(10)


def probe(release: Release, files: PodFiles, port: int, which: str) -> int:
    (aerostat,) = pod(release)["containers"]
    command = aerostat[which]["exec"]["command"]
    deadline = time.monotonic() + 20
    while True:
        done = run(command, files, port)
        if done.returncode == 0 or time.monotonic() > deadline:
            return done.returncode
        time.sleep(0.2)


def test_the_pod_hashes_the_password_and_its_probes_pass(
        aerostat_pod: tuple[Release, PodFiles, int]) -> None:
    release, files, port = aerostat_pod
    web = yaml.safe_load(Path(files("/run/aerostat-web/web.yml")).read_text())
    (hashed,) = web["basic_auth_users"].values()
    assert hashed.startswith("$2b$10$") and PASSWORD not in hashed
    assert "basic_auth_users" not in release.one("ConfigMap")["data"]["web.yml"]
    assert probe(release, files, port, "livenessProbe") == 0
    assert probe(release, files, port, "readinessProbe") == 0
    # the probe with another password fails: it really authenticates
    files.write("/run/secrets/aerostat-web/password", "wrong\n")
    (aerostat,) = pod(release)["containers"]
    assert run(aerostat["livenessProbe"]["exec"]["command"], files, port).returncode != 0


def test_the_platform_prometheus_scrapes_it_over_tls_with_basic_auth(
        helm: Engine, aerostat_pod: tuple[Release, PodFiles, int], pki: Pki,
        tmp_path: Path) -> None:
    _, _, port = aerostat_pod
    platform = helm.install("aerostat-platform", PLATFORM_VALUES, release="platform",
                            namespace="monitoring")
    config = yaml.safe_load(platform.one("ConfigMap", "platform-prometheus")
                            ["data"]["prometheus.yml"])
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "aerostat"]
    # the Secrets where the StatefulSet mounts them
    statefulset = platform.one("StatefulSet")["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in statefulset["containers"][0]["volumeMounts"]}
    assert {"/etc/prometheus/secrets/aerostat-ca",
            "/etc/prometheus/secrets/aerostat-scrape"} <= mounts
    secrets = tmp_path / "secrets"
    (secrets / "aerostat-ca").mkdir(parents=True)
    (secrets / "aerostat-ca" / "ca.crt").write_text(pki.ca_cert.read_text())
    (secrets / "aerostat-scrape").mkdir()
    (secrets / "aerostat-scrape" / "password").write_text(PASSWORD + "\n")
    text = yaml.safe_dump({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{
            **{k: v for k, v in job.items()
               if k not in ("kubernetes_sd_configs", "relabel_configs")},
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }],
    }).replace("/etc/prometheus/secrets", str(secrets))
    (tmp_path / "prometheus.yml").write_text(text)
    with running_prometheus(tmp_path / "prometheus.yml", tmp_path) as prometheus:
        up = prometheus.wait_for_series('up{job="aerostat"} == 1')
        assert len(up) == 1
        prometheus.wait_for_series('statsd_exporter_lines_total{job="aerostat"}')


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({"web": {"tls": {"enabled": True}}}, "existingSecret", id="tls-no-secret"),
        pytest.param({"web": {"basicAuth": {"enabled": True}}}, "existingSecret",
                     id="auth-no-secret"),
        pytest.param({"web": {"tls": {"minVersion": "TLS1.2"}}}, "minVersion",
                     id="bad-min-version"),
        pytest.param({"web": {"headers": {"X-Powered-By": "me"}}}, "X-Powered-By",
                     id="header-not-allowed"),
        pytest.param({"web": {"basicAuth": {"username": "a:b"}}}, "username",
                     id="colon-in-username"),
    ],
)
def test_web_mistakes_are_named_before_reaching_the_cluster(
        helm: Engine, values: dict[str, Any], named: str) -> None:
    with pytest.raises(ChartError, match=named):
        install(helm, values)


def test_without_web_values_nothing_changes(helm: Engine) -> None:
    release = install(helm, {})
    (aerostat,) = pod(release)["containers"]
    assert not any(arg.startswith("--web.config.file") for arg in aerostat["args"])
    assert "initContainers" not in pod(release)
    assert aerostat["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "metrics"}


def test_tls_alone_keeps_http_probes_over_https(helm: Engine) -> None:
    release = install(helm, {"web": {"tls": {"enabled": True, "existingSecret": "t"}}})
    (aerostat,) = pod(release)["containers"]
    assert "--web.config.file=/etc/aerostat-web/web.yml" in aerostat["args"]
    assert aerostat["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"
    service = release.one("Service")
    assert service["metadata"]["annotations"]["prometheus.io/scheme"] == "https"


def test_the_secrets_files_are_readable_by_aerostat(helm: Engine) -> None:
    """Secret files come with mode 0440 and owner root: without fsGroup the
    group is root's too and aerostat (10001) could not read them."""
    spec = pod(install(helm, AEROSTAT_VALUES))
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
    secrets = [volume["secret"] for volume in spec["volumes"] if "secret" in volume]
    assert secrets and all(secret["defaultMode"] == 0o440 for secret in secrets)
