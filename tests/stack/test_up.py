"""``aerostat up`` as a user runs it: a real process with a real Prometheus,
stopped with Ctrl-C (SIGINT); and what it says when something is missing or
in the way.

Grafana is not packaged for Debian, so the wiring test puts a stand-in
``grafana`` first on the PATH: a small server that answers /api/health and
records the command line and settings it was started with, which is all
``aerostat up`` relies on. Readiness, the settings Grafana reads and the
stop are real; Grafana's own reading of the provisioning is not tested here
(tests/stack checks the files against Grafana's schema)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from aerostat.stack.up import CaptureReplay, grafana_home
from stack.prometheus_process import free_port, http_get, port_is_free

GRAFANA_STAND_IN = """\
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

Path(os.environ["GF_PATHS_LOGS"], "stand-in.json").write_text(json.dumps({
    "argv": sys.argv[1:], "cwd": os.getcwd(),
    "settings": {k: v for k, v in os.environ.items() if k.startswith("GF_")},
}))


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        # Grafana's home page answers too (anonymous viewers, as up sets)
        found = self.path in ("/api/health", "/")
        self.send_response(200 if found else 404)
        self.end_headers()
        self.wfile.write(b'{"database": "ok"}' if found else b"")

    def log_message(self, *args):
        pass


address = (os.environ["GF_SERVER_HTTP_ADDR"], int(os.environ["GF_SERVER_HTTP_PORT"]))
HTTPServer(address, Health).serve_forever()
"""


def _aerostat(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aerostat.cli", *args], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started, from every one of its threads."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as listing:
            found.update(int(child) for child in listing.read().split())
    return found


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """What the process printed up to and including ``marker``, read from
    its stdout's descriptor, so that a silent process cannot hang the test."""
    assert process.stdout is not None
    descriptor = process.stdout.fileno()
    printed = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in printed:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{marker!r} not printed within {timeout} s: {printed!r}"
        if select.select([descriptor], [], [], remaining)[0]:
            chunk = os.read(descriptor, 65536)
            assert chunk, f"exited before printing {marker!r}: {printed!r}"
            printed += chunk
    return printed.decode()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _query(prometheus_url: str, expr: str) -> list[dict[str, object]]:
    status, body = http_get(f"{prometheus_url}/api/v1/query?query={quote(expr)}")
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", answer
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


@pytest.fixture
def ports() -> dict[str, int]:
    return {"statsd": free_port((socket.SOCK_DGRAM, socket.SOCK_STREAM)), "web": free_port(),
            "prometheus": free_port(), "grafana": free_port()}


def _port_flags(ports: dict[str, int]) -> list[str]:
    return [argument for name, port in ports.items()
            for argument in (f"--{name}-port", str(port))]


@pytest.fixture
def grafana_on_path(tmp_path: Path) -> dict[str, str]:
    """The environment with the stand-in ``grafana`` first on the PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "grafana"
    stand_in.write_text(f"#!{sys.executable}\n{GRAFANA_STAND_IN}")
    stand_in.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture
def stack(tmp_path: Path, ports: dict[str, int],
          grafana_on_path: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = _aerostat("up", "--demo", "--demo-speed", "20", "--state-dir",
                        str(tmp_path / "state"), *_port_flags(ports), env=grafana_on_path)
    try:
        yield process
    finally:
        if process.poll() is None:  # the test failed before stopping it
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def _query_range(prometheus_url: str, expr: str, start: float, end: float,
                 step: float) -> list[dict[str, object]]:
    status, body = http_get(f"{prometheus_url}/api/v1/query_range?query={quote(expr)}"
                            f"&start={start}&end={end}&step={step}")
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", answer
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


def test_demo_fills_prometheus_and_ctrl_c_stops_everything(
        stack: subprocess.Popen[str], ports: dict[str, int], tmp_path: Path) -> None:
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    printed = _read_until(stack, "statsd_prefix = airflow", 120)
    ready = time.time()
    # the README's query shows the last hour at once: the backfill
    hour = _query_range(prometheus, "sum by (dag_id, state) "
                        "(rate(airflow_ti_finish_total[5m]))", ready - 3600, ready, 60)
    assert hour, printed
    times = sorted({float(point[0]) for series in hour
                    for point in series["values"]})  # type: ignore[attr-defined]
    assert times[0] <= ready - 3600 + 300 and times[-1] >= ready - 120, (times[0], times[-1])
    assert len(times) >= 55, "a point a minute across the hour"
    assert {series["metric"]["state"] for series in hour} >= {  # type: ignore[index]
        "success", "failed"}
    # then the live scrapes carry every counter on: no reset at the seam
    deadline = time.monotonic() + 60
    while True:
        assert stack.poll() is None, f"aerostat up exited: {stack.communicate()}"
        live = _query(prometheus, f"timestamp(airflow_scheduler_heartbeat_total) > {ready + 6}")
        if live:
            break
        assert time.monotonic() < deadline, "no live scrape reached Prometheus in 60 s"
        time.sleep(0.5)
    assert live[0]["metric"]["job"] == "aerostat"  # type: ignore[index]
    status, body = http_get(f"{prometheus}/api/v1/label/__name__/values")
    counters = [name for name in json.loads(body)["data"]
                if name.startswith("airflow_") and name.endswith("_total")]
    assert len(counters) > 20, counters
    for name in counters:
        assert not _query(prometheus, f"resets({name}[2h]) > 0"), name
    # the rendered rule files were loaded
    status, body = http_get(f"{prometheus}/api/v1/rules")
    assert status == 200
    groups = {group["name"] for group in json.loads(body)["data"]["groups"]}
    assert {"airflow-recording", "airflow-alerts", "aerostat-alerts"} <= groups
    children = _children(stack.pid)
    assert len(children) == 2, "Prometheus and Grafana"
    # every link it prints answers (Debian's Prometheus has /classic/ pages only)
    links = re.findall(r"http://\S+[^\s,)]", printed)
    assert len(links) >= 6, printed
    for link in links:
        assert http_get(link)[0] == 200, link
    assert any("/classic/alerts" in link or link.endswith("/alerts") for link in links)
    # aerostat's status page links to the Prometheus and Grafana it runs with
    status, body = http_get(f"http://127.0.0.1:{ports['web']}/api/status")
    shown = dict(json.loads(body)["links"])
    assert shown["Prometheus"].startswith(prometheus), shown
    assert shown["Grafana"] == f"http://127.0.0.1:{ports['grafana']}", shown

    stack.send_signal(signal.SIGINT)
    out, err = stack.communicate(timeout=60)
    out = printed + out

    assert stack.returncode == 0, err
    assert "Traceback" not in err
    for line in ("aerostat: ready at", "Prometheus: ready at", "Grafana: ready at",
                 "[metrics]", "statsd_on = True", f"statsd_port = {ports['statsd']}",
                 "statsd_prefix = airflow", "Grafana: stopped", "Prometheus: stopped",
                 "aerostat: stopped"):
        assert line in out, f"{line!r} not in:\n{out}"
    assert not [pid for pid in children if _alive(pid)]
    for name, port in ports.items():
        assert port_is_free(port), f"{name} port {port} still taken"
    assert port_is_free(ports["statsd"], socket.SOCK_DGRAM, host="0.0.0.0")

    # Grafana was started on the rendered provisioning, its data in the state directory
    state = tmp_path / "state"
    started = json.loads((state / "grafana" / "logs" / "stand-in.json").read_text())
    assert started["argv"][0] == "server"
    settings = started["settings"]
    assert settings["GF_SERVER_HTTP_PORT"] == str(ports["grafana"])
    assert settings["GF_PATHS_DATA"] == str(state / "grafana" / "data")
    provisioning = Path(settings["GF_PATHS_PROVISIONING"])
    datasource = (provisioning / "datasources" / "aerostat.yml").read_text()
    assert f"url: {prometheus}" in datasource
    provider = (provisioning / "dashboards" / "aerostat.yml").read_text()
    dashboards = state / "stack" / "grafana" / "dashboards"
    assert f"path: {dashboards}" in provider
    assert Path(settings["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).parent == dashboards
    assert (dashboards / "airflow-overview.json").is_file()
    assert any((state / "prometheus-demo").iterdir()), "Prometheus kept no data"


def test_prometheus_dying_ends_the_run_with_its_log(tmp_path: Path,
                                                   ports: dict[str, int]) -> None:
    process = _aerostat("up", "--state-dir", str(tmp_path / "state"), *_port_flags(ports))
    try:
        before = _read_until(process, "The stack is up", timeout=30)
        found = [pid for pid in _children(process.pid)
                 if b"prometheus" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        os.kill(found[0], signal.SIGKILL)
        out, err = process.communicate(timeout=30)
        out = before + out
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1
    assert "Prometheus was killed by SIGKILL while running; the end of its log" in err
    assert "Server is ready to receive web requests" in err  # the log's last lines
    assert "Traceback" not in err + out
    assert "aerostat: stopped" in out
    assert port_is_free(ports["web"])


def test_demo_without_promtool_runs_without_history(tmp_path: Path,
                                                    ports: dict[str, int]) -> None:
    only_prometheus = tmp_path / "bin"
    only_prometheus.mkdir()
    prometheus_binary = shutil.which("prometheus")
    assert prometheus_binary is not None
    (only_prometheus / "prometheus").symlink_to(prometheus_binary)
    process = _aerostat("up", "--demo", "--state-dir", str(tmp_path / "state"),
                        *_port_flags(ports), env={**os.environ, "PATH": str(only_prometheus)})
    try:
        printed = _read_until(process, "The stack is up", timeout=60)
        prometheus = f"http://127.0.0.1:{ports['prometheus']}"
        assert not _query(prometheus, "airflow_ti_finish_total"), "no history"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert "demo: no `promtool` on the PATH" in printed
    assert process.returncode == 0, err
    assert "Traceback" not in err + out


def test_without_prometheus_it_says_how_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    process = _aerostat("up", "--state-dir", str(tmp_path / "state"),
                        env={**os.environ, "PATH": str(empty)})
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "sudo apt-get install prometheus" in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "state").exists(), "nothing is written before the check"


def test_a_taken_port_names_its_flag(tmp_path: Path, ports: dict[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", ports["prometheus"]))
        taken.listen()
        process = _aerostat("up", "--state-dir", str(tmp_path / "state"), *_port_flags(ports))
        out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"port {ports['prometheus']} (Prometheus) is not free" in err
    assert "--prometheus-port" in err
    assert "Traceback" not in err + out


def test_replay_paces_the_capture_and_starts_again() -> None:
    capture = [(10.0, b"a:1|c"), (10.1, b"b:1|c"), (10.3, b"c:1|c")]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        replay = CaptureReplay(capture, receiver.getsockname(), speed=2.0)
        replay.start()
        try:
            arrivals = [(receiver.recv(100), time.monotonic()) for _ in range(6)]
        finally:
            replay.stop()
    assert [data for data, _ in arrivals] == [b"a:1|c", b"b:1|c", b"c:1|c"] * 2
    first = arrivals[0][1]
    # at twice the recorded pace: 0.3 s of capture in 0.15 s, then a pause
    # of the mean gap (0.15 s / 2) before the next pass
    assert arrivals[2][1] - first == pytest.approx(0.15, abs=0.05)
    assert arrivals[3][1] - first == pytest.approx(0.225, abs=0.05)
    assert replay.passes >= 1


@pytest.mark.parametrize("home", ["", "share/grafana"])
def test_grafana_home_beside_bin_or_in_homebrews_share(tmp_path: Path, home: str) -> None:
    # a tarball: conf/ beside bin/; Homebrew: Cellar/grafana/X/bin/grafana
    # (linked from its prefix's bin/) with conf/ in Cellar/grafana/X/share/grafana
    prefix = tmp_path / "Cellar" / "grafana" / "12.0.0"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "grafana").write_text("")
    (prefix / home / "conf").mkdir(parents=True)
    (prefix / home / "conf" / "defaults.ini").write_text("")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "grafana").symlink_to(prefix / "bin" / "grafana")
    assert grafana_home(str(tmp_path / "bin" / "grafana")) == prefix / home
