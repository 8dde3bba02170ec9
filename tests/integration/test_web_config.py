"""--web.config.file on a real server: HTTPS with basic auth on every path,
401 for wrong credentials, plain HTTP against the TLS port refused cleanly,
client certificates, a rotated certificate picked up without a restart, and
a real Prometheus (Debian's binary) scraping over TLS with credentials."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from aerostat.expose.status import STATUS_JSON_PATH
from bridge import Bridge, running_bridge
from pki import Pki, make_pki, sign
from stack.prometheus_process import http_get, running_prometheus

PASSWORD = "correct horse"
# cost 10, as htpasswd -B makes by default: the cost a user's file has
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def web_config(directory: Path, pki: Pki, extra: str = "") -> Path:
    path = directory / "web.yml"
    path.write_text(
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"{extra}basic_auth_users:\n  prometheus: {HASH}\n"
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
    )
    return path


@pytest.fixture
def bridge(tmp_path: Path, pki: Pki) -> Iterator[Bridge]:
    with running_bridge(web_config_file=str(web_config(tmp_path, pki)),
                        enable_lifecycle=True) as running:
        yield running


def client_context(pki: Pki, cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def request(bridge: Bridge, pki: Pki, path: str, user: str | None = "prometheus",
            password: str = PASSWORD, method: str = "GET",
            context: ssl.SSLContext | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPSConnection("127.0.0.1", bridge.server.http_port, timeout=10,
                                             context=context or client_context(pki))
    headers = {}
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


PATHS = [("GET", "/metrics"), ("GET", "/"), ("GET", STATUS_JSON_PATH), ("GET", "/-/healthy"),
         ("GET", "/-/ready"), ("POST", "/-/reload"), ("GET", "/nowhere")]


@pytest.mark.parametrize(("method", "path"), PATHS, ids=[path for _, path in PATHS])
def test_every_path_wants_the_credentials(bridge: Bridge, pki: Pki, method: str,
                                          path: str) -> None:
    for user, password in ((None, ""), ("prometheus", "wrong"), ("nobody", PASSWORD)):
        refused = request(bridge, pki, path, user, password, method)
        assert refused.status == 401, (user, password)
        assert refused.getheader("WWW-Authenticate") == 'Basic realm="aerostat"'
    served = request(bridge, pki, path, method=method)
    assert served.status == (404 if path == "/nowhere" else 200)
    assert served.getheader("X-Content-Type-Options") == "nosniff"


def scrape(bridge: Bridge, pki: Pki) -> str:
    connection = http.client.HTTPSConnection("127.0.0.1", bridge.server.http_port,
                                             timeout=10, context=client_context(pki))
    token = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    connection.request("GET", "/metrics", headers={"Authorization": f"Basic {token}"})
    body = connection.getresponse().read().decode()
    connection.close()
    return body


def send_udp(bridge: Bridge, datagram: bytes) -> None:
    # Bridge.send_udp scrapes over plain HTTP to wait: not on a TLS port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(datagram, bridge.udp_address)


def test_statsd_goes_through_and_is_scraped_over_tls(bridge: Bridge, pki: Pki) -> None:
    send_udp(bridge, b"tls.check:3|c")
    deadline = time.monotonic() + 5
    while "tls_check 3" not in (body := scrape(bridge, pki)):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    # the password's hash is never shown, not even on the status page
    assert HASH not in body
    for path in ("/", STATUS_JSON_PATH):
        assert HASH not in get_body(bridge, pki, path)


def get_body(bridge: Bridge, pki: Pki, path: str) -> str:
    connection = http.client.HTTPSConnection("127.0.0.1", bridge.server.http_port,
                                             timeout=10, context=client_context(pki))
    token = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    connection.request("GET", path, headers={"Authorization": f"Basic {token}"})
    response = connection.getresponse()
    assert response.status == 200
    body = response.read().decode()
    connection.close()
    return body


def test_a_wrong_password_is_never_logged(bridge: Bridge, pki: Pki,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "hunter2-wrong-password"
    assert request(bridge, pki, "/metrics", password=wrong).status == 401
    assert request(bridge, pki, "/metrics").status == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert '"GET /metrics HTTP/1.1" 401' in logged  # the requests were logged, at debug
    token = base64.b64encode(f"prometheus:{wrong}".encode()).decode()
    for secret in (wrong, token, PASSWORD, HASH):
        assert secret not in logged


def test_plain_http_against_the_tls_port_is_refused_cleanly(
        bridge: Bridge, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", bridge.server.http_port), timeout=5) as plain:
        plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = plain.recv(4096)
    assert answer.startswith(b"HTTP/1.0 400 Bad Request")
    assert b"HTTP request to an HTTPS server" in answer
    # a scanner sending junk, and one that connects and says nothing
    with socket.create_connection(("127.0.0.1", bridge.server.http_port), timeout=5) as junk:
        junk.sendall(b"\x00\x01\x02junk")
        # closed with the junk unread, the close may come as a reset: as good
        with contextlib.suppress(ConnectionResetError):
            assert junk.recv(4096) == b""
    # nothing alarming in the log, and the port still serves
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert request(bridge, pki, "/metrics").status == 200


def test_a_client_certificate_is_required_when_configured(tmp_path: Path, pki: Pki) -> None:
    extra = (f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca_cert}\n"
             "  client_allowed_sans: [scraper.test]\n")
    with running_bridge(web_config_file=str(web_config(tmp_path, pki, extra))) as bridge:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            request(bridge, pki, "/metrics")
        assert request(bridge, pki, "/metrics",
                       context=client_context(pki, cert=True)).status == 200


def test_a_rotated_certificate_is_served_without_a_restart(tmp_path: Path, pki: Pki) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(pki.server_cert, served / "tls.crt")
    shutil.copy(pki.server_key, served / "tls.key")
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: served/tls.crt\n  key_file: served/tls.key\n")

    def serial(port: int) -> int:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                client_context(pki).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return int(tls.getpeercert()["serialNumber"], 16)  # type: ignore[index, arg-type]

    with running_bridge(web_config_file=str(web)) as bridge:
        port = bridge.server.http_port
        first = serial(port)
        cert, key = sign(tmp_path, "renewed", pki.ca_cert, pki.ca_key, "/CN=aerostat",
                         "IP:127.0.0.1", "serverAuth")
        shutil.copy(key, served / "tls.key")
        shutil.copy(cert, served / "tls.crt")
        deadline = time.monotonic() + 10
        while serial(port) == first:
            assert time.monotonic() < deadline, "the renewed certificate was not picked up"
            time.sleep(0.2)


def test_a_real_prometheus_scrapes_over_tls_with_basic_auth(tmp_path: Path, pki: Pki) -> None:
    with running_bridge(web_config_file=str(web_config(tmp_path, pki))) as bridge:
        send_udp(bridge, b"airflow.scheduler_heartbeat:1|c")
        target = f"127.0.0.1:{bridge.server.http_port}"
        password_file = tmp_path / "password"
        password_file.write_text(PASSWORD)
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""\
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
- job_name: aerostat
  scheme: https
  basic_auth: {{username: prometheus, password_file: {password_file}}}
  tls_config: {{ca_file: {pki.ca_cert}}}
  static_configs: [{{targets: ["{target}"]}}]
- job_name: wrong-password
  scheme: https
  basic_auth: {{username: prometheus, password: guessed}}
  tls_config: {{ca_file: {pki.ca_cert}}}
  static_configs: [{{targets: ["{target}"]}}]
- job_name: plain-http
  static_configs: [{{targets: ["{target}"]}}]
""")
        with running_prometheus(config, tmp_path) as prometheus:
            up = prometheus.wait_for_series('up{job="aerostat"} == 1')
            assert len(up) == 1
            found = prometheus.wait_for_series(
                'airflow_scheduler_heartbeat{job="aerostat"}')
            assert found[0]["value"][1] == "1"
            for job in ("wrong-password", "plain-http"):
                down = prometheus.wait_for_series(f'up{{job="{job}"}}')
                assert down[0]["value"][1] == "0", job
            # why, in Prometheus's words, on its targets API
            errors = last_errors(prometheus.url)
            assert "401 Unauthorized" in errors["wrong-password"]
            assert "400 Bad Request" in errors["plain-http"]
            assert errors["aerostat"] == ""


def last_errors(prometheus_url: str) -> dict[str, str]:
    """Each job's last scrape error, from Prometheus's targets API; the
    test waits for one scrape of each."""
    deadline = time.monotonic() + 15
    while True:
        status, body = http_get(f"{prometheus_url}/api/v1/targets")
        assert status == 200
        targets = json.loads(body)["data"]["activeTargets"]
        errors = {t["labels"]["job"]: t["lastError"] for t in targets}
        if all(t["health"] != "unknown" for t in targets) or time.monotonic() > deadline:
            return errors
        time.sleep(0.5)


def aerostat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aerostat.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_a_bad_web_config_stops_serve_with_one_line(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                   "  min_version: TLS1.2\n")
    for args in (["serve", "--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=",
                  "--web.listen-address=127.0.0.1:0", f"--web.config.file={web}"],
                 ["serve", f"--web.config.file={web}", "--check-config"],
                 ["check-config", f"--web.config.file={web}"]):
        done = aerostat(*args)
        assert done.returncode == 1, args
        assert done.stderr.strip().splitlines()[-1] == (
            f"aerostat: error: {web}:4:16: tls_server_config.min_version: unknown TLS version "
            "'TLS1.2'; known: TLS10, TLS11, TLS12, TLS13"), done.stderr
        assert "Traceback" not in done.stderr


def test_check_config_checks_the_files_a_web_config_names(tmp_path: Path, pki: Pki) -> None:
    web = web_config(tmp_path, pki)
    done = aerostat("check-config", f"--web.config.file={web}")
    assert (done.returncode, done.stdout) == (0, f"{web}: OK, TLS on, 1 basic-auth user\n")
    assert HASH not in done.stdout + done.stderr
    pki.server_key.rename(tmp_path / "moved.key")
    try:
        done = aerostat("check-config", f"--web.config.file={web}")
        assert done.returncode == 1
        assert "tls_server_config.key_file: cannot read" in done.stderr
    finally:
        (tmp_path / "moved.key").rename(pki.server_key)


def test_the_otlp_listener_is_guarded_by_the_same_file(
        tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OpenTelemetry SDK's own OTLP/HTTP exporter, as Airflow's OTel mode
    uses it, pushes over TLS with the credentials in a header."""
    # requests lets these override the exporter's certificate_file
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    with running_bridge(web_config_file=str(web_config(tmp_path, pki)),
                        otlp_listen_address="127.0.0.1:0") as bridge:
        assert bridge.server.otlp is not None
        url = f"https://127.0.0.1:{bridge.server.otlp.address[1]}/v1/metrics"

        def push(password: str, value: int) -> None:
            token = base64.b64encode(f"prometheus:{password}".encode()).decode()
            exporter = OTLPMetricExporter(endpoint=url, certificate_file=str(pki.ca_cert),
                                          headers={"Authorization": f"Basic {token}"},
                                          timeout=5)
            reader = PeriodicExportingMetricReader(exporter,
                                                   export_interval_millis=3_600_000)
            provider = MeterProvider(metric_readers=[reader])
            provider.get_meter("test").create_counter(f"otlp_tls_{value}").add(value)
            provider.force_flush()
            provider.shutdown()

        push("wrong", 7)
        push(PASSWORD, 5)
        deadline = time.monotonic() + 5
        while "otlp_tls_5" not in (body := scrape(bridge, pki)):
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        assert "otlp_tls_7" not in body  # refused, nothing taken
        connection = http.client.HTTPSConnection(
            "127.0.0.1", bridge.server.otlp.address[1], timeout=10, context=client_context(pki))
        connection.request("POST", "/v1/metrics", body=b"",
                           headers={"Content-Type": "application/x-protobuf"})
        refused = connection.getresponse()
        assert refused.status == 401
        assert refused.getheader("WWW-Authenticate") == 'Basic realm="aerostat"'
        connection.close()
        # every refusal counted by status: the wrong exporter's two exports
        # (force_flush, then shutdown's) and this request
        counted = 'aerostat_otlp_requests_total{code="401"} 3'
        deadline = time.monotonic() + 5
        while counted not in (body := scrape(bridge, pki)):
            assert time.monotonic() < deadline, [
                line for line in body.splitlines() if "otlp_requests" in line]
            time.sleep(0.05)
        # plain HTTP to the OTLP port is refused as on the metrics port
        with socket.create_connection(("127.0.0.1", bridge.server.otlp.address[1]),
                                      timeout=5) as plain:
            plain.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert plain.recv(4096).startswith(b"HTTP/1.0 400 Bad Request")


def test_check_config_with_nothing_to_check_says_so_in_one_line() -> None:
    done = aerostat("check-config")
    assert done.returncode == 1
    assert done.stderr == ("aerostat: error: check-config: name a mapping file, or a web "
                           "config file with --web.config.file\n")
