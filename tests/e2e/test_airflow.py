"""End to end with a real Apache Airflow: `airflow standalone` sends its
StatsD (or, in the otel mode, OpenTelemetry over OTLP/HTTP) to an
in-process aerostat with the built-in Airflow mapping (`--airflow`), runs
the three DAGs of the shipped capture once each, and what aerostat exports
must agree with Airflow's own record of those runs, read through Airflow's
REST API.

The first run installs Airflow from the package index into a virtual
environment under /tmp/aerostat-e2e (a minute or so); later runs reuse it.
One module run takes about three minutes per emission mode, most of it the
DAGs themselves: plain StatsD, InfluxDB tags under a deployment prefix, and
OpenTelemetry with the deployment in a resource attribute."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aerostat.airflow import airflow_built_in
from aerostat.airflow.api import Credentials, Target
from aerostat.stack import all_queries, render_stack
from bridge import Bridge, running_bridge
from e2e.airflow_env import (
    AIRFLOW_VERSION,
    E2E_ROOT,
    Airflow,
    AirflowApi,
    AirflowVenv,
    Say,
    airflow_env,
    ensure_venv,
    free_port,
    quoted,
    wait_until,
)
from stack.api_queries import api_queries
from stack.prometheus_process import Prometheus, running_prometheus

DAGS = Path(__file__).parent / "dags"
DAG_IDS = ("demo_failing", "demo_sensor_pool", "demo_success")
POOL = "demo_pool"

STARTUP_TIMEOUT = 180.0  # API server, scheduler, triggerer and DAG processor up, DAGs parsed
RUNS_TIMEOUT = 360.0  # the slowest run (demo_sensor_pool) takes about 75 s
GAUGE_TIMEOUT = 30.0  # the scheduler sends pool gauges every 5 s


Labels = frozenset[tuple[str, str]]


def reporter(config: pytest.Config) -> Say:
    """Prints a line of progress past pytest's output capture."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def say(message: str) -> None:
        if capture is None:
            print(f"[e2e] {message}", file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(f"\n[e2e] {message}", file=sys.stderr, flush=True)

    return say


@pytest.fixture(scope="session")
def airflow_venv(pytestconfig: pytest.Config) -> AirflowVenv:
    return ensure_venv(AIRFLOW_VERSION, E2E_ROOT, reporter(pytestconfig))


@dataclass
class Record:
    """Airflow's own account of the runs, from its REST API."""

    dag_count: int
    dag_runs: list[dict[str, Any]]
    task_instances: list[dict[str, Any]]
    # every try of each task instance that ran: (dag_id, run_id, task_id) → tries
    tries: dict[tuple[str, str, str], list[dict[str, Any]]]


@dataclass(frozen=True)
class Mode:
    """How Airflow emits: its [metrics] settings, and the deployment label
    aerostat must put on every series ("default" when no prefix names one)."""

    name: str
    settings: dict[str, str]
    deployment: str
    tagged: bool = False
    # OpenTelemetry instead of StatsD: pushed to aerostat's OTLP listener,
    # processes told apart by service.instance.id instead of an address
    otlp: bool = False


MODES = (
    # Airflow's defaults: plain StatsD, tags dropped, legacy names on
    Mode("plain", {}, "default"),
    # InfluxDB tags with legacy names on, one deployment among several
    Mode("influx-prefix", {"AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
                           "AIRFLOW__METRICS__STATSD_PREFIX": "airflow.etl"}, "etl", tagged=True),
    # OpenTelemetry (otel_on) over OTLP/HTTP, pushing every 2 s; the
    # deployment from a resource attribute
    Mode("otel", {"AIRFLOW__METRICS__STATSD_ON": "False", "AIRFLOW__METRICS__OTEL_ON": "True",
                  "OTEL_METRIC_EXPORT_INTERVAL": "2000",
                  "OTEL_RESOURCE_ATTRIBUTES": "deployment=otel"},
         "otel", tagged=True, otlp=True),
)


@dataclass
class Run:
    bridge: Bridge
    api: AirflowApi
    record: Record
    env: dict[str, str]
    mode: Mode
    # an HA pair of real Prometheus servers scraping aerostat at two intervals
    prometheus: dict[str, Prometheus]
    # what aerostat's REST-API source logs in with, and what aerostat logged
    api_password: str
    logged: LogRecorder


SCRAPE_INTERVALS = ("1s", "4s")
API_USER = "aerostat"
API_POLL_SECONDS = 3.0
API_SETTLE_SECONDS = 5.0
API_TIMEOUT = 3.0


class LogRecorder(logging.Handler):
    """Every record aerostat's logger emits during the run, as text with
    its fields, to look for a secret in."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {getattr(record, 'fields', '')} "
                          f"{record.exc_text or ''}")

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        logger = logging.getLogger("aerostat")
        level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        try:
            yield
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)


def api_polled_since(bridge: Bridge, moment: float) -> bool:
    """Whether a poll of the REST API succeeded after ``moment``."""
    last = [value for (name, _), value in bridge.samples(own=True).items()
            if name == "aerostat_airflow_api_last_success_timestamp_seconds"]
    return bool(last) and last[0] > moment
# a first value waits for both scrapers; after the start, while they are
# learnt, this long (Airflow's own start takes longer than that)
HOLD_SECONDS = 15.0


@contextlib.contextmanager
def prometheus_pair(bridge: Bridge, work: Path) -> Iterator[dict[str, Prometheus]]:
    with contextlib.ExitStack() as stack:
        pair = {}
        for interval in SCRAPE_INTERVALS:
            workdir = work / f"prometheus-{interval}"
            workdir.mkdir()
            config = workdir / "prometheus.yml"
            config.write_text(
                f"global: {{scrape_interval: {interval}, scrape_timeout: {interval}}}\n"
                "scrape_configs:\n"
                "- job_name: aerostat\n"
                f"  static_configs: [{{targets: ['127.0.0.1:{bridge.server.http_port}']}}]\n")
            pair[interval] = stack.enter_context(running_prometheus(config, workdir))
        yield pair


def read_record(api: AirflowApi) -> Record:
    task_instances = api.collection("/dags/~/dagRuns/~/taskInstances", "task_instances")
    tries = {}
    for ti in task_instances:
        assert ti["map_index"] == -1, "the DAGs have no mapped tasks"
        if ti["try_number"] > 0:
            key = (ti["dag_id"], ti["dag_run_id"], ti["task_id"])
            path = f"/dags/{key[0]}/dagRuns/{quoted(key[1])}/taskInstances/{key[2]}/tries"
            tries[key] = sorted(
                api.collection(path, "task_instances"), key=lambda t: t["try_number"]
            )
    return Record(
        dag_count=api.get("/dags")["total_entries"],
        dag_runs=api.collection("/dags/~/dagRuns", "dag_runs"),
        task_instances=task_instances,
        tries=tries,
    )


@pytest.fixture(scope="module", params=MODES, ids=[mode.name for mode in MODES])
def airflow_run(
    airflow_venv: AirflowVenv,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
    request: pytest.FixtureRequest,
) -> Iterator[Run]:
    """Airflow standalone reporting to aerostat, each DAG triggered once and
    run to its end; Airflow and aerostat keep running for the tests. Once per
    emission mode."""
    mode: Mode = request.param
    say = reporter(pytestconfig)
    work = tmp_path_factory.mktemp("airflow")
    home, dags = work / "home", work / "dags"
    home.mkdir()
    shutil.copytree(DAGS, dags, ignore=shutil.ignore_patterns("*.md", "*.toml", "__pycache__"))
    log = work / "standalone.log"

    def log_tail() -> str:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return "standalone's last lines:\n" + "\n".join(lines[-40:])

    # aerostat reads the REST API as a viewer of its own, whose password the
    # simple auth manager takes from the file it would generate
    api_port = free_port()
    password = secrets.token_urlsafe(16)
    (home / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({"admin": secrets.token_urlsafe(16), API_USER: password}))
    password_file = work / "aerostat-api-password"
    password_file.write_text(password + "\n")
    target = Target(mode.deployment, f"http://127.0.0.1:{api_port}",
                    Credentials(API_USER, str(password_file)), timeout=API_TIMEOUT)
    logged = LogRecorder()
    # what `aerostat serve --airflow --airflow.api-url=…` runs: the built-in
    # mapping, nothing else, the first-value hold on, as it is by default,
    # and the REST-API source polling faster than its default
    built_in = airflow_built_in(api_targets=(target,), api_poll_interval=API_POLL_SECONDS,
                                api_settle=API_SETTLE_SECONDS)
    with logged.recording(), \
            running_bridge(built_in=built_in, new_series_hold=HOLD_SECONDS,
                           otlp_listen_address="127.0.0.1:0" if mode.otlp else "") as bridge, \
            prometheus_pair(bridge, work) as prometheus:
        env = airflow_env(airflow_venv, home, dags, bridge.udp_address[1], api_port)
        if bridge.server.otlp is not None:
            otlp_port = bridge.server.otlp.address[1]
            env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = f"http://127.0.0.1:{otlp_port}/v1/metrics"
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = f"admin:admin,{API_USER}:viewer"
        env.update(mode.settings)
        airflow = Airflow(airflow_venv, home, env)
        airflow.cli("db", "migrate")
        airflow.cli("pools", "set", POOL, "2", "demo pool")
        api = AirflowApi(f"http://127.0.0.1:{api_port}")
        started = time.monotonic()
        with airflow.standalone(log) as standalone:

            def diagnose() -> str:
                if standalone.poll() is not None:
                    raise AssertionError(f"standalone exited {standalone.returncode}\n{log_tail()}")
                return log_tail()

            wait_until("Airflow to be healthy", api.healthy, STARTUP_TIMEOUT, diagnose=diagnose)
            api.log_in(home)
            wait_until(
                f"the DAGs {DAG_IDS} to be parsed",
                lambda: {dag["dag_id"] for dag in api.collection("/dags", "dags")} >= set(DAG_IDS),
                STARTUP_TIMEOUT - (time.monotonic() - started),
                diagnose=diagnose,
            )
            say(f"airflow {airflow_venv.version} ({mode.name}) up in "
                f"{time.monotonic() - started:.0f} s")
            for dag_id in DAG_IDS:
                airflow.cli("dags", "trigger", dag_id)
            say(f"triggered {', '.join(DAG_IDS)}; waiting for the runs to finish")

            def finished() -> list[dict[str, Any]] | None:
                runs = api.collection("/dags/~/dagRuns", "dag_runs")
                done = all(run["state"] in ("success", "failed") for run in runs)
                return runs if done and len(runs) >= len(DAG_IDS) else None

            runs = wait_until("the DAG runs to finish", finished, RUNS_TIMEOUT, 2.0, diagnose)
            say(f"runs finished {time.monotonic() - started:.0f} s after start")
            # the schedules are off ([scheduler] use_job_schedule): the triggered runs, no others
            assert sorted((run["dag_id"], run["run_type"]) for run in runs) == [
                (dag_id, "manual") for dag_id in DAG_IDS
            ]
            record = read_record(api)
            # the REST-API source has counted every try (they ended at least
            # its settle time ago) and topped up what StatsD never carried
            settled = time.time() + API_SETTLE_SECONDS + 2 * API_POLL_SECONDS
            wait_until("the REST-API source to read the finished runs",
                       lambda: time.time() > settled and api_polled_since(bridge, settled),
                       API_SETTLE_SECONDS + 10 * API_POLL_SECONDS, 1.0)
            bridge.settle()
            # the last new series read at zero by both scrapers, then their values
            time.sleep(2 * 4 + 2)
            yield Run(bridge, api, record, env, mode, prometheus, password, logged)


def series(run: Run, name: str, *keep: str) -> dict[Labels, float]:
    """The samples of one name, by labels. Every sample must carry the
    mode's deployment, which is then left out; with ``keep``, only those
    labels are kept and values that share them add up (tagged modes carry
    more labels, run_type or status, than the comparisons need)."""
    found: dict[Labels, float] = {}
    for (sample, labels), value in run.bridge.samples().items():
        if sample != name:
            continue
        label_map = dict(labels)
        assert label_map.pop("deployment", None) == run.mode.deployment, (name, labels)
        if keep:
            label_map = {key: text for key, text in label_map.items() if key in keep}
        key = frozenset(label_map.items())
        found[key] = found.get(key, 0.0) + value
    return found


def labelled(dag_id: str, **labels: str) -> Labels:
    return frozenset({"dag_id": dag_id, **labels}.items())


# Operators whose deferral ends in the triggerer: WaitSensor defers with
# TimeDeltaTrigger(end_from_trigger=True), so the triggerer marks the task
# instance success and no worker runs it again.
ENDS_IN_TRIGGERER = {"WaitSensor"}


def expected_finishes(record: Record, dag_id: str) -> Counter[Labels]:
    """How many `ti.finish.<dag>.<task>.<state>` Airflow must have sent, from
    its REST API's record. A worker sends one per run of a task, with the
    state that run ended in (airflow.sdk's task_runner.run()), so:

    - a task instance that never ran (try_number 0: upstream_failed) sent none;
    - each try that failed and was retried sent `up_for_retry`, although the
      API's history of tries keeps such a try as `failed`: demo_failing's
      always_fails, with 2 retries, ends `failed` at try 3 after sending
      up_for_retry twice and failed once;
    - the last try sent the task instance's final state, except a deferral
      that the triggerer ended: the worker's run ended `deferred`, which is
      what it sent, and the success was the triggerer's, which sends none.
      aerostat's REST-API source adds that success from Airflow's record, so
      the counter holds both: `deferred` from StatsD, `success` from the API.
    """
    expected: Counter[Labels] = Counter()
    for ti in record.task_instances:
        if ti["dag_id"] != dag_id or ti["try_number"] == 0:
            continue
        tries = record.tries[(dag_id, ti["dag_run_id"], ti["task_id"])]
        assert [t["try_number"] for t in tries] == list(range(1, ti["try_number"] + 1))
        for retried in tries[:-1]:
            assert retried["state"] == "failed", retried
            assert retried["try_number"] <= ti["max_tries"], retried
            expected[labelled(dag_id, task_id=ti["task_id"], state="up_for_retry")] += 1
        state = tries[-1]["state"]
        assert state == ti["state"]
        if ti["operator"] in ENDS_IN_TRIGGERER and state == "success":
            expected[labelled(dag_id, task_id=ti["task_id"], state="deferred")] += 1
        expected[labelled(dag_id, task_id=ti["task_id"], state=state)] += 1
    return expected


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_the_runs_cover_retries_deferral_and_failure(airflow_run: Run) -> None:
    """The comparisons below are worth something only if the runs went
    through retries, a triggerer-ended deferral and an upstream failure."""
    record = airflow_run.record
    final = {(ti["dag_id"], ti["task_id"]): ti for ti in record.task_instances}
    assert len(final) == len(record.task_instances) == 13
    assert final[("demo_failing", "always_fails")]["try_number"] == 3
    assert final[("demo_failing", "always_fails")]["state"] == "failed"
    assert final[("demo_failing", "never_runs")]["state"] == "upstream_failed"
    assert final[("demo_sensor_pool", "deferred_wait")]["state"] == "success"
    assert {run["state"] for run in record.dag_runs} == {"success", "failed"}


@pytest.mark.parametrize("dag_id", [pytest.param(dag_id, id=dag_id) for dag_id in DAG_IDS])
def test_task_finishes_match_airflows_task_instances(airflow_run: Run, dag_id: str) -> None:
    finishes = series(airflow_run, "airflow_ti_finish_total", "dag_id", "task_id", "state")
    exported = {labels: value for labels, value in finishes.items() if ("dag_id", dag_id) in labels}
    expected = expected_finishes(airflow_run.record, dag_id)
    assert expected, f"Airflow's API reports no task of {dag_id} that ran"
    assert exported == {labels: float(count) for labels, count in expected.items()}


@pytest.mark.parametrize("dag_id", [pytest.param(dag_id, id=dag_id) for dag_id in DAG_IDS])
def test_dag_run_durations_match_airflows_dag_runs(airflow_run: Run, dag_id: str) -> None:
    runs = [run for run in airflow_run.record.dag_runs if run["dag_id"] == dag_id]
    assert runs, f"Airflow's API reports no run of {dag_id}"
    counts = series(airflow_run, "airflow_dagrun_duration_seconds_count", "dag_id", "state")
    sums = series(airflow_run, "airflow_dagrun_duration_seconds_sum", "dag_id", "state")
    for state in ("success", "failed"):
        in_state = [run for run in runs if run["state"] == state]
        labels = labelled(dag_id, state=state)
        assert counts.get(labels, 0.0) == len(in_state), state
        # Airflow times a run as end_date - start_date, the dates its API shows
        duration = sum(seconds(run["end_date"]) - seconds(run["start_date"]) for run in in_state)
        assert sums.get(labels, 0.0) == pytest.approx(duration, abs=1e-3), state


def test_dagbag_size_is_airflows_dag_count(airflow_run: Run) -> None:
    assert airflow_run.record.dag_count == len(list(DAGS.glob("*.py")))
    exported = series(airflow_run, "airflow_dagbag_size")
    assert exported == {frozenset(): float(airflow_run.record.dag_count)}


def test_pool_slots_match_airflows_idle_pool(airflow_run: Run) -> None:
    pool = airflow_run.api.get(f"/pools/{POOL}")
    assert pool["running_slots"] == pool["queued_slots"] == 0, pool  # every run has finished
    labels = frozenset({("pool", POOL)})

    def exported() -> tuple[float | None, float | None]:
        return (
            series(airflow_run, "airflow_pool_open_slots", "pool").get(labels),
            series(airflow_run, "airflow_pool_running_slots", "pool").get(labels),
        )

    # the gauges are sent every few seconds: wait for the first after the runs
    wanted = (float(pool["open_slots"]), float(pool["running_slots"]))
    wait_until(
        f"the pool gauges to read {wanted}",
        lambda: exported() == wanted,
        GAUGE_TIMEOUT,
        0.5,
        lambda: f"aerostat exports {exported()}",
    )
    open_slots, running_slots = exported()
    assert open_slots is not None and running_slots is not None
    assert open_slots + running_slots == pool["slots"] == 2


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("airflow_ti_finish_total", id="ti-finish"),
        pytest.param("airflow_pool_open_slots", id="pool-open-slots"),
        pytest.param("airflow_pool_running_slots", id="pool-running-slots"),
    ],
)
def test_untagged_twins_are_dropped(airflow_run: Run, name: str) -> None:
    exported = series(airflow_run, name)
    assert exported, f"no {name} at all"
    assert all(labels for labels in exported), f"an unlabelled {name} beside the labelled ones"
    assert airflow_run.bridge.counter("statsd_exporter_events_actions_total", action="drop") > 0


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("airflow_ti_finish_total", id="ti-finish"),
        pytest.param("airflow_dagrun_duration_seconds_count", id="dagrun-duration"),
    ],
)
def test_no_series_of_dags_airflow_does_not_know(airflow_run: Run, name: str) -> None:
    known = {dag["dag_id"] for dag in airflow_run.api.collection("/dags", "dags")}
    exported = {dict(labels).get("dag_id") for labels in series(airflow_run, name)}
    assert exported == known == set(DAG_IDS)


def test_task_instance_outcomes_match_airflows_final_states(airflow_run: Run) -> None:
    """ti_successes and ti_failures count the tries that ended each way;
    plain StatsD loses their tags, so the totals are what can be checked."""
    record = airflow_run.record
    operators = {(ti["dag_id"], ti["task_id"]): ti["operator"] for ti in record.task_instances}
    succeeded = failed = 0
    for (dag_id, _, task_id), attempts in record.tries.items():
        for attempt in attempts:
            # a retried try is kept as failed; a triggerer-ended deferral's
            # success is the triggerer's, which sends no ti_successes
            if attempt["state"] == "failed":
                failed += 1
            elif operators[(dag_id, task_id)] not in ENDS_IN_TRIGGERER:
                succeeded += attempt["state"] == "success"
    successes = series(airflow_run, "airflow_ti_successes_total")
    assert sum(successes.values()) == succeeded
    assert sum(series(airflow_run, "airflow_ti_failures_total").values()) == failed
    # tags reached aerostat: with them, the counters tell the tasks apart
    expected_labels = {"dag_id", "task_id"} if airflow_run.mode.tagged else set()
    assert {frozenset(dict(labels)) for labels in successes} == {frozenset(expected_labels)}


def test_each_airflow_process_has_its_own_heartbeat(airflow_run: Run) -> None:
    """standalone runs one scheduler, one DAG processor and one triggerer:
    each heartbeat metric has one series per process, labelled by sender."""
    for name in ("airflow_scheduler_heartbeat_total", "airflow_dag_processor_heartbeat_total",
                 "airflow_triggerer_heartbeat_total"):
        exported = series(airflow_run, name)
        assert len(exported) == 1, (name, exported)
        (labels, beats), = exported.items()
        sender = dict(labels)["sender"]
        # a StatsD sender is its address; an OTLP one its service.instance.id
        assert sender if airflow_run.mode.otlp else sender.startswith("127.0.0.1:"), labels
        assert beats > 0
        # and its liveness, in the same scrape: alive, beating seconds ago
        process = name.removeprefix("airflow_").removesuffix("_heartbeat_total")
        assert series(airflow_run, f"airflow_{process}_alive") == {labels: 1.0}
        (last,) = series(airflow_run,
                         f"airflow_{process}_last_heartbeat_timestamp_seconds").values()
        assert time.time() - 30 < last <= time.time()


def test_executor_slots_are_the_one_schedulers(airflow_run: Run) -> None:
    """With every run finished, all of LocalExecutor's slots are open: its
    parallelism, as airflow_env sets it, from the one scheduler there is."""
    parallelism = float(airflow_run.env["AIRFLOW__CORE__PARALLELISM"])
    labels = frozenset({("executor", "LocalExecutor")})
    wait_until(
        "the executor gauges to show every slot open",
        lambda: series(airflow_run, "airflow_executor_open_slots", "executor")
        == {labels: parallelism},
        GAUGE_TIMEOUT,
        0.5,
        lambda: str(series(airflow_run, "airflow_executor_open_slots")),
    )
    assert series(airflow_run, "airflow_executor_running_tasks", "executor") == {labels: 0.0}
    by_sender = series(airflow_run, "airflow_executor_open_slots_by_sender", "sender")
    assert len(by_sender) == 1 and list(by_sender.values()) == [parallelism]


def test_no_identifier_in_any_metric_name(airflow_run: Run) -> None:
    # task ids that are plain words (load, extract) are words of metric names too
    identifiers = set(DAG_IDS) | {POOL, "default_pool", "LocalExecutor"} | {
        ti["task_id"] for ti in airflow_run.record.task_instances if "_" in ti["task_id"]
    }
    names = {sample for sample, _ in airflow_run.bridge.samples()}
    assert all(name.startswith("airflow_") for name in names), names
    leaking = {name for name in names for ident in identifiers if ident.lower() in name.lower()}
    assert not leaking


def _counted(prometheus: Prometheus, expr: str, *by: str) -> dict[Labels, float]:
    return {frozenset((label, found["metric"][label]) for label in by):
            float(found["value"][1]) for found in prometheus.series(expr)}


@pytest.mark.parametrize("interval", SCRAPE_INTERVALS)
def test_increase_in_prometheus_counts_every_outcome_airflow_sent(
    airflow_run: Run, interval: str
) -> None:
    """What a dashboard asks, over the whole run, through each of an HA pair
    scraping every 1 s and every 4 s: every task finish and every DAG run
    Airflow's API accounts for (80 % of them before the first-value hold:
    the first event of each series was invisible to increase())."""
    prometheus = airflow_run.prometheus[interval]
    by = ("dag_id", "task_id", "state")
    finishes = _counted(prometheus, "sum by (dag_id, task_id, state) "
                        "(increase(airflow_ti_finish_total[30m]))", *by)
    # exact, without increase()'s extrapolation: each series was stored at 0
    # before its first event and ends at what Airflow sent
    lowest = _counted(prometheus, "sum by (dag_id, task_id, state) "
                      "(min_over_time(airflow_ti_finish_total[30m]))", *by)
    highest = _counted(prometheus, "sum by (dag_id, task_id, state) "
                       "(max_over_time(airflow_ti_finish_total[30m]))", *by)
    for dag_id in DAG_IDS:
        for labels, sent in expected_finishes(airflow_run.record, dag_id).items():
            assert (lowest.get(labels), highest.get(labels)) == (0.0, sent), dict(labels)
            # increase() extrapolates towards the query's end (a series of a
            # few 4 s samples by up to half again or more): never less
            assert sent <= finishes.get(labels, 0.0) <= sent * 2.2, (dict(labels), finishes)
    runs = _counted(prometheus, "sum by (dag_id, state) "
                    "(increase(airflow_dagrun_duration_seconds_count[30m]))", "dag_id", "state")
    for run in airflow_run.record.dag_runs:
        in_state = sum(1 for other in airflow_run.record.dag_runs
                       if (other["dag_id"], other["state"]) == (run["dag_id"], run["state"]))
        got = runs.get(labelled(run["dag_id"], state=run["state"]), 0.0)
        assert in_state <= got <= in_state * 2.2, (run["dag_id"], run["state"], runs)


def _processes_of(run: Run, subcommand: str) -> list[int]:
    """The pids of this run's `airflow <subcommand>` and of its children."""
    home = f"AIRFLOW_HOME={run.env['AIRFLOW_HOME']}".encode()
    found: list[int] = []
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        # the API server retitles itself "airflow api_server -- host:… port:…"
        retitled = f"airflow {subcommand.replace('-', '_')} -- ".encode()
        if home in environ and (argv[-2:] == [subcommand.encode(), b""]
                                or argv[0].startswith(retitled)):
            found.append(int(entry.name))
    family = set(found)
    grew = True
    while grew:  # its children too (the triggerer runs its triggers in one)
        grew = False
        for pid, parent in parents.items():
            if parent in family and pid not in family:
                family.add(pid)
                grew = True
    return sorted(family)


def test_a_frozen_triggerer_reads_0_within_a_minute_while_the_scheduler_reads_1(
    airflow_run: Run,
) -> None:
    """A real Airflow process that stops heartbeating (frozen with SIGSTOP,
    then thawed): its alive gauge reads 0 within a minute, in one scrape,
    with the time of its last heartbeat, while the scheduler's reads 1."""
    import os
    import signal

    triggerer = _processes_of(airflow_run, "triggerer")
    assert triggerer, "no `airflow triggerer` process of this run found"
    frozen_at = time.time()
    for pid in triggerer:
        os.kill(pid, signal.SIGSTOP)
    try:
        def stopped() -> bool:
            alive = series(airflow_run, "airflow_triggerer_alive")
            return bool(alive) and set(alive.values()) == {0.0}

        wait_until("the frozen triggerer to read 0", stopped, 60.0, 1.0,
                   lambda: f"{series(airflow_run, 'airflow_triggerer_alive')}")
        assert time.time() - frozen_at <= 60.0
        (last,) = series(airflow_run,
                         "airflow_triggerer_last_heartbeat_timestamp_seconds").values()
        assert last <= frozen_at + 1.0
        assert set(series(airflow_run, "airflow_scheduler_alive").values()) == {1.0}
    finally:
        for pid in triggerer:
            os.kill(pid, signal.SIGCONT)


# --- the REST-API source --------------------------------------------------------


def _own(run: Run, name: str, **labels: str) -> float | None:
    wanted = frozenset({"deployment": run.mode.deployment, **labels}.items())
    return run.bridge.samples(own=True).get((name, wanted))


def test_the_api_source_is_up_and_every_triggerer_ended_success_was_added(
    airflow_run: Run,
) -> None:
    assert _own(airflow_run, "aerostat_airflow_api_up") == 1.0
    assert (_own(airflow_run, "aerostat_airflow_api_requests_total") or 0) > 0
    # what StatsD never carried: the success of each triggerer-ended deferral
    ended_in_triggerer = sum(
        1 for ti in airflow_run.record.task_instances
        if ti["operator"] in ENDS_IN_TRIGGERER and ti["state"] == "success")
    assert ended_in_triggerer == 1
    assert _own(airflow_run, "aerostat_airflow_api_outcomes_added_total") == ended_in_triggerer


def test_last_success_and_latest_run_equal_the_apis(airflow_run: Run) -> None:
    runs = airflow_run.api.collection("/dags/~/dagRuns", "dag_runs")
    last_success = series(airflow_run, "airflow_dag_last_success_timestamp_seconds")
    latest_state = series(airflow_run, "airflow_dag_last_run_state")
    latest_end = series(airflow_run, "airflow_dag_last_run_end_timestamp_seconds")
    for dag_id in DAG_IDS:
        own = [run for run in runs if run["dag_id"] == dag_id and run["end_date"]]
        successes = [seconds(run["end_date"]) for run in own if run["state"] == "success"]
        assert last_success.get(labelled(dag_id)) == (max(successes) if successes else None)
        newest = max(own, key=lambda run: seconds(run["end_date"]))
        assert latest_end[labelled(dag_id)] == seconds(newest["end_date"])
        assert latest_state == {**latest_state, labelled(dag_id, state=newest["state"]): 1.0}
    assert len(latest_state) == len(DAG_IDS)


def test_dags_pools_and_health_equal_the_apis(airflow_run: Run) -> None:
    api = airflow_run.api
    dags = api.collection("/dags", "dags")
    assert series(airflow_run, "airflow_dags") == {
        frozenset({("state", "active")}): float(sum(not dag["is_paused"] for dag in dags)),
        frozenset({("state", "paused")}): float(sum(dag["is_paused"] for dag in dags)),
        frozenset({("state", "stale")}): 0.0,
    }
    assert series(airflow_run, "airflow_dag_paused") == {
        labelled(dag["dag_id"]): float(dag["is_paused"]) for dag in dags}
    # every run ended: nothing queued or running, per DAG
    assert set(series(airflow_run, "airflow_dag_runs").values()) == {0.0}
    assert len(series(airflow_run, "airflow_dag_runs")) == 2 * len(DAG_IDS)
    pools = {pool["name"]: pool for pool in api.collection("/pools", "pools")}
    slots = series(airflow_run, "airflow_pool_slots")
    assert slots[frozenset({("pool", POOL), ("state", "total")})] == pools[POOL]["slots"] == 2
    assert slots[frozenset({("pool", POOL), ("state", "open")})] == pools[POOL]["open_slots"]
    # (the triggerer frozen above heartbeats again: the database says so
    # within its health threshold, and the next poll shows it)
    everything_healthy = {frozenset({("component", part)}): 1.0 for part in (
        "metadatabase", "scheduler", "triggerer", "dag_processor")}
    wait_until("the API to report every component healthy",
               lambda: series(airflow_run, "airflow_component_healthy") == everything_healthy,
               60.0, 1.0, lambda: str(series(airflow_run, "airflow_component_healthy")))
    beats = series(airflow_run, "airflow_component_last_heartbeat_timestamp_seconds")
    assert {dict(labels)["component"] for labels in beats} == {
        "scheduler", "triggerer", "dag_processor"}
    assert all(time.time() - 120 < beat <= time.time() for beat in beats.values())
    assert series(airflow_run, "airflow_dag_import_errors") == {}


def test_the_api_password_is_nowhere_aerostat_shows_or_logs(airflow_run: Run) -> None:
    password = airflow_run.api_password
    assert password not in airflow_run.bridge.scrape_text()
    for path in ("/", "/api/status", "/-/healthy"):
        status, _, body = airflow_run.bridge.get(path)
        assert status == 200 and password not in body.decode(errors="replace"), path
    assert airflow_run.logged.lines, "aerostat logged nothing: the check would prove nothing"
    assert not [line for line in airflow_run.logged.lines if password in line]


def _listening_on(port: int) -> list[int]:
    """The pids holding the TCP socket that listens on ``port`` (the API
    server retitles itself over its command line and environment, so it
    is found by its socket)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                found.append(int(entry.name))
    return sorted(found)


def test_a_frozen_api_server_is_counted_and_retried_and_statsd_goes_on(
    airflow_run: Run,
) -> None:
    """The API server stops answering (frozen with SIGSTOP, as a hung
    server would): polls fail by timeout, up reads 0, the last state is
    kept and StatsD keeps flowing; thawed, the source recovers by itself."""
    import signal

    server = _listening_on(int(airflow_run.env["AIRFLOW__API__PORT"]))
    assert server, "no process of this run listens on the API server's port"
    state_before = series(airflow_run, "airflow_dag_last_success_timestamp_seconds")
    timeouts = _own(airflow_run, "aerostat_airflow_api_errors_total", reason="timeout") or 0.0
    beats = sum(series(airflow_run, "airflow_scheduler_heartbeat_total").values())
    for pid in server:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_until("the source to count the API down",
                   lambda: _own(airflow_run, "aerostat_airflow_api_up") == 0.0,
                   4 * (API_POLL_SECONDS + API_TIMEOUT), 0.5)
        assert (_own(airflow_run, "aerostat_airflow_api_errors_total", reason="timeout")
                or 0.0) > timeouts
        assert series(airflow_run, "airflow_dag_last_success_timestamp_seconds") == state_before
        wait_until("the scheduler's heartbeats to go on reaching aerostat",
                   lambda: sum(series(airflow_run,
                                      "airflow_scheduler_heartbeat_total").values()) > beats,
                   30.0, 1.0)
    finally:
        for pid in server:
            os.kill(pid, signal.SIGCONT)
    thawed = time.time()
    wait_until("the source to recover by itself",
               lambda: _own(airflow_run, "aerostat_airflow_api_up") == 1.0
               and api_polled_since(airflow_run.bridge, thawed), 60.0, 1.0)


# what a healthy run leaves empty among the queries of the REST-API source's
# metrics, and the one alert its runs make fire
API_QUERIES_EMPTY = {
    "grafana/dashboards/airflow-dags-tasks.json: panel 'Import errors per file' query A":
        "every DAG file imports",
    "prometheus/rules/aerostat-alerts.yml: alert AerostatAirflowApiDown": "the API answers",
    "prometheus/rules/airflow-alerts.yml: alert AirflowDagLate":
        "each DAG succeeded minutes ago (or never: demo_failing)",
    "prometheus/rules/airflow-alerts.yml: alert AirflowDagFileImportError":
        "every DAG file imports",
    "prometheus/rules/airflow-alerts.yml: alert AirflowComponentUnhealthy":
        "every component heartbeats",
}


@pytest.mark.parametrize("interval", SCRAPE_INTERVALS)
def test_the_stacks_rest_api_queries_answer_in_prometheus(airflow_run: Run, interval: str) -> None:
    """Every dashboard panel and alert on the REST-API source's metrics, as
    shipped, asked of a real Prometheus scraping aerostat beside a real
    Airflow: the panels show data, and the failed run's alert fires for
    the DAG whose latest run failed, and for no other."""
    prometheus = airflow_run.prometheus[interval]
    everything_healthy = {frozenset({("component", part)}): 1.0 for part in (
        "metadatabase", "scheduler", "triggerer", "dag_processor")}
    wait_until("the API to report every component healthy",
               lambda: series(airflow_run, "airflow_component_healthy") == everything_healthy,
               60.0, 1.0)
    time.sleep(5)  # both Prometheus servers scraped the healthy state
    queries = {re.sub(r"(: panel )\d+ ", r"\1", query.origin): query.expr
               for query in api_queries(all_queries(render_stack()))}
    assert set(API_QUERIES_EMPTY) <= queries.keys()
    answers = {}
    for origin, expr in queries.items():
        answer = prometheus.query(expr)
        assert answer.get("status") == "success", (origin, answer)
        answers[origin] = [found["metric"] for found in answer["data"]["result"]]
    empty = {origin for origin, found in answers.items() if not found}
    assert empty == set(API_QUERIES_EMPTY), sorted(empty ^ set(API_QUERIES_EMPTY))
    failed = answers["prometheus/rules/airflow-alerts.yml: alert AirflowDagRunFailed"]
    assert failed == [{"deployment": airflow_run.mode.deployment, "dag_id": "demo_failing"}]


# metric name → its label names, per mode, as the module's runs go by
_NAMES_BY_MODE: dict[str, dict[str, set[str]]] = {}


def test_otel_mode_has_the_names_and_labels_of_the_statsd_run(airflow_run: Run) -> None:
    """The same DAGs over tagged StatsD (influx-prefix) and over
    OpenTelemetry: every metric both runs export has the same label names,
    and the StatsD run has none the OTLP run lacks. Runs in the module's
    order (plain, influx-prefix, otel): the comparison is made by the otel
    run. The OTLP run may have more gauges: the OpenTelemetry SDK pushes a
    gauge at its last value on every push, where StatsD sent it when Airflow
    set it (the scheduler's ti.<state>, pool.starving_tasks and
    scheduler.dag_bag.cache_size), and aerostat lets a gauge whose senders
    went silent go after --airflow.sender-ttl."""
    from prometheus_client.parser import text_string_to_metric_families

    names: dict[str, set[str]] = {}
    for name, labels in airflow_run.bridge.samples():
        names.setdefault(name, set()).update(label for label, _ in labels)
    _NAMES_BY_MODE[airflow_run.mode.name] = names
    statsd = _NAMES_BY_MODE.get("influx-prefix")
    if not airflow_run.mode.otlp or statsd is None:
        return
    types = {sample.name: family.type for family in
             text_string_to_metric_families(airflow_run.bridge.scrape_text())
             for sample in family.samples}
    only_statsd, only_otel = statsd.keys() - names.keys(), names.keys() - statsd.keys()
    common = statsd.keys() & names.keys()
    assert {name: names[name] for name in common} == {name: statsd[name] for name in common}
    assert not only_statsd
    assert {name: types[name] for name in only_otel} == dict.fromkeys(only_otel, "gauge")


def test_otel_mode_arrives_over_otlp_alone(airflow_run: Run) -> None:
    if not airflow_run.mode.otlp:
        return
    bridge = airflow_run.bridge
    assert bridge.counter("aerostat_otlp_data_points_total") > 0
    assert bridge.counter("aerostat_otlp_requests_total", code="200") > 0
    assert bridge.counter("statsd_exporter_lines_total") == 0
    rejected = {labels: value for (name, labels), value in bridge.samples(own=True).items()
                if name == "aerostat_otlp_rejected_data_points_total" and value}
    assert rejected == {}
