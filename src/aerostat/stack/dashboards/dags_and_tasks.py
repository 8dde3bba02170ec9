"""DAGs and tasks: runs, outcomes, durations, retries."""

from __future__ import annotations

from aerostat.stack.dashboards.common import (
    DEPLOYMENT,
    HAS_STATE,
    IN_DAG,
    IN_TASK,
    PER_SECOND,
    RETRIED,
    SECONDS,
)
from aerostat.stack.grafana import (
    DashboardSpec,
    Panel,
    Row,
    Target,
    Variable,
    increase,
    quantile,
    rate,
    select,
    table_panel,
    timeseries_panel,
)

# what these panels show, aerostat reads from Airflow's REST API
FROM_THE_API = " Needs aerostat's REST-API source (--airflow.api-url)."


def _freshness() -> list[Panel]:
    def latest(metric: str, *matchers: str) -> str:
        return f"max by (deployment, dag_id) ({select(metric, IN_DAG, *matchers)}) * 1000"

    ended = select("airflow_dag_last_run_end_timestamp_seconds", IN_DAG)
    failed = select("airflow_dag_last_run_state", IN_DAG, 'state="failed"')
    return [
        table_panel(
            "DAG freshness",
            "Per DAG: when its latest successful run ended, when its latest run (success or "
            "failure) ended, and when the scheduler will create its next run. A last success "
            "older than the DAG's period: its data is stale (the AirflowDagLate alert "
            "follows). A next run in the past: the scheduler is behind or the DAG is held "
            "back (max_active_runs, paused)." + FROM_THE_API,
            [("last success", Target(latest("airflow_dag_last_success_timestamp_seconds"))),
             ("latest run ended", Target(latest("airflow_dag_last_run_end_timestamp_seconds"))),
             ("next run", Target(latest("airflow_dag_next_run_timestamp_seconds")))],
            unit="dateTimeFromNow", width=14,
        ),
        table_panel(
            "DAGs whose latest run failed",
            "DAGs whose latest finished run failed, and when it ended. A DAG leaves the "
            "table when a later run succeeds." + FROM_THE_API,
            [("failed run ended", Target(
                f"max by (deployment, dag_id) ({ended} and on (deployment, dag_id) "
                f"({failed} == 1)) * 1000"))],
            unit="dateTimeFromNow", width=10,
        ),
        timeseries_panel(
            "DAG runs queued and running",
            "DAG runs queued and running now, per state, as the database has them. Queued "
            "runs piling up: max_active_runs, or the scheduler cannot keep up." + FROM_THE_API,
            [Target(f"sum by (deployment, state) ({select('airflow_dag_runs', IN_DAG)})",
                    "{{deployment}} {{state}}")],
            width=12,
        ),
        table_panel(
            "Import errors per file",
            "DAG files that fail to import now, per bundle: the DAGs they define are "
            "missing or stay at their last good version. The error itself is in the Airflow "
            "UI." + FROM_THE_API,
            [("errors", Target(
                f"max by (deployment, bundle, file) ({select('airflow_dag_import_errors')})"))],
            width=12,
        ),
    ]


def dags_and_tasks() -> DashboardSpec:
    in_dag_task = (IN_DAG, IN_TASK)
    return DashboardSpec(
        "aerostat-airflow-dags", "Airflow / DAGs and tasks",
        "Per DAG and task: outcomes, durations, retries, and the delays before they run. "
        "Pick DAGs and tasks in the variables to drill down.",
        [
            Row("Freshness (from Airflow's REST API)", _freshness()),
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
                    "executor dashboard. Only executors with a queue (Celery, Kubernetes, "
                    "Edge) send it: empty with the LocalExecutor.",
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
