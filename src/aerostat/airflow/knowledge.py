"""What the catalog does not say and a good mapping needs: one name per
metric across releases, one label name per identifier, buckets that fit each
duration, and how to combine gauges that several processes report.

Each table is keyed by the canonical key of a metric: its catalog name with
identifier-only components removed (``executor.open_slots.{executor_class_name}``
→ ``executor.open_slots``) and ``{job_name}`` read as ``job``.
What each choice does for a user is in docs/airflow.md ("What the built-in
mapping does"); the comments below say why, where the catalog is silent.
"""

from __future__ import annotations

from aerostat.mapper import SenderPolicy

# one metric, two names across releases (3.0 renamed them) or two names for
# one measurement split by an identifier (the run's final state)
KEY_RENAMES: dict[str, tuple[str, dict[str, str]]] = {
    "zombies_killed": ("task_instances_without_heartbeats_killed", {}),
    "dataset.updates": ("asset.updates", {}),
    "dataset.triggered_dagruns": ("asset.triggered_dagruns", {}),
    "dataset.orphaned": ("asset.orphaned", {}),
    "dagrun.duration.success": ("dagrun.duration", {"state": "success"}),
    "dagrun.duration.failed": ("dagrun.duration", {"state": "failed"}),
    "edge_worker.{sysinfo_key}": ("edge_worker.sysinfo", {}),
    # Airflow names it with its own prefix inside (the wire doubles it):
    # airflow_io_load_filesystems_seconds, not airflow_airflow_io_...
    "airflow.io.load_filesystems": ("io.load_filesystems", {}),
}

HELP_OVERRIDES = {
    "dagrun.duration": "Seconds from the start to the end of a DAG run, by its final state.",
    "dag_processing.last_duration": "Seconds taken to parse one DAG file, by bundle and file.",
    "dag_processing.processes": (
        "DAG file processor processes started, less those Airflow counted down again "
        "(it decrements this counter; aerostat keeps the net value as a gauge)."
    ),
}

# identifiers and tags, whatever the release calls them, under one label
LABELS = {
    "pool_name": "pool",
    "executor_class_name": "executor",
    "operator_name": "operator",
    "task_type": "operator",
    "file_name": "file",
    "dag_file": "file",
    "bundle_name": "bundle",
}
# tags renamed only where the metric has no better source for the label:
# 2.x executor gauges call the executor "name"; file_path is the file when
# the metric has no file_name
LABELS_IF_ALONE = {"name": "executor", "file_path": "file"}

# regular expressions for identifiers inside a name component; the rest
# take a whole component ([^.]+)
VARIABLE_SYNTAX = {
    "job_name": "[a-z]*job[a-z]*",  # job, schedulerjobrunner (2.6+ sends no class names)
    "operator_name": ".+",  # operator_failures__PythonDecoratedOperator
    "task_type": ".+",
}
# 2.x to 3.2 put task-group ids (grp.task) and any dotted id into the name as
# they are, adding components: a name that no glob matches is tried again
# with the first of these identifiers taking the extra components
DOTTED_VARIABLES = (
    "task_id", "file_name", "dag_file", "hostname", "worker_name", "dag_id", "pool_name",
)

# buckets in seconds: task and run durations reach hours, scheduler internals
# take milliseconds, parsing and pod operations take seconds
LONG_BUCKETS = (
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0,
    1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
)
LOOP_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
)
PARSE_BUCKETS = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)
LONG_DURATIONS = frozenset({
    "task.duration", "task.queued_duration", "task.scheduled_duration",
    "dagrun.duration", "dagrun.schedule_delay", "dagrun.first_task_scheduling_delay",
    "dagrun.first_task_start_delay",
})
PARSE_PREFIXES = ("dag_processing.", "collect_db_dags", "kubernetes_executor.",
                  "connection_test.hook_duration")


def buckets_for(key: str) -> tuple[float, ...]:
    if key in LONG_DURATIONS:
        return LONG_BUCKETS
    if key.startswith(PARSE_PREFIXES):
        return PARSE_BUCKETS
    return LOOP_BUCKETS


# how long a silent process still counts: heartbeats stay visible (stopped)
# long enough for an alert on them to fire
HEARTBEAT_TTL = 600.0
# silent this long, a process reads 0 on its alive gauge: Airflow's own
# health check calls a scheduler unhealthy after the same 30 s
# ([scheduler] scheduler_health_check_threshold), six of its 5 s heartbeats
HEARTBEAT_SILENCE = 30.0
GAUGE_SENDER_TTL = 60.0

SENDERS: dict[str, SenderPolicy] = {
    # each scheduler runs its own executor: its slots are its share
    "executor.open_slots": SenderPolicy.SUM,
    "executor.queued_tasks": SenderPolicy.SUM,
    "executor.running_tasks": SenderPolicy.SUM,
    # tasks each scheduler's last loop made executable; starving tasks are
    # seen by every scheduler alike
    "scheduler.tasks.executable": SenderPolicy.SUM,
    "scheduler.tasks.starving": SenderPolicy.MAX,
    "pool.starving_tasks": SenderPolicy.MAX,
    # one database, read by every scheduler at different instants
    "pool.open_slots": SenderPolicy.STICKY,
    "pool.queued_slots": SenderPolicy.STICKY,
    "pool.running_slots": SenderPolicy.STICKY,
    "pool.deferred_slots": SenderPolicy.STICKY,
    "pool.scheduled_slots": SenderPolicy.STICKY,
    "ti.scheduled": SenderPolicy.STICKY,
    "ti.queued": SenderPolicy.STICKY,
    "ti.running": SenderPolicy.STICKY,
    "ti.deferred": SenderPolicy.STICKY,
    "ti.awaiting_input": SenderPolicy.STICKY,
    "scheduler.dagruns.running": SenderPolicy.STICKY,
    "connection_test.active": SenderPolicy.STICKY,
    "connection_test.pending": SenderPolicy.STICKY,
    "asset.orphaned": SenderPolicy.STICKY,
    # each DAG processor totals the files it parses (AIRFLOW-774, one level up)
    "dagbag_size": SenderPolicy.SUM,
    "dag_processing.import_errors": SenderPolicy.SUM,
    "dag_processing.total_parse_time": SenderPolicy.SUM,
    "dag_processing.file_path_queue_size": SenderPolicy.SUM,
    "dag_processing.processes": SenderPolicy.SUM,
    "dag_processing.last_run.seconds_ago": SenderPolicy.MIN,
    # per process: one series each
    "scheduler.dag_bag.cache_size": SenderPolicy.SEPARATE,
    "api_server.dag_bag.cache_size": SenderPolicy.SEPARATE,
    "kubernetes_executor.pod_creation_batch_size": SenderPolicy.SEPARATE,
    "scheduler_heartbeat": SenderPolicy.SEPARATE,
    "dag_processor_heartbeat": SenderPolicy.SEPARATE,
    "triggerer_heartbeat": SenderPolicy.SEPARATE,
}
HEARTBEATS = frozenset({"scheduler_heartbeat", "dag_processor_heartbeat", "triggerer_heartbeat"})

# a counter Airflow also decrements (incr when a processor starts, decr when
# it ends): statsd_exporter refuses the decrements; a gauge is what it means
COUNTERS_AS_GAUGES = frozenset({"dag_processing.processes"})

# gauges in seconds whose names do not say so
UNIT_SUFFIXES = {"dag_processing.total_parse_time": "_seconds"}

# 3.2+ passes seconds to timing(), which sends them as milliseconds
# (apache/airflow#60325's re-enabled code); the dotted form of 3.2+ has two
# identifiers (bundle, file), 2.x's one, so the shape tells the release
SECONDS_ON_MS_WIRE = {"dag_processing.last_duration.{bundle_name}.{file_name}"}

# 3.3.2 sends this dotted name twice per observation (an explicit call, then
# the registry's legacy name): the second of two identical lines goes
REPEATED_LEGACY = frozenset({"dagrun.first_task_scheduling_delay"})

# gauges each DAG processor totals over the files it parses: summed over
# processors that parse different bundles, once over replicas of the same
# bundles (which report the same totals); a processor's bundles are learnt
# from the metrics that name the bundle of a file it parsed
SUMMED_OVER_PARTITIONS = frozenset({
    "dagbag_size", "dag_processing.import_errors", "dag_processing.total_parse_time",
    "dag_processing.file_path_queue_size",
})
# Airflow 3.x's DAG processor replaces a file's stats when it only ran the
# file's callbacks, with no DAGs and no import errors in them (3.3.2,
# dag_processing/manager.py, process_parse_results), and the totals of the
# parse loop that follows count that file as empty: the DAG count dips for
# one loop (about 30 s) after a task's callback ran. Such a loop is told by
# the counter sent for each callback-only run before the totals.
CALLBACK_ONLY_RUN = "dag_processing.callback_only_count"
ZEROED_BY_CALLBACK_ONLY_RUNS = frozenset({"dagbag_size", "dag_processing.import_errors"})
BUNDLE_SOURCES = frozenset({"dag_processing.last_duration", "dag_processing.last_run.seconds_ago"})
