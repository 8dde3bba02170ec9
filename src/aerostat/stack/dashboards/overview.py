"""The overview: is Airflow healthy, in one screen."""

from __future__ import annotations

from aerostat.stack.dashboards.common import (
    DEPLOYMENT,
    PER_SECOND,
    RATIO,
    SECONDS,
    _aerostat_row,
    _alive_stat,
    or_zero_per_deployment,
)
from aerostat.stack.grafana import (
    DashboardSpec,
    Row,
    Target,
    above,
    bad_from,
    increase,
    quantile,
    rate,
    select,
    stat_panel,
    timeseries_panel,
)
from aerostat.stack.rules import COMPONENTS


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
                    [Target(or_zero_per_deployment(
                        "sum by (deployment) ("
                        f"{increase('airflow_task_instances_without_heartbeats_killed_total')})"),
                        "{{deployment}} without heartbeat"),
                     Target(or_zero_per_deployment(
                         "sum by (deployment) "
                         f"({increase('airflow_scheduler_tasks_killed_externally_total')})"),
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
