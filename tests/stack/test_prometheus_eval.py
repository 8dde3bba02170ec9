"""Every query the stack ships, evaluated by a real Prometheus scraping a real
aerostat: each dashboard panel (and variable) query and each recording and
alerting rule must be valid PromQL and return data. A query that can never
show anything is found here, not by a user staring at an empty panel.

Two scenarios, each with its own aerostat(s) and Prometheus:

* healthy: the real Airflow 3.3.2 capture replayed 20 times as fast as it was
  recorded, in a loop, while Prometheus scrapes every second. Every query
  returns data except the ones in EMPTY_WHEN_HEALTHY, each with its reason,
  and the two of EMPTY_AT_TIMES, which the captured run fills at some moments
  only. EMPTY_WHEN_HEALTHY is exact: a query outside the lists that returns
  nothing fails the test, and so does a listed one that returns data (an
  alert firing on a healthy Airflow, or a stale entry).
* trouble: what those need, provoked: processes that stop heartbeating (one of
  three, and all of a deployment), failing tasks, import errors, a full
  triggerer, a growing executor queue, the failure counters an Airflow in
  trouble sends, an aerostat that drops datagrams and refuses series, one that
  receives nothing and one that is down. Every listed query returns data.

Time is compressed. The rules and dashboards look at windows sized for hours
of traffic ("no heartbeat for 2 minutes", "expected over the past hour", a
subquery step of a minute); this test has seconds. Every window and subquery
step, in the rule files Prometheus loads and in the queries, is divided by
TIME_COMPRESSION (30) with a floor of SHORTEST_WINDOW (4 s, four scrapes), so
2m → 4s, 5m → 10s, 10m → 20s, 15m → 30s, 1h → 2m, 24h → 48m and a 1m step →
2s. Grafana's $__rate_interval becomes 4s (its own floor: four scrape
intervals) and $__range 1m. The expressions as rendered, with Grafana's
defaults, are checked for validity as well (``test_every_query_as_shipped_is_valid``).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from aerostat.airflow import airflow_built_in
from aerostat.stack import StackOptions, all_queries, render_stack, write_stack
from aerostat.stack.up import CaptureReplay, bundled_capture
from bridge import Bridge, running_bridge
from stack.api_queries import api_queries
from stack.prometheus_process import Prometheus, free_port, running_prometheus

TIME_COMPRESSION = 30
SHORTEST_WINDOW = 4  # seconds
# what Grafana's variables stand for in compressed time
TEST_VARIABLES = {"__rate_interval": "4s", "__interval": "1s", "__range": "1m"}
REPLAY_SPEED = 20
SCRAPE_INTERVAL = "1s"

_RANGE = re.compile(r"\[(?P<window>\d+[smhd])(?::(?P<step>\d+[smhd]))?\]")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _compress(duration: str, floor: int) -> str:
    seconds = int(duration[:-1]) * _SECONDS[duration[-1]]
    return f"{max(floor, seconds // TIME_COMPRESSION)}s"


def compressed(text: str) -> str:
    """``text`` (an expression, a rule file, a dashboard) with every range
    window and subquery step in compressed time."""
    def window(found: re.Match[str]) -> str:
        shrunk = _compress(found["window"], SHORTEST_WINDOW)
        if found["step"] is None:
            return f"[{shrunk}]"
        return f"[{shrunk}:{_compress(found['step'], 1)}]"

    return _RANGE.sub(window, text)


DASHBOARDS = "grafana/dashboards/"
RULES = "prometheus/rules/"
_FAILURE_COUNTER = "a counter Airflow creates on the first failure of its kind"

# query origin (as all_queries names it) → why a healthy Airflow leaves it empty.
# A deployment's rare counters without identifiers (heartbeat failures, the
# critical section, triggers failed, assets) exist at zero once it is seen,
# so their panels show 0; what remains needs a label value no event gave yet
EMPTY_WHEN_HEALTHY = {
    # counters of failures per DAG, task or file, which the captured run never had
    f"{DASHBOARDS}airflow-dag-processing.json: panel 'Callback exceptions per DAG' query A":
        _FAILURE_COUNTER,
    # metrics the captured Airflow (LocalExecutor, no assets) does not send
    f"{DASHBOARDS}airflow-dags-tasks.json: panel 'Time queued, 95th percentile' query A":
        "queued durations come from executors with a queue (Celery, Kubernetes)",
    f"{DASHBOARDS}airflow-pools-executor.json: panel 'Time queued, 95th percentile per "
    "queue' query A":
        "queued durations come from executors with a queue (Celery, Kubernetes)",
    # alerts: their expression is empty while all is well
    **{f"{RULES}airflow-alerts.yml: alert Airflow{component}{what}": "every process beats"
       for component in ("Scheduler", "DagProcessor", "Triggerer")
       for what in ("Down", "ProcessDown")},
    f"{RULES}airflow-alerts.yml: alert AirflowDeploymentSilent": "every process beats",
    f"{RULES}airflow-alerts.yml: alert AirflowDagFileNotParsed":
        "every file was parsed within seconds",
    f"{RULES}airflow-alerts.yml: alert AirflowDagImportErrors": "every DAG file imports",
    f"{RULES}airflow-alerts.yml: alert AirflowTasksKilledWithoutHeartbeat": _FAILURE_COUNTER,
    f"{RULES}airflow-alerts.yml: alert AirflowTriggererFull": "the triggerer has room",
    f"{RULES}aerostat-alerts.yml: alert AerostatDown": "aerostat answers every scrape",
    f"{RULES}aerostat-alerts.yml: alert AerostatDroppingDatagrams": "aerostat keeps up",
    f"{RULES}aerostat-alerts.yml: alert AerostatRefusingSeries":
        "the series stay far below --statsd.max-series",
    f"{RULES}aerostat-alerts.yml: alert AerostatNoTraffic": "Airflow sends all the time",
}

# query origin → why it shows data at some moments of the captured run and
# none at others: the test cannot know which it will meet
EMPTY_AT_TIMES = {
    f"{RULES}airflow-alerts.yml: alert AirflowPoolStarving":
        "the capture's demo_pool starves 2 tasks for about 40 % of the run",
    f"{RULES}airflow-alerts.yml: alert AirflowExecutorBacklogGrowing":
        "the capture's executor queue holds 1 to 4 tasks now and then; whether its "
        "fitted slope is above 0 depends on the moment",
}
PROVOKED = {**EMPTY_WHEN_HEALTHY, **EMPTY_AT_TIMES}


def _from_the_api() -> set[str]:
    """The queries of what the REST-API source shows: empty here, where only
    StatsD is replayed; tests/e2e asks them beside a real Airflow."""
    return {_origin(query.origin) for query in api_queries(all_queries(render_stack()))}


@dataclass
class Evaluated:
    """What Prometheus answered for each query of one scenario: origin →
    the series returned (labels), or the error of an invalid query."""

    results: dict[str, list[dict[str, str]]]
    errors: dict[str, str]

    def empty(self) -> set[str]:
        return {origin for origin, series in self.results.items() if not series}


def _evaluate(prometheus: Prometheus, queries: list[tuple[str, str]]) -> Evaluated:
    results: dict[str, list[dict[str, str]]] = {}
    errors: dict[str, str] = {}
    for origin, expr in queries:
        answer = prometheus.query(expr)
        if answer.get("status") != "success":
            errors[origin] = f"{answer.get('error')}\n  {expr}"
            continue
        results[origin] = [entry["metric"] for entry in answer["data"]["result"]]
    return Evaluated(results, errors)


_PANEL_NUMBER = re.compile(r"(: panel )\d+ ")


def _origin(origin: str) -> str:
    """A query's origin without the panel's number, which changes whenever a
    panel is added before it."""
    return _PANEL_NUMBER.sub(r"\1", origin)


def _as_shipped() -> list[tuple[str, str]]:
    return [(_origin(query.origin), query.expr) for query in all_queries(render_stack())]


def _test_queries() -> list[tuple[str, str]]:
    """Every query in compressed time, by origin."""
    files = {path: compressed(text) for path, text in render_stack().items()}
    return [(_origin(query.origin), query.expr) for query in all_queries(files, TEST_VARIABLES)]


@contextlib.contextmanager
def _prometheus_scraping(workdir: Path, targets: tuple[str, ...]) -> Iterator[Prometheus]:
    """Prometheus with the stack's own prometheus.yml (scrapes and rule
    evaluations every second) and its rule files in compressed time,
    scraping ``targets`` as the job ``aerostat``."""
    files = render_stack(StackOptions(aerostat_targets=targets, scrape_interval=SCRAPE_INTERVAL))
    write_stack(workdir / "stack", {
        path: compressed(text) if path.startswith(RULES) else text
        for path, text in files.items()
    })
    config = workdir / "stack" / "prometheus" / "prometheus.yml"
    with running_prometheus(config, workdir) as prometheus:
        yield prometheus


def _target(bridge: Bridge) -> str:
    return f"127.0.0.1:{bridge.server.http_port}"


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


# -- healthy -----------------------------------------------------------------------------


@dataclass
class Healthy:
    evaluated: Evaluated  # in compressed time
    as_shipped: Evaluated  # the expressions as rendered, Grafana's defaults for its variables


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Healthy:
    workdir = tmp_path_factory.mktemp("healthy")
    with running_bridge(built_in=airflow_built_in()) as bridge, \
            _prometheus_scraping(workdir, (_target(bridge),)) as prometheus:
        replay = CaptureReplay(bundled_capture(), bridge.udp_address, REPLAY_SPEED)
        replay.start()
        try:
            # a whole pass, then a few scrapes and rule evaluations more for its
            # last datagrams; the replay goes on meanwhile, so that no
            # heartbeat window runs dry while the queries are asked
            _wait_until(lambda: replay.passes >= 1, 60, "one pass over the capture")
            time.sleep(3)
            evaluated = _evaluate(prometheus, _test_queries())
            as_shipped = _evaluate(prometheus, _as_shipped())
        finally:
            replay.stop()
    return Healthy(evaluated, as_shipped)


def _listing(origins: Iterable[str], reasons: Mapping[str, str] | None = None) -> str:
    return "".join(f"\n  {origin}" + (f": {reasons[origin]}" if reasons else "")
                   for origin in sorted(origins))


def test_every_query_as_shipped_is_valid(healthy: Healthy) -> None:
    assert healthy.as_shipped.results, "no query found in the rendered stack"
    assert not healthy.as_shipped.errors, "".join(
        f"\n{origin}: {error}" for origin, error in sorted(healthy.as_shipped.errors.items()))


def test_every_query_in_compressed_time_is_valid(healthy: Healthy) -> None:
    assert not healthy.evaluated.errors, "".join(
        f"\n{origin}: {error}" for origin, error in sorted(healthy.evaluated.errors.items()))


def test_the_lists_of_empty_queries_name_real_queries(healthy: Healthy) -> None:
    gone = PROVOKED.keys() - healthy.evaluated.results.keys()
    gone -= healthy.evaluated.errors.keys()
    assert not gone, f"queries listed here that the stack no longer has:{_listing(gone)}"


def test_a_healthy_airflow_fills_every_query_but_the_listed(healthy: Healthy) -> None:
    unexpected = healthy.evaluated.empty() - PROVOKED.keys() - _from_the_api()
    assert not unexpected, (
        "no data from these queries while a real Airflow ran; a panel or rule that "
        "reads a metric Airflow does not send, or a wrong label? If it needs a failure to "
        f"show anything, list it in EMPTY_WHEN_HEALTHY and provoke it below:{_listing(unexpected)}")


def test_the_rest_api_queries_are_found_and_empty_without_the_source(healthy: Healthy) -> None:
    from_the_api = _from_the_api()
    # the freshness row, the runs and import-error panels, five alerts
    assert len(from_the_api) >= 9, from_the_api
    assert not from_the_api & PROVOKED.keys()
    filled = {origin for origin in from_the_api if healthy.evaluated.results.get(origin)}
    assert not filled, f"data without a REST-API source:{_listing(filled)}"


def test_the_listed_queries_are_empty_while_airflow_is_healthy(healthy: Healthy) -> None:
    filled = EMPTY_WHEN_HEALTHY.keys() & {
        origin for origin, series in healthy.evaluated.results.items() if series}
    assert not filled, (
        "listed in EMPTY_WHEN_HEALTHY but returned data (an alert that fires on a healthy "
        f"Airflow, or a stale entry):{_listing(filled, EMPTY_WHEN_HEALTHY)}")


# -- trouble -------------------------------------------------------------------------------

# all three processes of each kind beat together for longer than the
# compressed 10 minutes over which the rules learn how many to expect
RAMP_SECONDS = 26.0
# then longer than the compressed 5 minutes that make a deployment silent
QUIET_SECONDS = 13.0
BEAT_SECONDS = 0.5
COMPONENTS = {"Scheduler": "scheduler", "DagProcessor": "dag_processor",
              "Triggerer": "triggerer"}


class _AirflowProcess:
    """One Airflow process's heartbeats, from a socket of its own, as
    Airflow's StatsD client sends them: aerostat tells processes apart by
    source address."""

    def __init__(self, deployment: str, component: str) -> None:
        self.deployment = deployment
        self.line = f"airflow.{deployment}.{component}_heartbeat:1|c".encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sender = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def beat(self, target: tuple[str, int]) -> None:
        self.sock.sendto(self.line, target)


def _troubled_airflow(step: int) -> list[bytes]:
    """What an Airflow in trouble sends at each beat besides its heartbeats
    (deployment ``troubled``); ``step`` counts the beats."""
    lines = [
        "dag_processing.import_errors:3|g",
        "dag_processing.last_run.seconds_ago.broken_dag:900|g",
        "triggerer.capacity_left.triggerer_1:0|g",
        "pool.starving_tasks.etl_pool:3|g",
        f"executor.queued_tasks.LocalExecutor:{10 + step}|g",  # a queue that keeps growing
        "ti.finish.etl.load.failed:1|c",
        "dag.etl.load.queued_duration:1500|ms",
        "task_instances_without_heartbeats_killed:1|c",
        "scheduler.tasks.killed_externally:1|c",
        "dag_processing.processor_timeouts:1|c",
        "dag.callback_exceptions:1|c",
        "job_heartbeat_failure:1|c",
        "triggers.failed:1|c",
        "triggers.blocked_main_thread:1|c",
        "scheduler.critical_section_busy:1|c",
        "asset.updates:1|c",
        "asset.triggered_dagruns:1|c",
        "broken:not_a_number|c",  # refused by aerostat as malformed_value
    ]
    return [f"airflow.troubled.{line}".encode() for line in lines]


def _overflow(bridge: Bridge) -> None:
    """Distinct series, sent faster than a reader sharing this interpreter
    takes them in, to an aerostat whose socket holds a handful of datagrams
    and whose series limit is tiny: it drops datagrams in the kernel and
    refuses series, and counts both."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for burst in range(10):
            for number in range(2000):
                sock.sendto(f"overflow.series_{burst}_{number}:1|c".encode(), bridge.udp_address)
            time.sleep(1.2)  # aerostat reads the kernel's drop counter once a second
            if (bridge.counter("aerostat_udp_kernel_drops_total") > 0
                    and bridge.counter("aerostat_series_refused_total", limit="series") > 0):
                return
    raise AssertionError("no kernel drops or refused series after 10 bursts")


@dataclass
class Trouble:
    evaluated: Evaluated
    stopped: dict[str, set[tuple[str, str]]]  # component → (deployment, sender) stopped
    instances: dict[str, str]  # role → instance label of each scraped aerostat


@pytest.fixture(scope="module")
def trouble(tmp_path_factory: pytest.TempPathFactory) -> Trouble:
    workdir = tmp_path_factory.mktemp("trouble")
    with contextlib.ExitStack() as stack:
        # the 30 s of silence after which a process reads 0, in compressed time
        # (three missed beats)
        silence = max(30.0 / TIME_COMPRESSION, 3 * BEAT_SECONDS)
        airflow = stack.enter_context(
            running_bridge(built_in=airflow_built_in(heartbeat_silence=silence)))
        lossy = stack.enter_context(running_bridge(read_buffer=1, max_series=5))
        idle = stack.enter_context(running_bridge())
        instances = {"airflow": _target(airflow), "lossy": _target(lossy),
                     "idle": _target(idle), "down": f"127.0.0.1:{free_port()}"}
        prometheus = stack.enter_context(
            _prometheus_scraping(workdir, tuple(instances.values())))
        # "shrunk" loses one of three processes of each kind, "silent" all
        processes = {component: [_AirflowProcess("shrunk", component) for _ in range(3)]
                     + [_AirflowProcess("silent", component)]
                     for component in COMPONENTS.values()}
        for group in processes.values():
            for process in group:
                stack.callback(process.sock.close)
        stopped = {component: {(process.deployment, process.sender) for process in group
                               if process.deployment == "silent" or process is group[0]}
                   for component, group in processes.items()}
        troubled = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        started = time.monotonic()
        step = 0
        quiet = False
        while (elapsed := time.monotonic() - started) < RAMP_SECONDS + QUIET_SECONDS:
            if not quiet and elapsed >= RAMP_SECONDS:
                quiet = True
                _overflow(lossy)
            for component, group in processes.items():
                for process in group:
                    if not quiet or (process.deployment, process.sender) not in stopped[component]:
                        process.beat(airflow.udp_address)
            for line in _troubled_airflow(step):
                troubled.sendto(line, airflow.udp_address)
            step += 1
            time.sleep(BEAT_SECONDS)
        evaluated = _evaluate(prometheus, _test_queries())
    return Trouble(evaluated, stopped, instances)


def test_trouble_fills_every_query_a_healthy_airflow_leaves_empty(trouble: Trouble) -> None:
    assert not trouble.evaluated.errors
    still_empty = PROVOKED.keys() & trouble.evaluated.empty()
    assert not still_empty, (
        f"still no data with the failure provoked:{_listing(still_empty, PROVOKED)}")


def _alert(trouble: Trouble, file: str, name: str) -> list[dict[str, str]]:
    return trouble.evaluated.results[f"{RULES}{file}: alert {name}"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_process_alerts_name_the_stopped_processes(trouble: Trouble, component: str) -> None:
    key = COMPONENTS[component]
    down = _alert(trouble, "airflow-alerts.yml", f"Airflow{component}Down")
    # "shrunk" still has two processes: only "silent" is down
    assert {series["deployment"] for series in down} == {"silent"}
    process_down = _alert(trouble, "airflow-alerts.yml", f"Airflow{component}ProcessDown")
    assert {(series["deployment"], series["sender"]) for series in process_down} == (
        trouble.stopped[key])


def test_deployment_silent_names_only_the_silent_deployment(trouble: Trouble) -> None:
    silent = _alert(trouble, "airflow-alerts.yml", "AirflowDeploymentSilent")
    assert {series["deployment"] for series in silent} == {"silent"}


@pytest.mark.parametrize(("alert", "role"), [
    ("AerostatDown", "down"),
    ("AerostatDroppingDatagrams", "lossy"),
    ("AerostatRefusingSeries", "lossy"),
    ("AerostatNoTraffic", "idle"),
])
def test_aerostat_alerts_name_the_instance_at_fault(trouble: Trouble, alert: str,
                                                    role: str) -> None:
    series = _alert(trouble, "aerostat-alerts.yml", alert)
    assert {entry["instance"] for entry in series} == {trouble.instances[role]}
