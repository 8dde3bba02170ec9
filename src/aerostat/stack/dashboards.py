"""The Grafana dashboards, one function each. Every panel says what it shows
and what to do when it looks wrong; every query keeps to the deployments
chosen in the ``deployment`` variable (aerostat's own metrics, which carry
no deployment, are the one exception).

The math follows what the metrics are: counters only through rate() or
increase(), histograms through histogram_quantile() over buckets summed per
``le``, gauges that aerostat already combined over processes as they are.
"""

from __future__ import annotations

from aerostat.stack.grafana import (
    DashboardSpec,
    Panel,
    Row,
    Target,
    Variable,
    above,
    at_least_one,
    bad_from,
    increase,
    quantile,
    rate,
    select,
    stat_panel,
    table_panel,
    timeseries_panel,
    up_down_mapping,
)
from aerostat.stack.rules import COMPONENTS, Component

DEPLOYMENT = "{{deployment}}"
PER_SECOND = "cps"
SECONDS = "s"
RATIO = "percentunit"
IN_DAG = 'dag_id=~"$dag_id"'
IN_TASK = 'task_id=~"$task_id"'
IN_POOL = 'pool=~"$pool"'
# the series without the label, should Airflow's untagged twin of a metric
# still come through, is not a file (or a state)
HAS_FILE = 'file!=""'
HAS_STATE = 'state!=""'
RETRIED = 'state="up_for_retry"'

SCHEDULER, DAG_PROCESSOR, TRIGGERER = COMPONENTS


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:]  # str.capitalize() would lower "DAG"


def _alive_stat(component: Component, width: int = 4) -> Panel:
    return stat_panel(
        f"{_sentence_case(component.plural)} alive",
        f"{_sentence_case(component.name)} processes of each deployment that sent a heartbeat "
        f"within the last 2 minutes (each process has its own heartbeat series, so one "
        f"stopped {component.name} among several shows here). Fewer than you run: find the "
        f"stopped process in 'Heartbeats per {component.name} process' and read its log. "
        f"No value: aerostat has heard no {component.name} of this deployment for over 10 "
        f"minutes, or the deployment runs none.",
        [Target(select(component.alive), DEPLOYMENT)],
        thresholds=at_least_one(), width=width,
    )


def _heartbeats(component: Component, width: int = 12) -> Panel:
    return timeseries_panel(
        f"Heartbeats per {component.name} process",
        f"Heartbeats a second sent by each {component.name} process, named by the address "
        f"it sends from. A line that drops to zero is a process that stopped; a restarted "
        f"process comes back as a new line (new address) and its old line ends 10 minutes "
        f"later. Lines that thin out without stopping point to a {component.name} blocked "
        f"in long work between heartbeats: check its CPU and its log.",
        [Target(f"sum by (deployment, sender) ({rate(component.heartbeat)})",
               "{{deployment}} {{sender}}")],
        unit=PER_SECOND, width=width,
    )


def _aerostat_row() -> Row:
    aerostat = 'job="aerostat"'
    return Row("aerostat (the exporter)", [
        stat_panel(
            "aerostat up",
            "Whether Prometheus could scrape each aerostat instance. Down: every Airflow "
            "panel goes blank and the Airflow alerts may fire as a consequence; check the "
            "aerostat process and its log.",
            [Target(f"up{{{aerostat}}}", "{{instance}}")],
            thresholds=at_least_one(), mappings=[up_down_mapping()], width=4,
        ),
        stat_panel(
            "Series held",
            "Series aerostat holds now. It grows with DAGs, tasks and pools; past "
            "--statsd.max-series new series are refused (see the next panel). Growth without "
            "new DAGs points to a label with unbounded values.",
            [Target(f"sum by (instance) (aerostat_series{{{aerostat}}})", "{{instance}}")],
            width=4,
        ),
        timeseries_panel(
            "StatsD lines received",
            "StatsD lines a second that aerostat read, all deployments together. A drop to "
            "zero while Airflow runs means its traffic no longer arrives: check [metrics] "
            "statsd_host and the UDP path.",
            [Target(f"sum by (instance) (rate(statsd_exporter_lines_total{{{aerostat}}}"
                   "[$__rate_interval]))", "{{instance}}")],
            unit=PER_SECOND, width=8,
        ),
        timeseries_panel(
            "Losses",
            "Datagrams the kernel dropped because aerostat did not read them in time, "
            "series refused at --statsd.max-series, lines refused as malformed (by "
            "reason) and batches skipped for a bug in aerostat. Anything but zero means "
            "missing data: raise the receive buffer (net.core.rmem_max, "
            "--statsd.read-buffer) for drops, the series limit or a TTL for refusals; "
            "malformed lines come from a sender; skipped batches are logged with their "
            "traceback, report them.",
            [
                Target(f"sum by (instance) (rate(aerostat_udp_kernel_drops_total{{{aerostat}}}"
                      "[$__rate_interval]))", "{{instance}} kernel drops"),
                Target(f"sum by (instance) (rate(aerostat_series_refused_total{{{aerostat}}}"
                      "[$__rate_interval]))", "{{instance}} series refused"),
                Target("sum by (instance, reason) (rate(statsd_exporter_sample_errors_total"
                      f"{{{aerostat}}}[$__rate_interval]))", "{{instance}} {{reason}}"),
                Target(f"sum by (instance) (rate(aerostat_internal_errors_total{{{aerostat}}}"
                      "[$__rate_interval]))", "{{instance}} skipped batches"),
            ],
            unit=PER_SECOND, width=8,
        ),
    ])


def overview() -> DashboardSpec:
    return DashboardSpec(
        "aerostat-airflow-overview", "Airflow / Overview",
        "Health of every Airflow component, task and DAG-run outcomes, per deployment.",
        [
            Row("Components", [
                *(_alive_stat(component) for component in COMPONENTS),
                stat_panel(
                    "DAG import errors",
                    "DAG files that fail to import, per deployment. Above zero the DAGs in "
                    "those files are missing or stale: list the errors with `airflow dags "
                    "list-import-errors` (details in the DAG processing dashboard).",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_import_errors')})", DEPLOYMENT)],
                    thresholds=bad_from(1),
                ),
                stat_panel(
                    "Task failure ratio (15 min)",
                    "Share of the task instances finished over the past 15 minutes that "
                    "failed (recorded rule deployment:airflow_ti_failure_ratio:rate15m). "
                    "High: find the failing DAGs in the DAGs and tasks dashboard; many at "
                    "once point to a shared cause such as a connection or a worker.",
                    [Target(select("deployment:airflow_ti_failure_ratio:rate15m"), DEPLOYMENT)],
                    unit=RATIO, thresholds=above(0.05, 0.1),
                ),
                stat_panel(
                    "DAG runs running",
                    "DAG runs in the running state now, as the scheduler counts them in the "
                    "database. Steadily rising with few tasks running: runs wait on "
                    "something (pools, sensors, max_active_tasks).",
                    [Target(f"max by (deployment) "
                           f"({select('airflow_scheduler_dagruns_running')})", DEPLOYMENT)],
                ),
            ]),
            Row("Tasks", [
                timeseries_panel(
                    "Task instances finished",
                    "Task instances that succeeded and failed, a second. Failures rising "
                    "while successes hold: a few DAGs break; both falling: the scheduler or "
                    "the workers stall (see the Scheduler and Pools dashboards).",
                    [Target(f"sum by (deployment) ({rate('airflow_ti_successes_total')})",
                           "{{deployment}} success"),
                     Target(f"sum by (deployment) ({rate('airflow_ti_failures_total')})",
                           "{{deployment}} failed")],
                    unit=PER_SECOND,
                ),
                timeseries_panel(
                    "Task failure ratio",
                    "Share of finished task instances that failed over 15-minute windows. "
                    "The alert AirflowTaskFailureRatioHigh starts at 10 % with at least 5 "
                    "failures; a step up at one moment usually has one cause: compare with "
                    "deployments of DAGs and infrastructure changes.",
                    [Target(select("deployment:airflow_ti_failure_ratio:rate15m"), DEPLOYMENT)],
                    unit=RATIO,
                ),
                timeseries_panel(
                    "Task instances by state",
                    "Task instances scheduled, queued, running and deferred now (from the "
                    "database, every 30 s). Queued growing while running stays flat: the "
                    "executor or its workers do not take tasks; scheduled growing: pools or "
                    "concurrency limits hold them.",
                    [Target(f"sum by (deployment) ({select('airflow_ti_' + state)})",
                           f"{{{{deployment}}}} {state}")
                     for state in ("scheduled", "queued", "running", "deferred")],
                ),
                timeseries_panel(
                    "Task instances killed (past hour)",
                    "Task instances the scheduler killed because their process stopped "
                    "heartbeating, and those found killed from outside Airflow, counted over "
                    "the past hour. Not zero: workers die, run out of memory or lose the "
                    "database; check worker restarts around then.",
                    [Target(f"sum by (deployment) ("
                           f"{increase('airflow_task_instances_without_heartbeats_killed_total')}"
                           ")", "{{deployment}} without heartbeat"),
                     Target(f"sum by (deployment) "
                           f"({increase('airflow_scheduler_tasks_killed_externally_total')})",
                           "{{deployment}} externally")],
                ),
            ]),
            Row("DAG runs", [
                timeseries_panel(
                    "DAG runs finished (past hour)",
                    "DAG runs that ended in the past hour, by final state. Failed runs rising: "
                    "see which DAGs in the DAGs and tasks dashboard.",
                    [Target(f"sum by (deployment, state) "
                           f"({increase('airflow_dagrun_duration_seconds_count')})",
                           "{{deployment}} {{state}}")],
                    width=8,
                ),
                timeseries_panel(
                    "DAG run duration, 95th percentile",
                    "95 % of the successful DAG runs that ended took at most this long (all "
                    "DAGs together; per DAG in the DAGs and tasks dashboard). A jump with "
                    "unchanged DAGs: slower workers, pools or external systems.",
                    [Target(quantile(0.95, "airflow_dagrun_duration_seconds", "deployment",
                                    'state="success"'), DEPLOYMENT)],
                    unit=SECONDS, width=8,
                ),
                timeseries_panel(
                    "DAG run schedule delay, 95th percentile",
                    "How late DAG runs start after their scheduled time (95th percentile). "
                    "Growing: the scheduler falls behind; check its loop duration and "
                    "critical section in the Scheduler dashboard.",
                    [Target(quantile(0.95, "airflow_dagrun_schedule_delay_seconds",
                                    "deployment"), DEPLOYMENT)],
                    unit=SECONDS, width=8,
                ),
            ]),
            _aerostat_row(),
        ],
    )


def scheduler() -> DashboardSpec:
    loop, section = ("airflow_scheduler_scheduler_loop_duration_seconds",
                     "airflow_scheduler_critical_section_duration_seconds")
    return DashboardSpec(
        "aerostat-airflow-scheduler", "Airflow / Scheduler",
        "Scheduler processes, their loop and critical section, and the executor slots they "
        "hold.",
        [
            Row("Liveness", [_alive_stat(SCHEDULER, width=6), _heartbeats(SCHEDULER, width=18)]),
            Row("Scheduling loop", [
                timeseries_panel(
                    "Scheduler loop duration",
                    "Time one pass of the scheduler loop takes (median and 95th percentile "
                    "over all schedulers of the deployment). Seconds rather than "
                    "milliseconds: the scheduler falls behind; look at the critical section "
                    "and at database latency.",
                    [Target(quantile(0.5, loop, "deployment"), "{{deployment}} p50"),
                     Target(quantile(0.95, loop, "deployment"), "{{deployment}} p95")],
                    unit=SECONDS,
                ),
                timeseries_panel(
                    "Critical section duration",
                    "Time the scheduler holds the lock that queues tasks (95th percentile), "
                    "and the part of it spent in the database query. A slow query: tune the "
                    "database; a long section with a fast query: too many tasks examined per "
                    "loop ([scheduler] max_tis_per_query).",
                    [Target(quantile(0.95, section, "deployment"), "{{deployment}} section p95"),
                     Target(quantile(0.95, "airflow_scheduler_critical_section_query_duration"
                                    "_seconds", "deployment"), "{{deployment}} query p95")],
                    unit=SECONDS,
                ),
                timeseries_panel(
                    "Critical section busy",
                    "Times a second a scheduler found the critical section held by another "
                    "one. Frequent with several schedulers: they queue tasks one at a time, "
                    "so more schedulers no longer add throughput.",
                    [Target(f"sum by (deployment) "
                           f"({rate('airflow_scheduler_critical_section_busy_total')})",
                           DEPLOYMENT)],
                    unit=PER_SECOND, width=8,
                ),
                timeseries_panel(
                    "Executable and starving tasks",
                    "Task instances the last loop could queue (executable, summed over "
                    "schedulers) and those that could not get a pool slot (starving). "
                    "Starving above zero for long: a pool is too small (see Pools and "
                    "executor).",
                    [Target(f"sum by (deployment) ({select('airflow_scheduler_tasks_executable')})",
                           "{{deployment}} executable"),
                     Target(f"max by (deployment) ({select('airflow_scheduler_tasks_starving')})",
                           "{{deployment}} starving")],
                    width=8,
                ),
                timeseries_panel(
                    "First task scheduling delay, 95th percentile",
                    "Time from a DAG run's start to its first task being scheduled (95th "
                    "percentile). Growing: the scheduler is slow to pick up new runs.",
                    [Target(quantile(0.95, "airflow_dagrun_first_task_scheduling_delay_seconds",
                                    "deployment"), DEPLOYMENT)],
                    unit=SECONDS, width=8,
                ),
            ]),
            Row("Executor (summed over schedulers)", [
                timeseries_panel(
                    "Executor slots",
                    "Open slots, queued and running tasks of the executors, summed over all "
                    "live schedulers (each runs its own executor; aerostat adds them up). "
                    "Open slots at zero with tasks queued: raise [core] parallelism or add "
                    "workers.",
                    [Target(select(f"deployment:airflow_executor_{gauge}:sum"),
                           f"{{{{deployment}}}} {gauge.replace('_', ' ')}")
                     for gauge in ("open_slots", "queued_tasks", "running_tasks")],
                ),
                timeseries_panel(
                    "Running tasks per scheduler",
                    "Tasks each scheduler's executor runs. One scheduler far above the others "
                    "is normal for a while after a restart (adoption); one at zero for long "
                    "while others are busy may be stuck.",
                    [Target(f"sum by (deployment, sender) "
                           f"({select('airflow_executor_running_tasks_by_sender')})",
                           "{{deployment}} {{sender}}")],
                ),
            ]),
            Row("Jobs and clean-up (past hour)", [
                timeseries_panel(
                    "Orphaned task instances",
                    "Task instances whose scheduler had died, cleared or adopted by another "
                    "scheduler in the past hour. Frequent: schedulers restart; find out why "
                    "in the Liveness row.",
                    [Target(f"sum by (deployment) "
                           f"({increase('airflow_scheduler_orphaned_tasks_cleared_total')})",
                           "{{deployment}} cleared"),
                     Target(f"sum by (deployment) "
                           f"({increase('airflow_scheduler_orphaned_tasks_adopted_total')})",
                           "{{deployment}} adopted")],
                    width=8,
                ),
                timeseries_panel(
                    "Job heartbeat failures",
                    "Times an Airflow job (scheduler, triggerer, task runner) failed to write "
                    "its heartbeat to the database in the past hour. Not zero: the database is "
                    "overloaded or unreachable.",
                    [Target(f"sum by (deployment) "
                           f"({increase('airflow_job_heartbeat_failure_total')})", DEPLOYMENT)],
                    width=8,
                ),
                timeseries_panel(
                    "Jobs started and ended",
                    "Airflow jobs (scheduler, triggerer, DAG processor, task runners) started "
                    "and ended in the past hour. Starts without ends, or many short jobs: "
                    "processes crash and restart.",
                    [Target(f"sum by (deployment) ({increase('airflow_job_start_total')})",
                           "{{deployment}} started"),
                     Target(f"sum by (deployment) ({increase('airflow_job_end_total')})",
                           "{{deployment}} ended")],
                    width=8,
                ),
            ]),
        ],
    )


def pools_and_executor() -> DashboardSpec:
    def per_pool(gauge: str) -> Target:
        return Target(f"max by (deployment, pool) ({select('airflow_pool_' + gauge, IN_POOL)})",
                     "{{deployment}} {{pool}}")

    return DashboardSpec(
        "aerostat-airflow-pools", "Airflow / Pools and executor",
        "Pool slots, executor capacity and task queues.",
        [
            Row("Pools", [
                table_panel(
                    "Pools now",
                    "Slots of each pool now: open, running, queued, scheduled and deferred "
                    "(from the database), and the tasks starving for a slot. Open at zero "
                    "with starving tasks: the pool is too small for what runs in it; "
                    "deferred slots count only when the pool includes deferred tasks.",
                    [(header, per_pool(gauge)) for header, gauge in (
                        ("open", "open_slots"), ("running", "running_slots"),
                        ("queued", "queued_slots"), ("scheduled", "scheduled_slots"),
                        ("deferred", "deferred_slots"), ("starving", "starving_tasks"))],
                    sort_by="starving",
                ),
                timeseries_panel(
                    "Open slots per pool",
                    "Free slots of each pool. A pool that sits at zero queues its tasks "
                    "behind each other: give it more slots or fewer tasks.",
                    [per_pool("open_slots")],
                ),
                timeseries_panel(
                    "Starving tasks per pool",
                    "Tasks that could run but wait for a slot in their pool. Above zero for "
                    "more than a few minutes raises AirflowPoolStarving.",
                    [per_pool("starving_tasks")],
                ),
                timeseries_panel(
                    "Running slots per pool",
                    "Slots taken by running tasks. Compare with open slots: a pool full of "
                    "long tasks starves the short ones.",
                    [per_pool("running_slots")], width=8,
                ),
                timeseries_panel(
                    "Queued slots per pool",
                    "Slots of tasks handed to the executor but not yet running. Growing: "
                    "workers do not pick tasks up (see Executor below).",
                    [per_pool("queued_slots")], width=8,
                ),
                timeseries_panel(
                    "Deferred slots per pool",
                    "Slots held by deferred tasks (only for pools that count them). High: "
                    "triggers wait long; see the Triggerer dashboard.",
                    [per_pool("deferred_slots")], width=8,
                ),
            ]),
            Row("Executor", [
                timeseries_panel(
                    "Executor slots",
                    "Open slots, queued and running tasks of the executors, summed over "
                    "schedulers and executors. Queued rising while open slots stay at zero: "
                    "the executor is full; raise [core] parallelism or add workers.",
                    [Target(select(f"deployment:airflow_executor_{gauge}:sum"),
                           f"{{{{deployment}}}} {gauge.replace('_', ' ')}")
                     for gauge in ("open_slots", "queued_tasks", "running_tasks")],
                ),
                timeseries_panel(
                    "Executor use",
                    "Running tasks as a share of the executors' slots (running + open). Near "
                    "100 % for long: the executor limits throughput.",
                    [Target(f"{select('deployment:airflow_executor_running_tasks:sum')}\n/ "
                           f"({select('deployment:airflow_executor_running_tasks:sum')}"
                           f" + {select('deployment:airflow_executor_open_slots:sum')} > 0)",
                           DEPLOYMENT)],
                    unit=RATIO,
                ),
                timeseries_panel(
                    "Open slots per scheduler",
                    "Each scheduler's own executor slots. One at zero while the others have "
                    "room: tasks are unevenly spread, or that executor's workers are gone.",
                    [Target(f"sum by (deployment, sender) "
                           f"({select('airflow_executor_open_slots_by_sender')})",
                           "{{deployment}} {{sender}}")],
                ),
                timeseries_panel(
                    "Queued tasks per scheduler",
                    "Tasks each scheduler's executor has queued and not yet started. Growing "
                    "on one scheduler only: its workers or its broker connection fail.",
                    [Target(f"sum by (deployment, sender) "
                           f"({select('airflow_executor_queued_tasks_by_sender')})",
                           "{{deployment}} {{sender}}")],
                ),
            ]),
            Row("Queues", [
                timeseries_panel(
                    "Queued task instances per queue",
                    "Task instances in the queued state, per executor queue (Celery queue). "
                    "One queue growing: no worker listens to it, or too few.",
                    [Target(f"sum by (deployment, queue) ({select('airflow_ti_queued')})",
                           "{{deployment}} {{queue}}")],
                    width=8,
                ),
                timeseries_panel(
                    "Running task instances per queue",
                    "Task instances running, per queue. Flat at a round number: the workers "
                    "of that queue are at their concurrency limit.",
                    [Target(f"sum by (deployment, queue) ({select('airflow_ti_running')})",
                           "{{deployment}} {{queue}}")],
                    width=8,
                ),
                timeseries_panel(
                    "Time queued, 95th percentile per queue",
                    "How long task instances waited in the queued state before starting (95th "
                    "percentile). Minutes: workers are missing or slow to start (pods "
                    "pending, Celery workers busy).",
                    [Target(quantile(0.95, "airflow_task_queued_duration_seconds",
                                    "deployment, queue"), "{{deployment}} {{queue}}")],
                    unit=SECONDS, width=8,
                ),
            ]),
        ],
        drill_down=[Variable("pool", "Pool", "airflow_pool_open_slots")],
    )


def dag_processing() -> DashboardSpec:
    return DashboardSpec(
        "aerostat-airflow-dag-processing", "Airflow / DAG processing",
        "DAG processors: DAG count, import errors, parse times and files not parsed lately.",
        [
            Row("Overview", [
                _alive_stat(DAG_PROCESSOR),
                stat_panel(
                    "DAGs",
                    "DAGs loaded from the DAG files, summed over DAG processors. A sudden "
                    "drop: files fail to import or a bundle is gone.",
                    [Target(f"sum by (deployment) ({select('airflow_dagbag_size')})", DEPLOYMENT)],
                ),
                stat_panel(
                    "Import errors",
                    "DAG files that fail to import. Above zero: list them with `airflow dags "
                    "list-import-errors` and fix them.",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_import_errors')})", DEPLOYMENT)],
                    thresholds=bad_from(1),
                ),
                stat_panel(
                    "Files waiting",
                    "DAG files queued for parsing. Stays high: the DAG processors cannot keep "
                    "up; add parsing processes ([dag_processor] parsing_processes) or DAG "
                    "processors.",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_file_path_queue_size')})",
                           DEPLOYMENT)],
                ),
                stat_panel(
                    "Oldest parse",
                    "Time since the least recently parsed DAG file was parsed. Above 10 "
                    "minutes raises AirflowDagFileNotParsed; the table below names the file.",
                    [Target(f"max by (deployment) (min by (deployment, file) ("
                           f"{select('airflow_dag_processing_last_run_seconds_ago', HAS_FILE)}"
                           f"))", DEPLOYMENT)],
                    unit=SECONDS, thresholds=above(300, 600),
                ),
                stat_panel(
                    "Total parse time",
                    "Time the last full pass over all DAG files took. Longer than "
                    "[dag_processor] min_file_process_interval (30 s by default): files are "
                    "parsed less often than configured.",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_total_parse_time_seconds')})",
                           DEPLOYMENT)],
                    unit=SECONDS,
                ),
            ]),
            Row("Parsing", [
                timeseries_panel(
                    "Total parse time",
                    "Time a full pass over all DAG files took, per deployment. A step up "
                    "follows a new slow DAG file: find it in 'Slowest files'.",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_total_parse_time_seconds')})",
                           DEPLOYMENT)],
                    unit=SECONDS, width=8,
                ),
                timeseries_panel(
                    "Files waiting to be parsed",
                    "DAG files queued for parsing. A queue that never empties: parsing cannot "
                    "keep up.",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_file_path_queue_size')})",
                           DEPLOYMENT)],
                    width=8,
                ),
                timeseries_panel(
                    "Parsing processes",
                    "Parsing processes running now. Stuck at [dag_processor] "
                    "parsing_processes with a growing queue: more processes would help.",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_processes')})", DEPLOYMENT)],
                    width=8,
                ),
                timeseries_panel(
                    "Slowest files, 95th percentile parse time",
                    "The ten DAG files that take longest to parse. Seconds per file: move "
                    "heavy imports and top-level code (database calls, Variable.get) into "
                    "tasks.",
                    [Target("topk(10, " + quantile(0.95, "airflow_dag_processing_last_duration"
                                                  "_seconds", "deployment, file", 'file!=""')
                           + ")", "{{deployment}} {{file}}")],
                    unit=SECONDS,
                ),
                table_panel(
                    "Files by time since last parse",
                    "Each DAG file and how long ago it was last parsed, oldest first. A file "
                    "far above the others: its parse times out or hangs; read the DAG "
                    "processor log for it.",
                    [("since last parse", Target(
                        f"min by (deployment, file) ("
                        f"{select('airflow_dag_processing_last_run_seconds_ago', HAS_FILE)})"
                    ))],
                    unit=SECONDS, width=12, sort_by="since last parse",
                ),
                _heartbeats(DAG_PROCESSOR),
            ]),
            Row("Errors and callbacks (past hour)", [
                timeseries_panel(
                    "Import errors",
                    "DAG files that fail to import, over time: a step marks the change that "
                    "broke (or fixed) them.",
                    [Target(f"sum by (deployment) "
                           f"({select('airflow_dag_processing_import_errors')})", DEPLOYMENT)],
                    width=6,
                ),
                timeseries_panel(
                    "Parse timeouts",
                    "DAG file parses killed for taking longer than [dag_processor] "
                    "dag_file_processor_timeout in the past hour. Not zero: a file is too "
                    "slow to parse; find it in 'Slowest files'.",
                    [Target(f"sum by (deployment) "
                           f"({increase('airflow_dag_processing_processor_timeouts_total')})",
                           DEPLOYMENT)],
                    width=6,
                ),
                timeseries_panel(
                    "Callback exceptions per DAG",
                    "Exceptions raised by DAG callbacks (on_success_callback, "
                    "on_failure_callback) in the past hour, per DAG. Not zero: a "
                    "notification is lost; the traceback is in the DAG processor log.",
                    [Target(f"sum by (deployment, dag_id) "
                           f"({increase('airflow_dag_callback_exceptions_total')})",
                           "{{deployment}} {{dag_id}}")],
                    width=6,
                ),
                timeseries_panel(
                    "Callbacks run",
                    "DAG processor passes that only ran callbacks, and callbacks run besides "
                    "parsing, in the past hour. A burst follows many failures or SLA misses.",
                    [Target(f"sum by (deployment) "
                           f"({increase('airflow_dag_processing_callback_only_count_total')})",
                           "{{deployment}} callback only"),
                     Target(f"sum by (deployment) "
                           f"({increase('airflow_dag_processing_other_callback_count_total')})",
                           "{{deployment}} with parsing")],
                    width=6,
                ),
            ]),
        ],
    )


def dags_and_tasks() -> DashboardSpec:
    in_dag_task = (IN_DAG, IN_TASK)
    return DashboardSpec(
        "aerostat-airflow-dags", "Airflow / DAGs and tasks",
        "Per DAG and task: outcomes, durations, retries, and the delays before they run. "
        "Pick DAGs and tasks in the variables to drill down.",
        [
            Row("DAG runs", [
                timeseries_panel(
                    "DAG runs finished (past hour)",
                    "DAG runs that ended in the past hour, per DAG and final state. A DAG "
                    "whose failed line rises: open its last run in the Airflow UI.",
                    [Target(f"sum by (deployment, dag_id, state) "
                           f"({increase('airflow_dagrun_duration_seconds_count', IN_DAG)})",
                           "{{deployment}} {{dag_id}} {{state}}")],
                ),
                timeseries_panel(
                    "DAG run duration",
                    "Duration of successful DAG runs per DAG, median and 95th percentile. A "
                    "DAG that slows down without changes: its tasks wait longer (see queued "
                    "and scheduled delays below) or its external systems got slower.",
                    [Target(quantile(q, "airflow_dagrun_duration_seconds", "deployment, dag_id",
                                    IN_DAG, 'state="success"'),
                           f"{{{{deployment}}}} {{{{dag_id}}}} {label}")
                     for q, label in ((0.5, "p50"), (0.95, "p95"))],
                    unit=SECONDS,
                ),
                timeseries_panel(
                    "Schedule delay, 95th percentile",
                    "How late each DAG's runs start after their scheduled time. One DAG "
                    "late: its max_active_runs or a pool holds it; all DAGs late: the "
                    "scheduler falls behind.",
                    [Target(quantile(0.95, "airflow_dagrun_schedule_delay_seconds",
                                    "deployment, dag_id", IN_DAG), "{{deployment}} {{dag_id}}")],
                    unit=SECONDS, width=8,
                ),
                timeseries_panel(
                    "First task scheduling delay, 95th percentile",
                    "Time from a run's start to its first task being scheduled, per DAG. "
                    "Long: the scheduler is slow to examine this DAG's runs (heavy DAG, many "
                    "runs).",
                    [Target(quantile(0.95, "airflow_dagrun_first_task_scheduling_delay_seconds",
                                    "deployment, dag_id", IN_DAG), "{{deployment}} {{dag_id}}")],
                    unit=SECONDS, width=8,
                ),
                timeseries_panel(
                    "Dependency check time, 95th percentile",
                    "Time the scheduler spends checking the dependencies of a DAG run's "
                    "tasks. Seconds: the DAG has very many tasks or complex trigger rules.",
                    [Target(quantile(0.95, "airflow_dagrun_dependency_check_seconds",
                                    "deployment, dag_id", IN_DAG), "{{deployment}} {{dag_id}}")],
                    unit=SECONDS, width=8,
                ),
            ]),
            Row("Tasks", [
                table_panel(
                    "Failing tasks over the time range",
                    "The 20 tasks with the most failed attempts (final failures, not "
                    "retries) over the dashboard's time range. Start with the top row: "
                    "its log in the Airflow UI says why.",
                    [("failures", Target(
                        "topk(20, sum by (deployment, dag_id, task_id) (" + increase(
                            "airflow_ti_finish_total", *in_dag_task, 'state="failed"',
                            window="$__range") + ")) > 0"))],
                    width=12, sort_by="failures",
                ),
                timeseries_panel(
                    "Task instances finished by state",
                    "Task instances of the chosen DAGs and tasks that finished, a second, by "
                    "state (success, failed, up_for_retry, skipped, upstream_failed, "
                    "deferred...). upstream_failed growing: an earlier task fails.",
                    [Target(f"sum by (deployment, state) "
                           f"({rate('airflow_ti_finish_total', *in_dag_task, HAS_STATE)})",
                           "{{deployment}} {{state}}")],
                    unit=PER_SECOND,
                ),
                timeseries_panel(
                    "Retries (past hour)",
                    "Attempts that failed and will be retried, per task, over the past hour. "
                    "A task that always retries before succeeding wastes time: make it "
                    "robust or raise its timeout.",
                    [Target(f"sum by (deployment, dag_id, task_id) "
                           f"({increase('airflow_ti_finish_total', *in_dag_task, RETRIED)})"
                           " > 0", "{{deployment}} {{dag_id}}.{{task_id}}")],
                ),
                timeseries_panel(
                    "Task duration",
                    "How long task instances ran, per task: median and 95th percentile. A "
                    "task whose 95th percentile drifts up: its data grows or an external "
                    "system slows down.",
                    [Target(quantile(q, "airflow_task_duration_seconds",
                                    "deployment, dag_id, task_id", *in_dag_task),
                           f"{{{{deployment}}}} {{{{dag_id}}}}.{{{{task_id}}}} {label}")
                     for q, label in ((0.5, "p50"), (0.95, "p95"))],
                    unit=SECONDS,
                ),
                timeseries_panel(
                    "Time queued, 95th percentile",
                    "Time task instances spent queued, waiting for a worker. Long for every "
                    "task: workers are missing; for one queue only: see the Pools and "
                    "executor dashboard.",
                    [Target(quantile(0.95, "airflow_task_queued_duration_seconds",
                                    "deployment, dag_id, task_id", *in_dag_task),
                           "{{deployment}} {{dag_id}}.{{task_id}}")],
                    unit=SECONDS, width=8,
                ),
                timeseries_panel(
                    "Time scheduled, 95th percentile",
                    "Time task instances spent scheduled before the scheduler queued them. "
                    "Long: pools, max_active_tasks or [core] parallelism hold them back.",
                    [Target(quantile(0.95, "airflow_task_scheduled_duration_seconds",
                                    "deployment, dag_id, task_id", *in_dag_task),
                           "{{deployment}} {{dag_id}}.{{task_id}}")],
                    unit=SECONDS, width=8,
                ),
                timeseries_panel(
                    "Operator outcomes (past hour)",
                    "Task instances that succeeded and failed per operator over the past "
                    "hour. One operator failing across DAGs: the system it talks to is down.",
                    [Target(f"sum by (deployment, operator) "
                           f"({increase('airflow_operator_failures_total')}) > 0",
                           "{{deployment}} {{operator}} failed"),
                     Target(f"sum by (deployment, operator) "
                           f"({increase('airflow_operator_successes_total')}) > 0",
                           "{{deployment}} {{operator}} success")],
                    width=8,
                ),
            ]),
            Row("Assets", [
                timeseries_panel(
                    "Asset updates (past hour)",
                    "Asset events recorded in the past hour. Zero while producers ran: the "
                    "producing tasks do not declare their outlets.",
                    [Target(f"sum by (deployment) ({increase('airflow_asset_updates_total')})",
                           DEPLOYMENT)],
                    width=8,
                ),
                timeseries_panel(
                    "DAG runs triggered by assets (past hour)",
                    "DAG runs created by asset events in the past hour. Fewer than asset "
                    "updates is normal when consumers wait on several assets.",
                    [Target(f"sum by (deployment) "
                           f"({increase('airflow_asset_triggered_dagruns_total')})",
                           DEPLOYMENT)],
                    width=8,
                ),
                timeseries_panel(
                    "Orphaned assets",
                    "Assets no DAG refers to any more. Growing: clean-up of removed DAGs is "
                    "due; harmless otherwise.",
                    [Target(f"max by (deployment) ({select('airflow_asset_orphaned')})",
                           DEPLOYMENT)],
                    width=8,
                ),
            ]),
        ],
        drill_down=[
            Variable("dag_id", "DAG", "airflow_task_duration_seconds_count"),
            Variable("task_id", "Task", "airflow_task_duration_seconds_count", (IN_DAG,)),
        ],
    )


def triggerer() -> DashboardSpec:
    return DashboardSpec(
        "aerostat-airflow-triggerer", "Airflow / Triggerer",
        "Triggerer processes, their capacity, and the triggers they run for deferred tasks.",
        [
            Row("Liveness", [_alive_stat(TRIGGERER, width=6), _heartbeats(TRIGGERER, width=18)]),
            Row("Capacity", [
                timeseries_panel(
                    "Triggers running per triggerer",
                    "Triggers each triggerer runs now. Uneven for long: triggers are only "
                    "assigned when a triggerer starts or has capacity; a restart rebalances.",
                    [Target(f"sum by (deployment, hostname) "
                           f"({select('airflow_triggers_running')})",
                           "{{deployment}} {{hostname}}")],
                    width=8,
                ),
                timeseries_panel(
                    "Capacity left per triggerer",
                    "Triggers each triggerer could still take. All at zero for 10 minutes "
                    "raises AirflowTriggererFull: add triggerers or raise [triggerer] "
                    "capacity.",
                    [Target(f"sum by (deployment, hostname) "
                           f"({select('airflow_triggerer_capacity_left')})",
                           "{{deployment}} {{hostname}}")],
                    width=8,
                ),
                timeseries_panel(
                    "Capacity used",
                    "Running triggers as a share of all triggerers' capacity. Near 100 %: "
                    "deferred tasks will soon wait for a triggerer.",
                    [Target(f"sum by (deployment) ({select('airflow_triggers_running')})\n/ "
                           f"(sum by (deployment) ({select('airflow_triggers_running')})"
                           f" + sum by (deployment) ({select('airflow_triggerer_capacity_left')})"
                           " > 0)", DEPLOYMENT)],
                    unit=RATIO, width=8,
                ),
            ]),
            Row("Triggers", [
                timeseries_panel(
                    "Triggers finished",
                    "Triggers that fired (succeeded) and failed, a second. Failures: the "
                    "deferred tasks fail with them; the triggerer log has the exception.",
                    [Target(f"sum by (deployment) ({rate('airflow_triggers_succeeded_total')})",
                           "{{deployment}} succeeded"),
                     Target(f"sum by (deployment) ({rate('airflow_triggers_failed_total')})",
                           "{{deployment}} failed")],
                    unit=PER_SECOND, width=8,
                ),
                timeseries_panel(
                    "Main thread blocked (past hour)",
                    "Times a trigger blocked the triggerer's event loop in the past hour. Not "
                    "zero: a trigger does blocking work (sleep, synchronous I/O) and delays "
                    "every other trigger on that triggerer; fix the trigger's code.",
                    [Target(f"sum by (deployment) "
                           f"({increase('airflow_triggers_blocked_main_thread_total')})",
                           DEPLOYMENT)],
                    width=8,
                ),
                timeseries_panel(
                    "Deferred task instances",
                    "Task instances waiting in the deferred state, and the pool slots they "
                    "hold. Growing while triggers run and succeed: more tasks defer than "
                    "finish, expected for long sensors.",
                    [Target(f"sum by (deployment) ({select('airflow_ti_deferred')})",
                           "{{deployment}} deferred tasks"),
                     Target(f"sum by (deployment) ({select('airflow_pool_deferred_slots')})",
                           "{{deployment}} deferred pool slots")],
                    width=8,
                ),
            ]),
        ],
    )


DASHBOARDS = {
    "airflow-overview": overview,
    "airflow-scheduler": scheduler,
    "airflow-pools-executor": pools_and_executor,
    "airflow-dag-processing": dag_processing,
    "airflow-dags-tasks": dags_and_tasks,
    "airflow-triggerer": triggerer,
}
