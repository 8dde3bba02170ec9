"""A highly available Airflow, as an HA pair of real Prometheus servers sees
it through aerostat: the recorded StatsD traffic of two schedulers, two DAG
processors, a triggerer and an API server (tests/stack/captures, recorded by
tools/record_airflow_ha.py; one scheduler was stopped midway) is replayed
over real UDP, one socket per recorded sender, into aerostat with its
built-in Airflow mapping, scraped every second and every four. What each
server answers in PromQL must equal Airflow's own REST-API record of the
same runs: every task and DAG-run outcome counted in its series, and the
stopped scheduler read dead while the live one reads alive.

Needs neither Airflow nor PostgreSQL: only the capture and Prometheus."""

from __future__ import annotations

import contextlib
import json
import math
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aerostat.airflow import airflow_built_in
from bridge import Bridge, running_bridge
from stack.prometheus_process import Prometheus, running_prometheus

CAPTURES = Path(__file__).parent / "captures"
CAPTURE = CAPTURES / "airflow-3.3.2-ha.jsonl"
RECORD = CAPTURES / "airflow-3.3.2-ha.record.json"
INTERVALS = ("1s", "4s")
# the recording's minutes in about one: the stopped scheduler stays silent
# for tens of seconds of the replay, the live one beats every second or so
SPEED = 5.0
# its 30 s default scaled down with the replay (150 s of the recording's
# time); still several of the live scheduler's replayed heartbeat gaps
HEARTBEAT_SILENCE = 10.0
# the 4 s scraper reads twice within it after aerostat's start
HOLD = 12.0

Labels = frozenset[tuple[str, str]]


@dataclass
class Replay:
    bridge: Bridge
    prometheus: dict[str, Prometheus]
    record: dict[str, Any]
    began: float
    # recorded sender → the replaying socket's address, aerostat's `sender`
    senders: dict[str, str]
    # what each server answered for the schedulers' alive gauges right
    # after the replay: {interval: {sender: value}}
    alive: dict[str, dict[str, float]]
    # when the first recorded datagram was replayed (Unix seconds)
    replay_began: float

    def window(self) -> str:
        """A range that covers the whole replay, to ask it at the current time."""
        return f"{math.ceil(time.time() - self.began) + 5}s"


def recorded() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in CAPTURE.read_text().splitlines()]
    return lines, json.loads(RECORD.read_text())


def stopped_scheduler(record: dict[str, Any]) -> tuple[float, list[str]]:
    """When the recording stopped a scheduler, and the senders it had."""
    (stop,) = [event for event in record["recording"]["events"] if event["event"] == "SIGTERM"]
    senders = [sender for sender, who in record["recording"]["senders"].items()
               if who["role"] == stop["role"]]
    return stop["t"], senders


def schedulers(lines: list[dict[str, Any]], record: dict[str, Any]) -> dict[str, str]:
    """Each scheduler's role → the sender its heartbeats came from (its main
    process; its executor's workers and their tasks send from sockets of
    their own)."""
    roles = record["recording"]["senders"]
    beating = {line["sender"] for line in lines
               if line["data"].startswith("airflow.scheduler_heartbeat:")}
    return {roles[sender]["role"]: sender for sender in beating}


@contextlib.contextmanager
def prometheus_pair(bridge: Bridge, work: Path) -> Iterator[dict[str, Prometheus]]:
    with contextlib.ExitStack() as stack:
        pair = {}
        for interval in INTERVALS:
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


def replay(bridge: Bridge, lines: list[dict[str, Any]]) -> dict[str, str]:
    """Sends each recorded datagram from its sender's own socket, in order,
    at the recorded times compressed ``SPEED`` times; every one must arrive."""
    sockets: dict[str, socket.socket] = {}
    with contextlib.ExitStack() as stack:
        for line in lines:
            if line["sender"] not in sockets:
                sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                sock.bind(("127.0.0.1", 0))
                sockets[line["sender"]] = sock
        started = time.monotonic()
        for line in lines:
            delay = started + line["t"] / SPEED - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sockets[line["sender"]].sendto(line["data"].encode(), bridge.udp_address)
        bridge.wait_for_counter("statsd_exporter_udp_packets_total", len(lines))
        return {sender: f"127.0.0.1:{sock.getsockname()[1]}"
                for sender, sock in sockets.items()}


def alive_now(prometheus: Prometheus) -> dict[str, float]:
    """The schedulers' alive gauges of the latest scrape, by sender; all
    from one scrape, since every series of a scrape shares its timestamp."""
    found = prometheus.series("airflow_scheduler_alive")
    stamps = {sample["value"][0] for sample in found}
    assert len(stamps) <= 1, f"alive gauges of different scrapes: {found}"
    return {sample["metric"]["sender"]: float(sample["value"][1]) for sample in found}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    lines, record = recorded()
    built_in = airflow_built_in(heartbeat_silence=HEARTBEAT_SILENCE)
    with running_bridge(built_in=built_in, new_series_hold=HOLD) as bridge, \
            prometheus_pair(bridge, tmp_path_factory.mktemp("ha-capture")) as pair:
        began = time.time()
        # both scrapers known before Airflow's first datagram, as when
        # aerostat runs before the deployment starts
        time.sleep(HOLD + 1)
        replay_began = time.time()
        senders = replay(bridge, lines)
        bridge.settle()
        time.sleep(5)  # a scrape of each server after the last datagram
        alive = {interval: alive_now(prometheus) for interval, prometheus in pair.items()}
        # the last new series read at zero by both scrapers, then their values
        time.sleep(2 * 4 + 2)
        yield Replay(bridge, pair, record, began, senders, alive, replay_began)


# --- what Airflow sent, from its REST API's record --------------------------------


# WaitSensor defers with end_from_trigger=True: the triggerer marks the task
# instance success and no worker runs it again, so StatsD carries the
# worker's `deferred` and never that success (aerostat's REST-API source,
# not used here, adds it)
ENDS_IN_TRIGGERER = {"WaitSensor"}


def expected_finishes(record: dict[str, Any]) -> Counter[Labels]:
    """How many `ti.finish.<dag>.<task>.<state>` Airflow sent, by the rules
    of tests/e2e/test_airflow.py's expected_finishes: one per try that ran;
    a retried try sent up_for_retry (the API keeps it as failed); the last
    try sent the task instance's final state, except a triggerer-ended
    deferral, which sent `deferred`. A task that never ran sent none."""
    tries = {(entry["dag_id"], entry["dag_run_id"], entry["task_id"]): entry["tries"]
             for entry in record["tries"]}
    expected: Counter[Labels] = Counter()
    for ti in record["task_instances"]:
        if ti["try_number"] == 0:
            continue
        dag_id, task_id = ti["dag_id"], ti["task_id"]
        history = tries[(dag_id, ti["dag_run_id"], task_id)]
        assert [t["try_number"] for t in history] == list(range(1, ti["try_number"] + 1))
        for retried in history[:-1]:
            assert retried["state"] == "failed", retried
            expected[frozenset({"dag_id": dag_id, "task_id": task_id,
                                "state": "up_for_retry"}.items())] += 1
        state = history[-1]["state"]
        assert state == ti["state"]
        if ti["operator"] in ENDS_IN_TRIGGERER and state == "success":
            state = "deferred"
        expected[frozenset({"dag_id": dag_id, "task_id": task_id, "state": state}.items())] += 1
    return expected


def expected_runs(record: dict[str, Any]) -> Counter[Labels]:
    """One `dagrun.duration.<state>.<dag>` per DAG run, sent by the
    scheduler that ended it."""
    return Counter(frozenset({"dag_id": run["dag_id"], "state": run["state"]}.items())
                   for run in record["dag_runs"])


# --- what each Prometheus answers --------------------------------------------------


def counted(prometheus: Prometheus, expr: str, by: tuple[str, ...]) -> dict[Labels, float]:
    return {frozenset((label, found["metric"][label]) for label in by):
            float(found["value"][1]) for found in prometheus.series(expr)}


OUTCOMES = {
    "task finishes": ("airflow_ti_finish_total", ("dag_id", "task_id", "state"),
                      expected_finishes),
    "DAG runs": ("airflow_dagrun_duration_seconds_count", ("dag_id", "state"), expected_runs),
}


def test_the_recording_covers_retries_deferral_failure_and_a_stopped_scheduler() -> None:
    """What the comparisons below rest on: the record holds every kind of
    outcome, and two schedulers each ended runs before one was stopped."""
    lines, record = recorded()
    finishes = expected_finishes(record)
    states = {dict(labels)["state"] for labels in finishes}
    assert {"success", "failed", "up_for_retry", "deferred"} <= states
    assert {run["state"] for run in record["dag_runs"]} == {"success", "failed"}
    stop, stopped = stopped_scheduler(record)
    assert schedulers(lines, record)["scheduler-2"] in stopped
    assert 0 < stop < lines[-1]["t"] - 60
    role = {sender: role for role, sender in schedulers(lines, record).items()}
    ended_runs = Counter(
        role.get(line["sender"]) for line in lines
        if line["data"].startswith("airflow.dagrun.duration.")
        and line["data"].split(":")[0].count(".") == 4)
    assert ended_runs.keys() >= {"scheduler-1", "scheduler-2"}, ended_runs


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_outcome_airflow_sent_is_counted_once(
    replayed: Replay, interval: str, outcome: str
) -> None:
    """Through each server of the pair: every series Airflow's record calls
    for, first stored at 0, at its end exactly what Airflow sent, and no
    other series; increase() over the run at least that."""
    name, by, expect = OUTCOMES[outcome]
    prometheus = replayed.prometheus[interval]
    window = replayed.window()
    grouping = ", ".join(by)
    lowest = counted(prometheus, f"sum by ({grouping}) (min_over_time({name}[{window}]))", by)
    highest = counted(prometheus, f"sum by ({grouping}) (max_over_time({name}[{window}]))", by)
    increase = counted(prometheus, f"sum by ({grouping}) (increase({name}[{window}]))", by)
    expected = expect(replayed.record)
    assert expected
    for labels, sent in expected.items():
        assert (lowest.get(labels), highest.get(labels)) == (0.0, sent), dict(labels)
        # increase() extrapolates towards the window's ends: never less
        assert sent <= increase[labels] <= sent * 2.2, (dict(labels), increase[labels])
    assert {labels for labels, value in highest.items() if value} == set(expected)


@pytest.mark.parametrize("interval", INTERVALS)
def test_the_stopped_scheduler_reads_0_while_the_live_one_reads_1(
    replayed: Replay, interval: str
) -> None:
    """In one scrape after the replay: the scheduler stopped midway reads 0
    on aerostat's alive gauge, the one that went on reads 1; each read 1
    while it ran."""
    lines, _ = recorded()
    by_role = {role: replayed.senders[sender]
               for role, sender in schedulers(lines, replayed.record).items()}
    assert by_role.keys() == {"scheduler-1", "scheduler-2"}
    alive = replayed.alive[interval]
    assert alive == {by_role["scheduler-1"]: 1.0, by_role["scheduler-2"]: 0.0}
    ever = counted(replayed.prometheus[interval],
                   f"max_over_time(airflow_scheduler_alive[{replayed.window()}])", ("sender",))
    assert ever == {frozenset({("sender", sender)}): 1.0 for sender in by_role.values()}


@pytest.mark.parametrize("interval", INTERVALS)
def test_the_dag_count_is_airflow_s_at_every_scrape(replayed: Replay, interval: str) -> None:
    """The two DAG processors (bundle-a: 2 DAGs, bundle-b: 1) total 3 DAGs in
    every scrape once both have parsed their bundle, although Airflow's
    bundle-b processor reported 0 in the loops that followed a callback-only
    run (t = 44.9, 111.7 and 179.3 s): AIRFLOW-774's modern relative."""
    lines, record = recorded()
    dag_counts = [(line["t"], line["sender"], line["data"]) for line in lines
                  if line["data"].startswith("airflow.dagbag_size:")]
    assert any(data == "airflow.dagbag_size:0|g" for t, _, data in dag_counts if t > 40)
    both_parsed = max(min(t for t, sender, data in dag_counts
                          if sender == processor and not data.endswith(":0|g"))
                      for processor in {sender for _, sender, _ in dag_counts})
    since = replayed.replay_began + both_parsed / SPEED + 5  # a 4 s scrape after it
    window = math.floor(time.time() - since)
    assert window > 30
    prometheus = replayed.prometheus[interval]
    expr = f"sum(airflow_dagbag_size)[{window}s:1s]"
    low = prometheus.series(f"min_over_time({expr})")
    high = prometheus.series(f"max_over_time({expr})")
    dags = float(len(record["dags"]))
    assert dags == 3
    assert [float(low[0]["value"][1]), float(high[0]["value"][1])] == [dags, dags]
