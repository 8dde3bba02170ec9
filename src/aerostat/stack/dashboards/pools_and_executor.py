"""Pools and the executor: slots, queues, starvation."""

from __future__ import annotations

from aerostat.stack.dashboards.common import (
    DEPLOYMENT,
    IN_POOL,
    RATIO,
    SECONDS,
)
from aerostat.stack.grafana import (
    DashboardSpec,
    Row,
    Target,
    Variable,
    quantile,
    select,
    table_panel,
    timeseries_panel,
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
                    "pending, Celery workers busy). Only executors with a queue (Celery, "
                    "Kubernetes, Edge) send it: empty with the LocalExecutor.",
                    [Target(quantile(0.95, "airflow_task_queued_duration_seconds",
                                    "deployment, queue"), "{{deployment}} {{queue}}")],
                    unit=SECONDS, width=8,
                ),
            ]),
        ],
        drill_down=[Variable("pool", "Pool", "airflow_pool_open_slots")],
    )
