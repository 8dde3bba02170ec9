"""`aerostat serve --airflow` through real sockets: gauges that several Airflow
processes report for themselves (each test socket is one process, as each
Airflow process has its own StatsD socket), deployments kept apart, users'
own metrics and mapping files on top of the built-in mapping."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aerostat.airflow import airflow_built_in
from bridge import Bridge, Sender, running_bridge
from bridge import value as any_value

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "src/aerostat/airflow/captures/airflow-3.3.2-plain.jsonl"


def value(bridge: Bridge, name: str, **labels: str) -> float | None:
    """A sample of the built-in mapping's metrics: Airflow traffic whose
    prefix and tags name no deployment is in the default deployment."""
    if "rows_loaded" not in name:  # the DAG code's own metric has none
        labels.setdefault("deployment", "default")
    return any_value(bridge, name, **labels)


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    with running_bridge(built_in=airflow_built_in(sender_ttl=0.6, heartbeat_ttl=0.6)) as running:
        yield running


def keep_sending(process: Sender, line: bytes, until: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not until():  # type: ignore[operator]
        process.send(line)
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def test_two_dag_processors_dag_counts_add_up(bridge: Bridge) -> None:
    """AIRFLOW-774 one level up: two DAG processors each report their own
    dagbag_size; with no bundle known (2.x), each counts for itself."""
    bundle_a, bundle_b = Sender(bridge), Sender(bridge)
    for _ in range(3):  # interleaved, as their parsing loops are
        bundle_a.send(b"airflow.dagbag_size:12|g", b"airflow.dag_processing.import_errors:1|g")
        bundle_b.send(b"airflow.dagbag_size:30|g", b"airflow.dag_processing.import_errors:0|g")
    assert value(bridge, "airflow_dagbag_size") == 42
    assert value(bridge, "airflow_dag_processing_import_errors") == 1
    assert value(bridge, "airflow_dagbag_size_by_sender", sender=bundle_a.name) == 12


def test_dag_processors_of_different_bundles_add_up_replicas_count_once(bridge: Bridge) -> None:
    """3.x: `airflow dag-processor --bundle-name A` and `--bundle-name B`
    each total their own files; a replica of A reports A's totals again.
    Each processor's bundles show in the parse times it sends."""
    bundle_a, replica_a, bundle_b = Sender(bridge), Sender(bridge), Sender(bridge)
    bundle_a.send(b"airflow.dag_processing.last_duration.a.etl:0.2|ms",
                  b"airflow.dagbag_size:12|g")
    replica_a.send(b"airflow.dag_processing.last_duration.a.etl:0.3|ms",
                   b"airflow.dagbag_size:12|g")
    bundle_b.send(b"airflow.dag_processing.last_duration,bundle_name=b,file_name=ml:0.1|ms",
                  b"airflow.dagbag_size:30|g")
    assert value(bridge, "airflow_dagbag_size") == 42
    for process, dags in ((bundle_a, 12), (replica_a, 12), (bundle_b, 30)):
        assert value(bridge, "airflow_dagbag_size_by_sender", sender=process.name) == dags
    # the lines are cached now: the grouping must hold on the fast path too
    replica_a.send(b"airflow.dagbag_size:13|g")
    bundle_b.send(b"airflow.dagbag_size:31|g")
    assert value(bridge, "airflow_dagbag_size") == 44


def test_a_callback_only_run_does_not_make_the_dag_count_dip(bridge: Bridge) -> None:
    """Airflow 3.3.2's DAG processor counts a file whose callbacks alone it
    ran as holding no DAG in the loop's totals (tests/stack/captures, the HA
    recording at t = 44.86 s: bundle-b's 1 DAG reads 0 for a loop): the
    totals before it stand for that loop; the next loop's are believed,
    a real drop included."""
    bundle_a, bundle_b = Sender(bridge), Sender(bridge)
    loop_a = (b"airflow.dag_processing.total_parse_time:0.04|g",
              b"airflow.dagbag_size:2|g", b"airflow.dag_processing.import_errors:1|g")
    bundle_a.send(b"airflow.dag_processing.last_duration.bundle-a.etl:0.03|ms", *loop_a)
    bundle_b.send(b"airflow.dag_processing.last_duration.bundle-b.ml:0.03|ms",
                  b"airflow.dagbag_size:1|g", b"airflow.dag_processing.import_errors:0|g")
    assert value(bridge, "airflow_dagbag_size") == 3
    for _ in range(2):  # the second callback-only run's line is one the cache knew
        bundle_a.send(b"airflow.dag_processing.callback_only_count:1|c",
                      b"airflow.dag_processing.last_duration.bundle-a.etl:0.03|ms",
                      b"airflow.dag_processing.total_parse_time:0.05|g",
                      b"airflow.dagbag_size:1|g", b"airflow.dag_processing.import_errors:0|g")
        assert value(bridge, "airflow_dagbag_size") == 3
        assert value(bridge, "airflow_dag_processing_import_errors") == 1
        assert value(bridge, "airflow_dagbag_size_by_sender", sender=bundle_a.name) == 2
        bundle_a.send(*loop_a)
        assert value(bridge, "airflow_dagbag_size") == 3
    # a loop with no callback-only run: a drop is a drop
    bundle_a.send(b"airflow.dagbag_size:1|g", b"airflow.dag_processing.import_errors:0|g")
    assert value(bridge, "airflow_dagbag_size") == 2
    assert value(bridge, "airflow_dag_processing_import_errors") == 0
    # a callback-only run before a loop whose count rose: believed at once
    bundle_a.send(b"airflow.dag_processing.callback_only_count:1|c", b"airflow.dagbag_size:4|g")
    assert value(bridge, "airflow_dagbag_size") == 5


def test_two_schedulers_executor_slots_add_up(bridge: Bridge) -> None:
    """apache/airflow#26601: each scheduler runs its own executor."""
    first, second = Sender(bridge), Sender(bridge)
    first.send(b"airflow.executor.open_slots.CeleryExecutor:10|g",
               b"airflow.executor.running_tasks.CeleryExecutor:6|g")
    second.send(b"airflow.executor.open_slots.CeleryExecutor:14|g",
                b"airflow.executor.running_tasks.CeleryExecutor:2|g")
    executor = {"executor": "CeleryExecutor"}
    assert value(bridge, "airflow_executor_open_slots", **executor) == 24
    assert value(bridge, "airflow_executor_running_tasks", **executor) == 8


def test_pool_slots_from_two_schedulers_do_not_flap(bridge: Bridge) -> None:
    first, second = Sender(bridge), Sender(bridge)
    for open_slots in (b"128", b"126", b"128"):
        first.send(b"airflow.pool.open_slots.default_pool:" + open_slots + b"|g")
        second.send(b"airflow.pool.open_slots.default_pool:127|g")
        assert value(bridge, "airflow_pool_open_slots", pool="default_pool") == float(open_slots)


def test_a_stopped_dag_processor_no_longer_counts(bridge: Bridge) -> None:
    gone, staying = Sender(bridge), Sender(bridge)
    gone.send(b"airflow.dagbag_size:12|g")
    staying.send(b"airflow.dagbag_size:30|g")
    assert value(bridge, "airflow_dagbag_size") == 42
    keep_sending(staying, b"airflow.dagbag_size:30|g",
                 lambda: value(bridge, "airflow_dagbag_size") == 30)
    assert value(bridge, "airflow_dagbag_size_by_sender", sender=gone.name) is None


def test_one_silent_scheduler_of_three_shows(bridge: Bridge) -> None:
    """Each scheduler's heartbeat is its own series: the dead one's stops,
    then goes, while the others keep counting."""
    schedulers = [Sender(bridge) for _ in range(3)]
    for scheduler in schedulers:
        scheduler.send(b"airflow.scheduler_heartbeat:1|c")
    beats = {s.name: value(bridge, "airflow_scheduler_heartbeat_total", sender=s.name)
             for s in schedulers}
    assert beats == {s.name: 1.0 for s in schedulers}
    dead, alive = schedulers[0], schedulers[1:]
    for _ in range(2):
        for scheduler in alive:
            scheduler.send(b"airflow.scheduler_heartbeat:1|c")
    assert value(bridge, "airflow_scheduler_heartbeat_total", sender=dead.name) == 1.0
    for scheduler in alive:
        assert value(bridge, "airflow_scheduler_heartbeat_total", sender=scheduler.name) == 3.0
    deadline = time.monotonic() + 10
    while value(bridge, "airflow_scheduler_heartbeat_total", sender=dead.name) is not None:
        for scheduler in alive:
            scheduler.send(b"airflow.scheduler_heartbeat:1|c")
        assert time.monotonic() < deadline, "the dead scheduler's series never went"
        time.sleep(0.1)
    for scheduler in alive:
        assert value(bridge, "airflow_scheduler_heartbeat_total", sender=scheduler.name)


def test_deployments_from_the_prefix_do_not_collide(bridge: Bridge) -> None:
    prod, staging = Sender(bridge), Sender(bridge)
    prod.send(b"airflow.prod.ti.finish.etl.load.success:1|c", b"airflow.prod.ti.finish:1|c",
              b"airflow.prod.pool.open_slots.default_pool:100|g")
    staging.send(b"airflow.staging.ti.finish.etl.load.success:1|c",
                 b"airflow.staging.ti.finish.etl.load.success:1|c",
                 b"airflow.staging.pool.open_slots.default_pool:8|g")
    finish = {"dag_id": "etl", "task_id": "load", "state": "success"}
    assert value(bridge, "airflow_ti_finish_total", deployment="prod", **finish) == 1
    assert value(bridge, "airflow_ti_finish_total", deployment="staging", **finish) == 2
    assert value(bridge, "airflow_pool_open_slots", deployment="prod", pool="default_pool") == 100
    assert value(bridge, "airflow_pool_open_slots", deployment="staging", pool="default_pool") == 8


def test_deployment_from_a_prefix_without_airflow_and_from_dogstatsd_tags(bridge: Bridge) -> None:
    one = Sender(bridge)
    one.send(b"teamx.dagbag_size:5|g",
             b"airflow.ti.finish:1|c|#dag_id:etl,task_id:load,state:failed,deployment:blue")
    assert value(bridge, "airflow_dagbag_size", deployment="teamx") == 5
    assert value(bridge, "airflow_ti_finish_total", deployment="blue", dag_id="etl",
                 task_id="load", state="failed") == 1


def test_custom_metrics_from_dag_code_keep_their_tags(bridge: Bridge) -> None:
    """stats.incr("rows_loaded", tags=...) in DAG code, InfluxDB-tag mode;
    under a deployment prefix once the deployment is known."""
    worker = Sender(bridge)
    worker.send(b"airflow.rows_loaded,table=orders:250|c",
                b"airflow.prod.scheduler_heartbeat:1|c",
                b"airflow.prod.rows_loaded,table=orders:50|c")
    assert value(bridge, "airflow_rows_loaded_total", table="orders") == 250
    assert value(bridge, "airflow_rows_loaded_total", table="orders", deployment="prod") == 50


def test_a_user_mapping_renames_and_drops_over_the_built_in(tmp_path: Path) -> None:
    mapping = tmp_path / "mine.yml"
    mapping.write_text(
        "mappings:\n"
        "- match: airflow.ti.finish.*.*.*\n"
        "  name: task_finished_total\n"
        "  labels: {pipeline: $1, step: $2, outcome: $3}\n"
        "- match: airflow.pool.*.*\n"
        "  name: dropped\n"
        "  action: drop\n"
    )
    with running_bridge(mapping_config=str(mapping), built_in=airflow_built_in()) as bridge:
        Sender(bridge).send(b"airflow.ti.finish.etl.load.success:1|c",
                             b"airflow.pool.open_slots.default_pool:3|g",
                             b"airflow.dagbag_size:4|g")
        samples = bridge.samples()
    default = ("deployment", "default")
    assert samples[("task_finished_total", frozenset(
        {("pipeline", "etl"), ("step", "load"), ("outcome", "success"), default}))] == 1
    assert not [name for name, _ in samples if name.startswith("airflow_pool")]
    assert samples[("airflow_dagbag_size", frozenset({default}))] == 4


def test_replay_of_real_airflow_traffic() -> None:
    """aerostat replay --airflow over the real 3.3.2 capture: every metric the
    capture holds, no identifier in a name, no unlabelled twin."""
    result = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", "replay", "--airflow", str(CAPTURE)],
        capture_output=True, text=True, check=True,
    )
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(result.stdout)}
    airflow = {name: f for name, f in families.items() if name.startswith("airflow")}
    for identifier in ("demo_", "default_pool", "LocalExecutor", "BashOperator", "dags_folder"):
        assert not [name for name in airflow if identifier.lower() in name.lower()], identifier
    for name, family in airflow.items():
        label_sets = {frozenset(k for k in s.labels if k not in ("le", "sender"))
                      for s in family.samples}
        assert not (frozenset() in label_sets and len(label_sets) > 1), name
    assert len(airflow) >= 50
    ti_finish = sum(s.value for s in families["airflow_ti_finish"].samples)
    legacy_finishes = CAPTURE.read_text().count('"airflow.ti.finish.')
    assert ti_finish == legacy_finishes > 0


def test_the_worked_example_in_the_docs(tmp_path: Path) -> None:
    """docs/airflow.md's mapping file over the built-in one does what the
    docs say it does."""
    text = (ROOT / "docs/airflow.md").read_text()
    example = text.split("```yaml\n# mine.yml", 1)[1].split("```", 1)[0].partition("\n")[2]
    mapping = tmp_path / "mine.yml"
    mapping.write_text(example)
    result = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", "map", "--airflow", "--json",
         "--config", str(mapping),
         "airflow.rows_loaded.orders:250|c", "airflow.pool.scheduled_slots.etl:3|g",
         "airflow.ti.finish.etl.load.failed:1|c", "airflow.dagbag_size:7|g"],
        capture_output=True, text=True, check=True,
    )
    import json

    rows, dropped, finished, dagbag = (json.loads(line) for line in result.stdout.splitlines())
    assert rows["events"][0]["name"] == "etl_rows_loaded_total"
    assert rows["events"][0]["labels"] == {"table": "orders"}
    assert dropped["error"] == "dropped"
    assert finished["events"][0]["labels"] == {"pipeline": "etl", "step": "load",
                                               "outcome": "failed", "deployment": "default"}
    assert dagbag["events"][0]["name"] == "airflow_dagbag_size"


def test_a_deployment_s_rare_counters_exist_at_zero_from_its_first_line(bridge: Bridge) -> None:
    """Panels of rare events (heartbeat failures, the critical section,
    failed triggers, assets) showed "No data" until the first one happened,
    and that first one was invisible to increase(). Once a deployment is
    seen its counters without identifiers exist at zero, for its release line."""
    from aerostat.airflow.mapping import counters_before_events

    scheduler = Sender(bridge)
    scheduler.send(b"airflow.prod.dag_processor_heartbeat:1|c")  # only 3.x sends it
    for name in ("airflow_scheduler_critical_section_busy_total",
                 "airflow_job_heartbeat_failure_total", "airflow_triggers_failed_total",
                 "airflow_asset_updates_total", "airflow_asset_triggered_dagruns_total",
                 "airflow_dag_processing_callback_only_count_total"):
        labels = {"job_name": "job"} if name.startswith("airflow_job") else {}
        assert value(bridge, name, deployment="prod", **labels) == 0, name
    assert value(bridge, "airflow_dag_processing_manager_stalls_total",
                 deployment="prod") is None  # 2.x only
    # not traffic: only the one line is counted
    assert bridge.counter("statsd_exporter_events_total", type="counter") == 1
    # every name of the list lands on a counter of its deployment
    created = {name for (name, labels) in bridge.samples()
               if ("deployment", "prod") in labels and name.endswith("_total")}
    assert len(created) >= len(counters_before_events()["both"]) + len(
        counters_before_events()["3.x"])
    # the first real event moves it from zero
    scheduler.send(b"airflow.prod.scheduler.critical_section_busy:1|c")
    assert value(bridge, "airflow_scheduler_critical_section_busy_total",
                 deployment="prod") == 1


def test_a_stopped_scheduler_reads_0_in_one_scrape_and_says_since_when() -> None:
    """A stopped scheduler was invisible in any single scrape: its heartbeat
    series only stopped growing. Now its alive gauge reads 0 once it has
    been silent for the heartbeat silence, the live one reads 1, and both
    say when they last beat, until the stopped one's series expires."""
    built_in = airflow_built_in(heartbeat_ttl=3.0, heartbeat_silence=0.6)
    with running_bridge(built_in=built_in) as bridge:
        stopped, live = Sender(bridge), Sender(bridge)
        before = time.time()
        for scheduler in (stopped, live):
            scheduler.send(b"airflow.scheduler_heartbeat:1|c")
        last_beat = time.time()
        for scheduler in (stopped, live):
            assert value(bridge, "airflow_scheduler_alive", sender=scheduler.name) == 1
            seen = value(bridge, "airflow_scheduler_last_heartbeat_timestamp_seconds",
                         sender=scheduler.name)
            assert seen is not None and before - 0.01 <= seen <= last_beat + 0.01
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # the live one beats on, the other is silent
            live.send(b"airflow.scheduler_heartbeat:1|c")
            time.sleep(0.1)
        assert value(bridge, "airflow_scheduler_alive", sender=stopped.name) == 0
        assert value(bridge, "airflow_scheduler_alive", sender=live.name) == 1
        stopped_at = value(bridge, "airflow_scheduler_last_heartbeat_timestamp_seconds",
                           sender=stopped.name)
        assert stopped_at is not None and stopped_at <= last_beat + 0.01
        deadline = time.monotonic() + 5  # then the heartbeat TTL takes it
        while value(bridge, "airflow_scheduler_alive", sender=stopped.name) is not None:
            live.send(b"airflow.scheduler_heartbeat:1|c")
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert value(bridge, "airflow_scheduler_alive", sender=live.name) == 1


def test_liveness_names_cannot_be_taken_by_statsd_traffic(bridge: Bridge) -> None:
    Sender(bridge).send(b"airflow.scheduler_heartbeat:1|c", b"airflow_scheduler_alive:5|g")
    text = bridge.scrape_text()
    assert text.count("# TYPE airflow_scheduler_alive ") == 1
    assert "airflow_scheduler_alive 5" not in text
