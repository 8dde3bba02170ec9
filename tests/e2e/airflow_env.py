"""A real Apache Airflow for the end-to-end test: its own virtual environment
(installed from the package index once, then reused), `airflow standalone`
in a session of its own that is always torn down, and a small client of its
REST API (Airflow 3: /api/v2 behind the simple auth manager)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# The newest 3.x on the package index when this was written (`pip index
# versions apache-airflow`), and the version the project's catalog and
# capture describe.
AIRFLOW_VERSION = os.environ.get("AEROSTAT_E2E_AIRFLOW_VERSION", "3.3.2")
# Outside the repository, kept between runs so that a rerun skips the install.
E2E_ROOT = Path(os.environ.get("AEROSTAT_E2E_DIR", "/tmp/aerostat-e2e"))

INSTALL_TIMEOUT = 600.0
CLI_TIMEOUT = 120.0

T = TypeVar("T")
Say = Callable[[str], None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 1.0,
    diagnose: Callable[[], str] = lambda: "",
) -> T:
    """Calls ``probe`` until it returns something truthy and returns that;
    fails naming ``what`` after ``timeout`` seconds. ``diagnose`` may raise
    at once (a process died) or add context to the failure."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}\n{diagnose()}"
            )
        time.sleep(interval)


def _run(command: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


# --- the virtual environment ------------------------------------------------


@dataclass(frozen=True)
class AirflowVenv:
    path: Path
    version: str

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def airflow(self) -> str:
        return str(self.bin / "airflow")


def _installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    probe = "import statsd, airflow; print(airflow.__version__)"
    done = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_venv(version: str, root: Path, say: Say) -> AirflowVenv:
    """``root/venv-<version>`` with apache-airflow==version and statsd: reused
    when a previous install completed and still imports, installed anew
    otherwise. A lock keeps two test sessions from installing at once."""
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"venv-{version}"
    marker = venv / ".aerostat-e2e-complete"
    with open(root / f"venv-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and _installed_version(venv) == version:
            say(f"reusing apache-airflow=={version} in {venv}")
            return AirflowVenv(venv, version)
        shutil.rmtree(venv, ignore_errors=True)
        say(f"installing apache-airflow=={version} and statsd into {venv} (a minute or two)")
        started = time.monotonic()
        _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        _run([*pip, "install", "--quiet", f"apache-airflow=={version}", "statsd"], INSTALL_TIMEOUT)
        installed = _installed_version(venv)
        assert installed == version, f"installed apache-airflow is {installed}, not {version}"
        marker.write_text(version + "\n")
        say(f"installed apache-airflow=={version} in {time.monotonic() - started:.0f} s")
        return AirflowVenv(venv, version)


# --- the processes -----------------------------------------------------------


def _session_members(session: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``session``. Airflow's
    task supervisors put each task in a process group of its own, so killing
    standalone's process group alone would leave them behind; none of them
    leaves the session."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the fields after the command name, which may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        state, sid = fields[0], int(fields[3])
        if sid == session and state != "Z":
            members.append(int(entry.name))
    return members


def stop_session(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM to every process of ``process``'s session (it was started with
    ``start_new_session``), SIGKILL to whatever is left after ``grace``
    seconds; fails if anything survives that."""
    session = process.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(session, sig)
        for pid in _session_members(session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()  # reaps standalone itself, our child
            if not _session_members(session):
                break
            time.sleep(0.2)
        if not _session_members(session):
            break
    process.wait(timeout=10)
    left = _session_members(session)
    assert not left, f"processes of airflow standalone survived SIGKILL: {left}"


@dataclass
class Airflow:
    """One Airflow installation: ``venv``'s code, ``env``'s configuration."""

    venv: AirflowVenv
    home: Path
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        return _run([self.venv.airflow, *args], CLI_TIMEOUT, self.env)

    @contextlib.contextmanager
    def standalone(self, log: Path) -> Iterator[subprocess.Popen[bytes]]:
        """`airflow standalone` in a session of its own, output to ``log``;
        the whole session is stopped on exit, whatever happened."""
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [self.venv.airflow, "standalone"],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            yield process
        finally:
            stop_session(process)


def airflow_env(
    venv: AirflowVenv, home: Path, dags: Path, statsd_port: int, api_port: int
) -> dict[str, str]:
    """The environment of every Airflow command: this process's, less any
    Airflow or Python path settings of its own, plus the configuration of
    the capture's recording (shared/README.md) and what keeps this instance
    to itself on 127.0.0.1."""
    # SQLite's busy timeout, 5 s by default: on a loaded 2-core machine a
    # scheduler heartbeat waited longer for the database lock and the
    # scheduler exited ("database is locked", 3.3.2). Airflow imports the
    # connect args from $AIRFLOW_HOME/config, which it puts on sys.path.
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "aerostat_e2e_database.py").write_text('CONNECT_ARGS = {"timeout": 60}\n')
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    return {
        **inherited,
        "PATH": f"{venv.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "aerostat_e2e_database.CONNECT_ARGS",
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        # Airflow 3 has no webserver: [api] host/port place the API server, and
        # the workers reach its execution API at [api] base_url + /execution/
        # (without base_url they assume http://localhost:8080).
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        # the log servers of the workers and the triggerer: ports of their own
        # instead of the fixed 8793 and 8794
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # Only the runs the test triggers: the DAGs' own schedules (every 1, 2
        # and 3 minutes) would keep adding runs while the test compares.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }


# --- the REST API -------------------------------------------------------------


class AirflowApi:
    """Airflow 3's REST API with a token of the simple auth manager's admin,
    whose password `airflow standalone` generates into AIRFLOW_HOME."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.token: str | None = None

    def _request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def healthy(self) -> bool:
        """True once the API server answers and reports the metadata DB, the
        scheduler, the triggerer and the DAG processor healthy."""
        try:
            status, health = self._request("GET", "/api/v2/monitor/health")
        except OSError:
            return False
        if status != 200 or not isinstance(health, dict):
            return False
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all((health.get(part) or {}).get("status") == "healthy" for part in parts)

    def log_in(self, home: Path) -> None:
        passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        status, answer = self._request(
            "POST", "/auth/token", {"username": "admin", "password": passwords["admin"]}
        )
        assert status == 201, f"POST /auth/token answered {status}: {answer}"
        self.token = answer["access_token"]

    def get(self, path: str, **query: object) -> Any:
        url = "/api/v2" + path + ("?" + urllib.parse.urlencode(query) if query else "")
        status, answer = self._request("GET", url)
        assert status == 200, f"GET {url} answered {status}: {answer}"
        return answer

    def collection(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a paged collection (at most 100 a page)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, limit=100, offset=len(items))
            items.extend(page[key])
            if len(items) >= page["total_entries"] or not page[key]:
                return items


def quoted(identifier: str) -> str:
    """A run id (``manual__2026-…+00:00``) as one path segment."""
    return urllib.parse.quote(identifier, safe="")
