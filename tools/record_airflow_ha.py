"""Records the StatsD traffic of a highly available Airflow 3.3.2 for
tests/stack/captures: each component its own process (an API server, two
schedulers, two DAG processors on a DAG bundle each, a triggerer),
LocalExecutor on a PostgreSQL metadata database (SQLite allows one
scheduler only), plain StatsD with Airflow's defaults. The DAGs are
triggered a few times each, one scheduler is stopped while runs are under
way, and when every run has ended Airflow's own record of them is read
from its REST API and saved beside the capture.

Not part of the tests, which replay what it wrote. It needs Debian's
postgresql-15 (run as root: the cluster runs as the postgres user), the
Airflow virtual environment of tests/e2e (installed on first use), and
psycopg2-binary and asyncpg (Airflow opens its database both ways),
installed into a directory of their own under --work (on the PYTHONPATH
of the Airflow processes only: the e2e environment stays as it is).

    python3 tools/record_airflow_ha.py [--out tests/stack/captures] [--work /tmp/aerostat-ha]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e.airflow_env import (  # noqa: E402
    E2E_ROOT,
    AirflowApi,
    AirflowVenv,
    _run,
    ensure_venv,
    free_port,
    quoted,
    stop_session,
    wait_until,
)

VERSION = "3.3.2"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DAGS = ROOT / "tests" / "e2e" / "dags"
# two bundles, one DAG processor each: the DAG-count and parse gauges come
# from two processes that each see part of the DAGs
BUNDLES = {"bundle-a": ("demo_success", "demo_failing"), "bundle-b": ("demo_sensor_pool",)}
# each DAG allows one active run: triggered several times, runs queue and
# are taken up by whichever scheduler gets there first
TRIGGERS = {"demo_success": 6, "demo_failing": 3, "demo_sensor_pool": 3}
POOL = "demo_pool"
STOP_AFTER = 90.0  # seconds after the first trigger: runs of every DAG are under way
TAIL = 40.0  # recorded after the last run ended: the stopped scheduler stays silent past 30 s
RUNS_TIMEOUT = 600.0


def say(message: str) -> None:
    print(f"[record] {message}", file=sys.stderr, flush=True)


class Recorder:
    """A UDP socket writing each datagram as a JSON line with the time since
    the recording started and the address it came from."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.output = open(path, "w")  # noqa: SIM115 (closed by stop())
        self.started = time.monotonic()
        self.count = 0
        self.senders: Counter[str] = Counter()
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="recorder")
        self.thread.start()

    def now(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def _loop(self) -> None:
        while self.running:
            try:
                data, (host, port) = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            sender = f"{host}:{port}"
            line = {"t": self.now(), "sender": sender, "data": data.decode(errors="replace")}
            self.output.write(json.dumps(line) + "\n")
            self.count += 1
            self.senders[sender] += 1

    def stop(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()
        self.output.close()


class Roles:
    """Which process sends from which port: `ss` names the process that
    holds each UDP socket connected to the recorder, and its ancestry (up
    to one of the components started here) names its role. Asked every
    second while recording, since task processes come and go."""

    def __init__(self, recorder_port: int) -> None:
        self.recorder_port = recorder_port
        self.components: dict[int, str] = {}  # session id (= leader pid) → role
        self.ports: dict[str, dict[str, Any]] = {}

    def _role(self, pid: int) -> tuple[str, str]:
        stat = Path(f"/proc/{pid}/stat").read_text()
        session = int(stat[stat.rindex(")") + 2 :].split()[3])
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        return self.components.get(session, "other"), command[:120]

    def poll(self, senders: Iterable[str]) -> None:
        """Names the ``senders`` (host:port as the recorder saw them) not
        named yet. Airflow's StatsD sockets are unconnected, bound to
        0.0.0.0 at their first send: they are found by port."""
        unnamed = {int(sender.rsplit(":", 1)[1]): sender for sender in senders
                   if sender not in self.ports}
        if not unnamed:
            return
        listing = subprocess.run(["ss", "-uapnH"], capture_output=True, text=True, check=False)
        for row in listing.stdout.splitlines():
            fields = row.split()
            if len(fields) < 4 or not fields[3].rsplit(":", 1)[-1].isdigit():
                continue
            sender = unnamed.get(int(fields[3].rsplit(":", 1)[1]))
            pids = [int(pid) for pid in re.findall(r"pid=(\d+)", row)]
            if sender is None or not pids:
                continue
            with contextlib.suppress(OSError, ValueError):
                role, command = self._role(pids[0])
                self.ports[sender] = {"role": role, "pid": pids[0], "command": command}


# --- PostgreSQL --------------------------------------------------------------------


@contextlib.contextmanager
def postgres(work: Path) -> Iterator[str]:
    """A throw-away PostgreSQL 15 cluster under ``work`` on a free port, as
    the postgres user; its SQLAlchemy URL. Stopped and removed on exit."""
    data = work / "pg"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    shutil.chown(data, "postgres", "postgres")
    port = free_port()

    def as_postgres(*command: str) -> str:
        return _run(["runuser", "-u", "postgres", "--", *command], 120)

    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w",
                "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200",
                "start")
    try:
        as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "airflow")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/airflow"
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


# --- Airflow -----------------------------------------------------------------------


def environment(venv: AirflowVenv, work: Path, database: str, statsd_port: int,
                api_port: int, pydeps: Path) -> dict[str, str]:
    bundles = [
        {"name": name, "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(work / name), "refresh_interval": 0}}
        for name in BUNDLES
    ]
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith("AIRFLOW")
                 and key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {
        **inherited,
        "PATH": f"{venv.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(pydeps),
        "AIRFLOW_HOME": str(work / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        # every process signs and checks the tasks' tokens: one secret for all
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # a task whose scheduler stopped is taken over within the recording
        # (defaults: 300 s each)
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        # the triggered runs only, so that every run ends and the record is final
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }


class Components:
    """Each Airflow component in a session of its own, its output in a log."""

    def __init__(self, venv: AirflowVenv, env: dict[str, str], logs: Path, roles: Roles) -> None:
        self.venv, self.env, self.logs, self.roles = venv, env, logs, roles
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.terminated: set[str] = set()

    def start(self, role: str, *args: str) -> None:
        with open(self.logs / f"{role}.log", "wb") as output:
            process = subprocess.Popen(
                [self.venv.airflow, *args], env=self.env, cwd=self.env["AIRFLOW_HOME"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.running[role] = process
        self.roles.components[process.pid] = role

    def terminate(self, role: str) -> None:
        """SIGTERM to ``role``'s process group, as a deployment stopping it
        would: what it spawned in groups of its own (the supervisors of
        running tasks) is left to finish."""
        os.killpg(self.running[role].pid, signal.SIGTERM)
        self.terminated.add(role)

    def stop_all(self) -> None:
        for process in self.running.values():
            with contextlib.suppress(Exception):
                stop_session(process)

    def check(self) -> None:
        for role, process in self.running.items():
            if role not in self.terminated and process.poll() is not None:
                tail = (self.logs / f"{role}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{role} exited {process.returncode}\n{tail}")


def read_record(api: AirflowApi) -> dict[str, Any]:
    """Airflow's account of the runs: DAG runs, task instances and every
    try of each task instance that ran (tests/e2e/test_airflow.py reads
    the same)."""
    task_instances = api.collection("/dags/~/dagRuns/~/taskInstances", "task_instances")
    tries = []
    for ti in task_instances:
        if ti["try_number"] > 0:
            path = (f"/dags/{ti['dag_id']}/dagRuns/{quoted(ti['dag_run_id'])}"
                    f"/taskInstances/{ti['task_id']}/tries")
            tries.append({"dag_id": ti["dag_id"], "dag_run_id": ti["dag_run_id"],
                          "task_id": ti["task_id"],
                          "tries": sorted(api.collection(path, "task_instances"),
                                          key=lambda t: t["try_number"])})
    return {"dags": api.collection("/dags", "dags"),
            "dag_runs": api.collection("/dags/~/dagRuns", "dag_runs"),
            "task_instances": task_instances, "tries": tries}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "stack" / "captures")
    parser.add_argument("--work", type=Path, default=Path("/tmp/aerostat-ha"))
    args = parser.parse_args()
    work: Path = args.work
    name = f"airflow-{VERSION}-ha"
    venv = ensure_venv(VERSION, E2E_ROOT, say)
    pydeps = work / "pydeps"
    if not all((pydeps / module).is_dir() for module in ("psycopg2", "asyncpg")):
        _run([str(venv.bin / "python"), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", "--target", str(pydeps), "psycopg2-binary",
              "asyncpg"], 300)
    for path in ("home", "logs", *BUNDLES):
        shutil.rmtree(work / path, ignore_errors=True)
        (work / path).mkdir(parents=True)
    for bundle, dag_ids in BUNDLES.items():
        for dag_id in dag_ids:
            shutil.copy(DAGS / f"{dag_id}.py", work / bundle)
    args.out.mkdir(parents=True, exist_ok=True)
    capture = args.out / f"{name}.jsonl"
    api_port = free_port()
    recorder = Recorder(capture)
    roles = Roles(recorder.port)
    events: list[dict[str, Any]] = []
    with postgres(work) as database:
        env = environment(venv, work, database, recorder.port, api_port, pydeps)
        password = secrets.token_urlsafe(16)
        (work / "home" / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({"admin": password}))
        components = Components(venv, env, work / "logs", roles)
        try:
            _run([venv.airflow, "db", "migrate"], 300, env)
            _run([venv.airflow, "pools", "set", POOL, "2", "demo pool"], 120, env)
            components.start("api-server", "api-server")
            for index in (1, 2):
                components.start(f"scheduler-{index}", "scheduler")
            components.start("triggerer", "triggerer")
            api = AirflowApi(f"http://127.0.0.1:{api_port}")

            def watched(probe: Any) -> Any:
                def run() -> Any:
                    components.check()
                    roles.poll(list(recorder.senders))
                    return probe()
                return run

            # one DAG processor at a time: each writes the whole bundle list
            # to the database as it starts, and two at once collide on its
            # primary key (dag_bundle_pkey) and one exits
            for index, bundle in enumerate(BUNDLES, 1):
                components.start(f"dag-processor-{index}", "dag-processor", "--bundle-name", bundle)
                wait_until(f"dag-processor-{index} to be healthy",
                           watched(api.healthy), 240)
            wait_until("Airflow to be healthy", watched(api.healthy), 240)
            status, answer = api._request("POST", "/auth/token",
                                          {"username": "admin", "password": password})
            assert status == 201, answer
            api.token = answer["access_token"]
            wanted = set(TRIGGERS)
            wait_until("the DAGs to be parsed", watched(
                lambda: {dag["dag_id"] for dag in api.collection("/dags", "dags")} >= wanted), 240)
            say(f"Airflow up at t={recorder.now()}; triggering {TRIGGERS}")
            first_trigger = recorder.now()
            for round_ in range(max(TRIGGERS.values())):
                for dag_id, times in TRIGGERS.items():
                    if round_ < times:
                        status, answer = api._request(
                            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
                        assert status == 200, (dag_id, status, answer)
                        events.append({"t": recorder.now(), "event": "triggered",
                                       "dag_id": dag_id, "run_id": answer["dag_run_id"]})
            stopped = False

            def finished() -> bool:
                nonlocal stopped
                components.check()
                roles.poll(list(recorder.senders))
                if not stopped and recorder.now() - first_trigger >= STOP_AFTER:
                    stopped = True
                    ports = sorted(port for port, who in roles.ports.items()
                                   if who["role"] == "scheduler-2")
                    events.append({"t": recorder.now(), "event": "SIGTERM",
                                   "role": "scheduler-2", "sender_ports": ports})
                    say(f"stopping scheduler-2 at t={recorder.now()} (senders {ports})")
                    components.terminate("scheduler-2")
                if stopped and "exited" not in {event["event"] for event in events}:
                    process = components.running["scheduler-2"]
                    if process.poll() is not None:
                        events.append({"t": recorder.now(), "event": "exited",
                                       "role": "scheduler-2", "returncode": process.returncode})
                runs = api.collection("/dags/~/dagRuns", "dag_runs")
                return stopped and len(runs) == sum(TRIGGERS.values()) and all(
                    run["state"] in ("success", "failed") for run in runs)

            wait_until("every run to end", finished, RUNS_TIMEOUT, 1.0)
            events.append({"t": recorder.now(), "event": "runs ended"})
            say(f"every run ended at t={recorder.now()}; recording {TAIL:.0f} s more")
            deadline = time.monotonic() + TAIL
            while time.monotonic() < deadline:
                roles.poll(list(recorder.senders))
                time.sleep(1)
            record = read_record(api)
            duration = recorder.now()
        finally:
            components.stop_all()
            recorder.stop()
    record["recording"] = {
        "airflow": VERSION, "duration": duration, "datagrams": recorder.count,
        "events": events,
        "senders": {sender: {"datagrams": count, **roles.ports.get(sender, {"role": "unknown"})}
                    for sender, count in recorder.senders.most_common()},
    }
    (args.out / f"{name}.record.json").write_text(json.dumps(record, indent=1) + "\n")
    say(f"{recorder.count} datagrams from {len(recorder.senders)} senders over "
        f"{recorder.now():.0f} s into {capture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
