"""The scheduler: its loop, its heartbeats, what it queues."""

from __future__ import annotations

from aerostat.stack.dashboards.common import (
    DEPLOYMENT,
    PER_SECOND,
    SCHEDULER,
    SECONDS,
    _alive_stat,
    _heartbeats,
    _processes,
)
from aerostat.stack.grafana import (
    DashboardSpec,
    Row,
    Target,
    increase,
    quantile,
    rate,
    select,
    timeseries_panel,
)


def scheduler() -> DashboardSpec:
    loop, section = ("airflow_scheduler_scheduler_loop_duration_seconds",
                     "airflow_scheduler_critical_section_duration_seconds")
    return DashboardSpec(
        "aerostat-airflow-scheduler", "Airflow / Scheduler",
        "Scheduler processes, their loop and critical section, and the executor slots they "
        "hold.",
        [
            Row("Liveness", [_alive_stat(SCHEDULER, width=6), _processes(SCHEDULER),
                             _heartbeats(SCHEDULER)]),
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
