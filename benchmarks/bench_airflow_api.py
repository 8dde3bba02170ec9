"""What the REST-API source costs, against a real Airflow: requests, bytes
and aerostat's CPU per minute, for a deployment of many DAGs with task
instances finishing all the time.

It runs `airflow standalone` (the e2e test's Airflow 3.3.2 environment,
installed under /tmp/aerostat-e2e on first use) with one generated DAG file:
``--dags`` DAGs (1,000), of which ``--busy`` (10) run every minute with
``--tasks`` (7) EmptyOperator tasks each, so that about busy x tasks task
instances end a minute (70: 100,000 a day); the others wait for a trigger.
Airflow's StatsD is off: the aerostat processes hear nothing but the API.

Two aerostat processes run side by side from the same moment: one polling
the API every ``--interval`` (30 s), one without the source. The difference
of their CPU time is the source's. Each poll's requests and bytes are read
from the polling one's own metrics; the first poll, which learns every
DAG's history, is reported apart from the steady ones.

    ./run bench airflow_api                     # 1,000 DAGs, 5 minutes of polls
    ./run bench airflow_api --dags 200 --minutes 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from e2e.airflow_env import (  # noqa: E402 - the e2e test's Airflow, reused
    AIRFLOW_VERSION,
    E2E_ROOT,
    Airflow,
    AirflowApi,
    airflow_env,
    ensure_venv,
    free_port,
    wait_until,
)

DAG_FILE = '''
"""{dags} DAGs for aerostat's REST-API benchmark: the first {busy} run every
minute with {tasks} EmptyOperator tasks each; the others wait for a trigger."""
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for number in range({dags}):
    with DAG(f"bench_{{number:04d}}", schedule="* * * * *" if number < {busy} else None,
             start_date=datetime(2026, 1, 1), catchup=False, tags=["bench"]) as dag:
        previous = None
        for task in range({tasks}):
            current = EmptyOperator(task_id=f"t{{task}}")
            if previous is not None:
                previous >> current
            previous = current
    globals()[dag.dag_id] = dag
'''

USER = "aerostat"
SCRAPE_SECONDS = 15.0


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("aerostat_airflow_api_") and not sample.name.endswith(
                    "_bucket"):
                key = sample.name + "".join(
                    f",{k}={v}" for k, v in sorted(sample.labels.items()) if k != "deployment")
                found[key] = sample.value
    return found


@contextlib.contextmanager
def aerostat(extra: list[str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    command = [str(ROOT / ".venv/bin/aerostat"), "serve", "--airflow",
               "--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=",
               f"--web.listen-address=127.0.0.1:{port}", *extra]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until("aerostat to answer", lambda: _answers(port), 30.0, 0.2)
        yield process, port
    finally:
        process.terminate()
        process.wait(10)


def _timed_scrape(port: int) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        answer.read()
    return time.perf_counter() - started


def _answers(port: int) -> bool:
    try:
        own_metrics(port)
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dags", type=int, default=1000)
    parser.add_argument("--busy", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=7)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--warm-up", type=float, default=180.0,
                        help="seconds of Airflow running the busy DAGs before aerostat starts")
    args = parser.parse_args()

    venv = ensure_venv(AIRFLOW_VERSION, E2E_ROOT, say)
    work = Path(tempfile.mkdtemp(prefix="aerostat-bench-api-"))
    home, dags = work / "home", work / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "bench_dags.py").write_text(DAG_FILE.format(
        dags=args.dags, busy=args.busy, tasks=args.tasks))
    password = secrets.token_urlsafe(16)
    (home / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({"admin": secrets.token_urlsafe(16), USER: password}))
    password_file = work / "password"
    password_file.write_text(password)
    api_port = free_port()
    env = airflow_env(venv, home, dags, free_port(), api_port)
    env.update({
        "AIRFLOW__METRICS__STATSD_ON": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{USER}:viewer",
        # one file of many DAGs: give its parse time
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
    })
    airflow = Airflow(venv, home, env)
    airflow.cli("db", "migrate")
    api = AirflowApi(f"http://127.0.0.1:{api_port}")
    url = f"http://127.0.0.1:{api_port}"
    result: dict[str, object] = {"dags": args.dags, "busy": args.busy, "tasks": args.tasks,
                                 "interval": args.interval, "airflow": venv.version}
    try:
        with airflow.standalone(work / "standalone.log"):
            wait_until("Airflow to be healthy", api.healthy, 300.0, 2.0)
            api.log_in(home)  # as admin, generated: only to watch the parse
            wait_until(f"{args.dags} DAGs parsed",
                       lambda: api.get("/dags", limit=1)["total_entries"] >= args.dags,
                       600.0, 5.0)
            say(f"{args.dags} DAGs parsed; the busy ones run for {args.warm_up:.0f} s")
            time.sleep(args.warm_up)
            source = ["--airflow.api-url=" + url, f"--airflow.api-username={USER}",
                      f"--airflow.api-password-file={password_file}",
                      f"--airflow.api-poll-interval={args.interval}s"]
            with aerostat(source, work / "aerostat-api.log") as (polling, port), \
                    aerostat([], work / "aerostat-idle.log") as (idle, idle_port):
                cpu_start = (cpu_seconds(polling.pid), cpu_seconds(idle.pid))
                started = time.monotonic()
                ended_before = api.get("/dags/~/dagRuns/~/taskInstances", limit=1,
                                       state="success")["total_entries"]
                # both scraped as a Prometheus would, every 15 s: what the
                # source's state costs to show is part of what it costs
                polls: list[dict[str, float]] = []
                while time.monotonic() - started < args.minutes * 60:
                    metrics = own_metrics(port)
                    own_metrics(idle_port)
                    polls.append({"at": time.monotonic() - started,
                                  "cpu_polling": cpu_seconds(polling.pid),
                                  "cpu_idle": cpu_seconds(idle.pid), **metrics})
                    time.sleep(SCRAPE_SECONDS)
                elapsed = time.monotonic() - started
                cpu = (cpu_seconds(polling.pid) - cpu_start[0],
                       cpu_seconds(idle.pid) - cpu_start[1])
                ended = api.get("/dags/~/dagRuns/~/taskInstances", limit=1,
                                state="success")["total_entries"] - ended_before
                final = own_metrics(port)
                scrapes = [_timed_scrape(port) for _ in range(10)]
                idle_scrapes = [_timed_scrape(idle_port) for _ in range(10)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    polls_key = "aerostat_airflow_api_polls_total"
    requests_key = "aerostat_airflow_api_requests_total"
    bytes_key = "aerostat_airflow_api_response_bytes_total"
    # the first scrape after the first poll, and the last one
    after_first = next(sample for sample in polls if sample.get(polls_key, 0) >= 1)
    last = polls[-1]
    steady_polls = last[polls_key] - after_first[polls_key]
    steady_seconds = last["at"] - after_first["at"]
    steady_cpu = ((last["cpu_polling"] - after_first["cpu_polling"])
                  - (last["cpu_idle"] - after_first["cpu_idle"]))
    first_requests = after_first[requests_key] if after_first[polls_key] == 1 else float("nan")
    first_bytes = after_first[bytes_key] if after_first[polls_key] == 1 else float("nan")
    errors = {key: value for key, value in final.items()
              if key.startswith("aerostat_airflow_api_errors_total") and value}
    added = final.get("aerostat_airflow_api_outcomes_added_total", 0.0)
    per_poll = {
        "requests": (last[requests_key] - after_first[requests_key]) / steady_polls,
        "bytes": (last[bytes_key] - after_first[bytes_key]) / steady_polls,
        "cpu_ms": steady_cpu / steady_polls * 1000,
    }
    result.update({
        "seconds": elapsed, "polls": final.get(polls_key),
        "task_instances_succeeded_per_minute": ended / elapsed * 60,
        "first_poll_requests": first_requests, "first_poll_bytes": first_bytes,
        "steady_polls": steady_polls, "steady_seconds": steady_seconds,
        "steady_per_poll": per_poll,
        "steady_source_cpu_seconds_per_minute": steady_cpu / steady_seconds * 60,
        "cpu_seconds_polling": cpu[0], "cpu_seconds_idle": cpu[1],
        "scrape_ms_median": statistics.median(scrapes) * 1000,
        "idle_scrape_ms_median": statistics.median(idle_scrapes) * 1000,
        "outcomes_counted_from_the_api": added,
        "errors": errors,
    })
    print(json.dumps(result, indent=2))
    print(f"""
Airflow {venv.version}: {args.dags} DAGs, {args.busy} of them every minute with {args.tasks} tasks
  task instances that succeeded: {ended / elapsed * 60:.0f} a minute during the measurement
aerostat's REST-API source, polling every {args.interval:g} s for {elapsed / 60:.1f} minutes,
scraped every {SCRAPE_SECONDS:g} s (and an aerostat without the source beside it, likewise):
  first poll:  {first_requests:.0f} requests, {first_bytes / 1024:.0f} KiB
  later polls ({steady_polls:.0f}): {per_poll['requests']:.1f} requests, \
{per_poll['bytes'] / 1024:.1f} KiB, {per_poll['cpu_ms']:.0f} ms of CPU each (scrapes included)
  CPU of the source after the first poll: {steady_cpu / steady_seconds * 60:.2f} s a minute
  /metrics: {statistics.median(scrapes) * 1000:.1f} ms median with the source's state, \
{statistics.median(idle_scrapes) * 1000:.1f} ms without
  task-instance tries counted from the API (StatsD is off): {added:.0f}
  errors: {errors or 'none'}""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
