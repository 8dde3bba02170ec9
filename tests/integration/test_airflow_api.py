"""The REST-API source's failure paths, over real sockets: aerostat polls a
stand-in for Airflow's API server (a small HTTP server answering in the
shape of Airflow 3.3.2's API v2 and Airflow 2's v1) that can be told to
refuse, fail, hang or talk nonsense. What a real Airflow answers is checked
end to end in tests/e2e; here is what cannot be provoked there on demand:
401, 5xx, HTML, a token that expires, v1 with basic auth.

Each case checks what the user sees: the up gauge, the errors counter by
reason, the last good state kept, one log line with what to do, and the
secret nowhere."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aerostat.airflow import airflow_built_in
from aerostat.airflow.api import Credentials, Target
from bridge import Bridge, running_bridge

PASSWORD = "s3cret-Pa55word"  # the secret the tests look for
NOW = "2026-12-05T10:00:00Z"


def jwt(expires: float) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS512'})}.{part({'sub': 'viewer', 'exp': expires})}.signature"


@dataclass
class StandIn:
    """What the stand-in answers; changed by the tests while it runs."""

    version: int = 2
    behaviour: str = "ok"  # ok, 401, 500, html, hang
    token_lifetime: float = 3600.0
    dags: list[dict[str, Any]] = field(default_factory=lambda: [{
        "dag_id": "etl", "is_paused": False, "is_stale": False,
        "next_dagrun_run_after": NOW, "next_dagrun_data_interval_start": "2026-12-05T09:00:00Z",
        "next_dagrun_data_interval_end": NOW}])
    tokens_issued: int = 0
    seen_authorization: list[str] = field(default_factory=list)
    valid_token: str = ""

    def answer(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, bytes]:
        route = path.split("?", 1)[0]
        if self.behaviour == "hang":
            time.sleep(3.0)
        if self.behaviour == "500":
            return 500, b'{"detail": "Internal Server Error"}'
        if self.behaviour == "html":
            return 200, b"<html><body>Please log in</body></html>"
        prefix = f"/api/v{self.version}"
        if route in ("/api/v2/monitor/health", "/api/v1/health"):
            if not route.startswith(prefix):
                return 404, b'{"detail": "Not Found"}'
            return 200, json.dumps({
                "metadatabase": {"status": "healthy"},
                "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": NOW},
                "triggerer": {"status": None, "latest_triggerer_heartbeat": None}}).encode()
        if route == "/auth/token" and method == "POST" and self.version == 2:
            sent = json.loads(body)
            if sent != {"username": "viewer", "password": PASSWORD}:
                return 401, b'{"detail": "Invalid credentials"}'
            self.tokens_issued += 1
            self.valid_token = jwt(time.time() + self.token_lifetime)
            return 201, json.dumps({"access_token": self.valid_token}).encode()
        authorization = headers.get("Authorization", "")
        self.seen_authorization.append(authorization)
        expected = (f"Bearer {self.valid_token}" if self.version == 2 else
                    "Basic " + base64.b64encode(f"viewer:{PASSWORD}".encode()).decode())
        if self.behaviour == "401" or authorization != expected:
            return 401, b'{"detail": "Not authenticated"}'
        collections = {"/dags": ("dags", self.dags), "/pools": ("pools", [
            {"name": "default_pool", "slots": 128, "open_slots": 127, "running_slots": 1,
             "queued_slots": 0, "occupied_slots": 1, "scheduled_slots": 0,
             "deferred_slots": 0}]),
            "/importErrors": ("import_errors", [{"filename": "/dags/broken.py",
                                                 "bundle_name": "dags-folder"}]),
            "/dags/~/dagRuns": ("dag_runs", [{"dag_id": "etl", "state": "success",
                                              "end_date": NOW}]),
            "/dags/~/dagRuns/~/taskInstances": ("task_instances", [])}
        route = route.removeprefix(prefix)
        if route.startswith("/dags/etl/dagRuns"):
            route = "/dags/~/dagRuns"
        if route not in collections:
            return 404, b'{"detail": "Not Found"}'
        key, items = collections[route]
        return 200, json.dumps({key: items, "total_entries": len(items)}).encode()


@contextlib.contextmanager
def stand_in_server(stand_in: StandIn) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, body = stand_in.answer(self.command, self.path, self.headers,
                                           self.rfile.read(length))
            with contextlib.suppress(OSError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        do_GET = do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Polled:
    bridge: Bridge
    stand_in: StandIn
    logs: list[str]

    def own(self, name: str, **labels: str) -> float | None:
        wanted = frozenset({"deployment": "etl", **labels}.items())
        return self.bridge.samples(own=True).get((name, wanted))

    def state(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: value for (sample, labels), value in self.bridge.samples().items()
                if sample == name}

    def wait_for(self, what: str, probe: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; logs: {self.logs}")
            time.sleep(0.05)

    def polls_after(self, count: int = 1) -> None:
        """Waits for this many more successful polls."""
        start = self.own("aerostat_airflow_api_last_success_timestamp_seconds") or 0.0
        seen = [start]

        def advanced() -> bool:
            now = self.own("aerostat_airflow_api_last_success_timestamp_seconds") or 0.0
            if now > seen[-1]:
                seen.append(now)
            return len(seen) > count
        self.wait_for(f"{count} more polls", advanced)


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()} "
                          f"{getattr(record, 'fields', '')}")


@contextlib.contextmanager
def polled(tmp_path: Path, stand_in: StandIn, **credentials: str) -> Iterator[Polled]:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    handler = LogLines()
    logger = logging.getLogger("aerostat")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with stand_in_server(stand_in) as url:
            target = Target("etl", url, Credentials(
                credentials.get("username", "viewer"), str(password_file)), timeout=1.0)
            built_in = airflow_built_in(api_targets=(target,), api_poll_interval=0.2,
                                        api_settle=0.0)
            with running_bridge(built_in=built_in) as bridge:
                yield Polled(bridge, stand_in, handler.lines)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.mark.parametrize("version", [2, 1], ids=["v2-jwt", "v1-basic"])
def test_state_is_read_with_each_api_versions_login(tmp_path: Path, version: int) -> None:
    with polled(tmp_path, StandIn(version=version)) as run:
        run.wait_for("a poll", lambda: run.own("aerostat_airflow_api_up") == 1.0)
        assert run.state("airflow_dag_import_errors") == {frozenset({
            ("deployment", "etl"), ("bundle", "dags-folder"), ("file", "/dags/broken.py")}): 1.0}
        assert run.state("airflow_dag_interval_seconds") == {
            frozenset({("deployment", "etl"), ("dag_id", "etl")}): 3600.0}
        assert run.state("airflow_pool_slots")[frozenset({
            ("deployment", "etl"), ("pool", "default_pool"), ("state", "open")})] == 127.0
        scheme = "Bearer " if version == 2 else "Basic "
        assert run.stand_in.seen_authorization
        assert all(seen.startswith(scheme) for seen in run.stand_in.seen_authorization)


def test_a_token_about_to_expire_is_renewed_before_a_poll_needs_it(tmp_path: Path) -> None:
    # a lifetime inside the renewal margin: every poll must log in again
    with polled(tmp_path, StandIn(token_lifetime=60.0)) as run:
        run.polls_after(3)
        assert run.stand_in.tokens_issued >= 3
        assert run.own("aerostat_airflow_api_errors_total", reason="unauthorized") == 0.0


@pytest.mark.parametrize(("behaviour", "reason", "advice"), [
    ("401", "unauthorized", "check the user and password"),
    ("500", "server_error", "see its log"),
    ("html", "malformed", "is the URL the API server's root?"),
    ("hang", "timeout", "retries with back-off"),
])
def test_a_failing_api_is_counted_logged_once_and_its_last_state_kept(
    tmp_path: Path, behaviour: str, reason: str, advice: str,
) -> None:
    with polled(tmp_path, StandIn()) as run:
        run.polls_after(1)
        kept = run.state("airflow_dag_last_success_timestamp_seconds")
        assert kept
        run.stand_in.behaviour = behaviour
        run.wait_for("two failed polls", lambda: (run.own(
            "aerostat_airflow_api_errors_total", reason=reason) or 0) >= 2, 20.0)
        assert run.own("aerostat_airflow_api_up") == 0.0
        assert run.state("airflow_dag_last_success_timestamp_seconds") == kept
        warnings = [line for line in run.logs if line.startswith("WARNING")]
        assert len(warnings) == 1, warnings
        assert reason in warnings[0] and advice in warnings[0]
        # StatsD is read all along
        run.bridge.send_udp(b"airflow.scheduler.heartbeat:1|c")
        run.bridge.wait_for_counter("statsd_exporter_udp_packets_total", 1)
        run.stand_in.behaviour = "ok"
        run.wait_for("the source to recover", lambda: run.own("aerostat_airflow_api_up") == 1.0,
                     70.0)
        assert any("answering again" in line for line in run.logs)
        assert not [line for line in run.logs if PASSWORD in line]
        assert PASSWORD not in run.bridge.scrape_text()


def test_a_wrong_password_is_unauthorized_and_never_shown(tmp_path: Path) -> None:
    with polled(tmp_path, StandIn(), username="intruder") as run:
        run.wait_for("a refused login", lambda: (run.own(
            "aerostat_airflow_api_errors_total", reason="unauthorized") or 0) >= 1)
        assert run.own("aerostat_airflow_api_up") == 0.0
        assert not [line for line in run.logs if PASSWORD in line]
        assert PASSWORD not in run.bridge.scrape_text()
