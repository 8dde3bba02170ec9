"""DAG processing: parse times, import errors, DAG counts."""

from __future__ import annotations

from aerostat.stack.dashboards.common import (
    DAG_PROCESSOR,
    DEPLOYMENT,
    HAS_FILE,
    SECONDS,
    _alive_stat,
    _heartbeats,
    _processes,
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
    select,
    stat_panel,
    table_panel,
    timeseries_panel,
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
            Row("Liveness", [_processes(DAG_PROCESSOR, width=12)]),
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
                    [Target(or_zero_per_deployment(
                        "sum by (deployment) "
                        f"({increase('airflow_dag_processing_processor_timeouts_total')})"),
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
