"""The Prometheus recording and alerting rules, as data.

Every rule works per deployment (``by (deployment)``), so one Prometheus
watches many Airflow deployments. Two facts shape the liveness rules:

* heartbeats are one counter series per process (label ``sender``), and
  aerostat drops a silent process's series about 10 minutes after its last
  heartbeat; an alert on the series alone would resolve when the series
  vanishes, not when the process comes back. The rules therefore ask
  "was it seen within a longer window?" (``max_over_time``) ``unless``
  "is it beating now?".
* a restarted process comes back with a new ``sender`` (a new source port),
  so "a process stopped" only means capacity was lost when fewer processes
  beat now than the deployment kept up over the past hour.
"""

from __future__ import annotations

from dataclasses import dataclass

# a heartbeat comes every few seconds (scheduler_heartbeat_sec, default 5);
# aerostat's airflow_<process>_alive reads 0 after 30 s without one
# (--airflow.heartbeat-silence), and the alerts wait one more minute (for: 1m)
# how long a stopped process, and a silent deployment, stay remembered
PROCESS_MEMORY = "1h"
DEPLOYMENT_MEMORY = "24h"


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    for_: str | None
    severity: str  # critical: Airflow stops working; warning: degraded or at risk
    summary: str
    description: str
    runbook: str  # one line: what to look at first


@dataclass(frozen=True)
class RuleFile:
    path: str  # relative to the output directory
    group: str
    rules: tuple[RecordingRule | AlertRule, ...]


@dataclass(frozen=True)
class Component:
    """An Airflow process kind that sends a heartbeat counter."""

    key: str  # as in airflow_<key>_heartbeat_total
    name: str  # as a reader says it
    plural: str
    alert: str  # alert name stem
    when_down: str  # what stops working
    check: str  # runbook: where to look

    @property
    def heartbeat(self) -> str:
        return f"airflow_{self.key}_heartbeat_total"

    @property
    def alive_gauge(self) -> str:
        """1 per process while it beats, 0 once silent (aerostat --airflow)."""
        return f"airflow_{self.key}_alive"

    @property
    def last_heartbeat(self) -> str:
        return f"airflow_{self.key}_last_heartbeat_timestamp_seconds"

    @property
    def alive(self) -> str:
        return f"deployment:airflow_{self.key}_processes_alive:count"

    @property
    def expected(self) -> str:
        return f"deployment:airflow_{self.key}_processes_expected:max1h"


COMPONENTS = (
    Component(
        "scheduler", "scheduler", "schedulers", "AirflowScheduler",
        "No task is scheduled or queued and no DAG run starts.",
        "Check the scheduler processes (pods) of the deployment and their logs "
        "(`airflow jobs check --job-type SchedulerJob`).",
    ),
    Component(
        "dag_processor", "DAG processor", "DAG processors", "AirflowDagProcessor",
        "Changed DAG files are not picked up and DAG callbacks do not run.",
        "Check the `airflow dag-processor` processes (pods) of the deployment and their "
        "logs (`airflow jobs check --job-type DagProcessorJob`).",
    ),
    Component(
        "triggerer", "triggerer", "triggerers", "AirflowTriggerer",
        "Deferred tasks are not resumed and sensors in deferrable mode wait forever.",
        "Check the `airflow triggerer` processes (pods) of the deployment and their logs "
        "(`airflow jobs check --job-type TriggererJob`).",
    ),
)


def _liveness_recordings(component: Component) -> list[RecordingRule]:
    return [
        # a stopped process's gauge reads 0 until its series expires, so the
        # count reads 0 (not "no data") right after the last one stops
        RecordingRule(
            component.alive,
            f"sum by (deployment) ({component.alive_gauge})",
        ),
        # the number of processes the deployment kept running for 10 minutes at
        # a stretch over the past hour: a restart briefly counts old and new
        # process both, which must not raise the expected number
        RecordingRule(
            component.expected,
            f"max_over_time(min_over_time({component.alive}[10m])[{PROCESS_MEMORY}:1m])",
        ),
    ]


def recording_rules() -> tuple[RecordingRule, ...]:
    succeeded = "deployment:airflow_ti_successes:rate15m"
    failed = "deployment:airflow_ti_failures:rate15m"
    rules = [rule for component in COMPONENTS for rule in _liveness_recordings(component)]
    rules += [
        RecordingRule(
            succeeded,
            "sum by (deployment) (rate(airflow_ti_successes_total[15m]))",
        ),
        RecordingRule(
            failed,
            "sum by (deployment) (rate(airflow_ti_failures_total[15m]))",
        ),
        # a counter exists only once it was first incremented: a deployment
        # whose tasks never failed (or never succeeded) lacks one of the two,
        # so each side falls back to 0 where the other exists; no finished
        # task at all gives no ratio rather than 0/0
        RecordingRule(
            "deployment:airflow_ti_failure_ratio:rate15m",
            f"({failed} or {succeeded} * 0)\n"
            f"/\n"
            f"(\n"
            f"  ({failed} or {succeeded} * 0)\n"
            f"  + ({succeeded} or {failed} * 0)\n"
            f"  > 0\n"
            f")",
        ),
    ]
    # aerostat already sums these gauges over a deployment's live schedulers
    # (each runs its own executor); this sums over executors
    for gauge in ("open_slots", "queued_tasks", "running_tasks"):
        rules.append(RecordingRule(
            f"deployment:airflow_executor_{gauge}:sum",
            f"sum by (deployment) (airflow_executor_{gauge})",
        ))
    return tuple(rules)


def _component_alerts(component: Component) -> list[AlertRule]:
    alive = component.alive_gauge
    return [
        AlertRule(
            f"{component.alert}Down",
            f"group by (deployment) (max_over_time({alive}[{DEPLOYMENT_MEMORY}]))\n"
            f"unless on (deployment)\n"
            f"(sum by (deployment) ({alive}) > 0)",
            "1m", "critical",
            f"No {component.name} of deployment {{{{ or $labels.deployment `default` }}}} is alive",
            f"aerostat has received no {component.name} heartbeat from deployment "
            f"{{{{ or $labels.deployment `default` }}}} "
            f"for over a minute, although it did within the past "
            f"24 hours. {component.when_down}",
            f"{component.check} If they run, check that their StatsD traffic reaches "
            f"aerostat ([metrics] statsd_host, statsd_port).",
        ),
        AlertRule(
            f"{component.alert}ProcessDown",
            f"(\n"
            f"  group by (deployment, sender) (max_over_time({alive}[{PROCESS_MEMORY}]))\n"
            f"  unless on (deployment, sender)\n"
            f"  ({alive} == 1)\n"
            f")\n"
            f"and on (deployment)\n"
            f"({component.alive} < {component.expected})",
            "1m", "warning",
            f"A {component.name} of deployment {{{{ or $labels.deployment `default` }}}} stopped "
            f"({{{{ $labels.sender }}}})",
            f"The {component.name} that sent from {{{{ $labels.sender }}}} has sent no "
            f"heartbeat for over a minute and no new one took its place: deployment "
            f"{{{{ or $labels.deployment `default` }}}} "
            f"has fewer live {component.plural} than it kept "
            f"running over the past hour. The alert clears when a {component.name} comes "
            f"back, or after an hour, when the lower number becomes the expected one.",
            f"{component.check} If the process was removed on purpose (scaled down), "
            f"silence this alert for an hour.",
        ),
    ]


def _any_heartbeat(template: str) -> str:
    """``template`` applied to each heartbeat counter, joined by ``or``: one
    selector over several names would collide once rate() drops the names."""
    return "\n  or ".join(template.format(component.heartbeat) for component in COMPONENTS)


# a DAG is late once its latest success is older than its period plus
# half of it (a run ends some time after the interval it covers) plus this
DAG_LATE_GRACE = "600"


def _api_alerts() -> list[AlertRule]:
    """Alerts on the state aerostat reads from Airflow's REST API
    (``--airflow.api-url``): they need no StatsD traffic, and stay empty
    without the source."""
    return [
        AlertRule(
            "AirflowDagLate",
            "(time() - airflow_dag_last_success_timestamp_seconds)\n"
            "> on (deployment, dag_id)\n"
            f"(airflow_dag_interval_seconds * 1.5 + {DAG_LATE_GRACE})\n"
            "and on (deployment, dag_id)\n"
            "(airflow_dag_paused == 0)",
            "5m", "warning",
            "DAG {{ $labels.dag_id }} of deployment {{ or $labels.deployment `default` }} "
            "has not succeeded for {{ $value | humanizeDuration }}",
            "The latest successful run of DAG {{ $labels.dag_id }} in deployment "
            "{{ or $labels.deployment `default` }} ended {{ $value | humanizeDuration }} ago, "
            "longer than its schedule's period and a half plus 10 minutes: the data it "
            "produces is stale.",
            "Open the DAG in the Airflow UI: its latest runs failed, are still running or "
            "queued (max_active_runs, pools), or the scheduler creates none (paused by "
            "max_consecutive_failed_dag_runs, scheduler down).",
        ),
        AlertRule(
            "AirflowDagRunFailed",
            "max by (deployment, dag_id) (airflow_dag_last_run_state{state=\"failed\"}) == 1",
            None, "warning",
            "The latest run of DAG {{ $labels.dag_id }} of deployment "
            "{{ or $labels.deployment `default` }} failed",
            "The latest finished run of DAG {{ $labels.dag_id }} in deployment "
            "{{ or $labels.deployment `default` }} failed, as Airflow's REST API reports. The "
            "alert clears when a later run succeeds.",
            "Open the failed run in the Airflow UI: the first failed task's log says why; "
            "clear the run once the cause is fixed.",
        ),
        AlertRule(
            "AirflowDagFileImportError",
            "max by (deployment, bundle, file) (airflow_dag_import_errors) > 0",
            "5m", "warning",
            "DAG file {{ $labels.file }} of deployment {{ or $labels.deployment `default` }} "
            "fails to import",
            "Airflow's REST API reports an import error for {{ $labels.file }} (bundle "
            "{{ $labels.bundle }}) in deployment {{ or $labels.deployment `default` }}: the "
            "DAGs it defines are missing or stay at their last good version.",
            "Read the error in the Airflow UI (DAGs, import errors) or with `airflow dags "
            "list-import-errors`, and fix the file.",
        ),
        AlertRule(
            "AirflowComponentUnhealthy",
            "max by (deployment, component) (airflow_component_healthy) == 0\n"
            "and on (deployment, component)\n"
            "(\n"
            "  max by (deployment, component) "
            "(airflow_component_last_heartbeat_timestamp_seconds)\n"
            "  or max by (deployment, component) "
            "(airflow_component_healthy{component=\"metadatabase\"})\n"
            ")",
            "2m", "critical",
            "Airflow reports its {{ $labels.component }} of deployment "
            "{{ or $labels.deployment `default` }} unhealthy",
            "Airflow's health endpoint reports the {{ $labels.component }} of deployment "
            "{{ or $labels.deployment `default` }} unhealthy: for a scheduler, triggerer or DAG "
            "processor, none has written a heartbeat to the metadata database recently. "
            "(A component that never ran, such as a triggerer the deployment does not use, "
            "is not reported.)",
            "Check that component's processes (pods) and logs, and the metadata database; "
            "the heartbeat alerts of the same component say which process stopped.",
        ),
    ]


def airflow_alerts() -> tuple[AlertRule, ...]:
    alerts = [alert for component in COMPONENTS for alert in _component_alerts(component)]
    alerts += [
        AlertRule(
            "AirflowDeploymentSilent",
            "group by (deployment) (\n"
            f"  {_any_heartbeat('max_over_time({}[' + DEPLOYMENT_MEMORY + '])')}\n"
            ")\n"
            "unless on (deployment)\n"
            "(\n"
            f"  {_any_heartbeat('increase({}[5m]) > 0')}\n"
            ")",
            "1m", "critical",
            "aerostat receives nothing from deployment {{ or $labels.deployment `default` }}",
            "No scheduler, DAG processor or triggerer heartbeat of deployment "
            "{{ or $labels.deployment `default` }} "
            "has reached aerostat for 5 minutes, although some did "
            "within the past 24 hours. Either the whole deployment is down or its StatsD "
            "traffic no longer reaches aerostat.",
            "Check that the deployment runs; then its [metrics] statsd_on, statsd_host, "
            "statsd_port and statsd_prefix, and the UDP path to aerostat. Airflow resolves "
            "statsd_host once: after aerostat moved to a new address, restart the Airflow "
            "processes (apache/airflow#47374).",
        ),
        AlertRule(
            "AirflowDagFileNotParsed",
            "min by (deployment, file) (airflow_dag_processing_last_run_seconds_ago{file!=\"\"})"
            " > 600",
            "5m", "warning",
            "DAG file {{ $labels.file }} of deployment "
            "{{ or $labels.deployment `default` }} not parsed "
            "for {{ $value | humanizeDuration }}",
            "The DAG processors of deployment {{ or $labels.deployment `default` }} last parsed "
            "{{ $labels.file }} {{ $value | humanizeDuration }} ago (the alert starts at 10 "
            "minutes). Changes to its DAGs are not picked up.",
            "Look for the file in the DAG processor log: a parse that times out "
            "([dag_processor] dag_file_processor_timeout), an import that hangs, or more "
            "files than the parsing processes get through (see the DAG processing dashboard).",
        ),
        AlertRule(
            "AirflowDagImportErrors",
            # where aerostat reads the deployment's REST API, the per-file
            # alert below says the same with the file's name
            "sum by (deployment) (airflow_dag_processing_import_errors) > 0\n"
            "unless on (deployment)\n"
            "(aerostat_airflow_api_up == 1)",
            "5m", "warning",
            "{{ $value }} DAG import errors in deployment {{ or $labels.deployment `default` }}",
            "{{ $value }} DAG files of deployment "
            "{{ or $labels.deployment `default` }} fail to import: "
            "the DAGs they define are missing from Airflow or stay at their last good "
            "version.",
            "List the errors in the Airflow UI or with `airflow dags list-import-errors` and "
            "fix the files. On Airflow 3.0.x a count without errors in the UI is a false "
            "report after callback-only parsing (apache/airflow#60928).",
        ),
        *_api_alerts(),
        AlertRule(
            "AirflowTaskFailureRatioHigh",
            "deployment:airflow_ti_failure_ratio:rate15m > 0.1\n"
            "and on (deployment)\n"
            "sum by (deployment) (increase(airflow_ti_failures_total[15m])) >= 5",
            "10m", "warning",
            "{{ $value | humanizePercentage }} of the tasks of deployment "
            "{{ or $labels.deployment `default` }} fail",
            "Over the past 15 minutes {{ $value | humanizePercentage }} of the task "
            "instances that finished in deployment "
            "{{ or $labels.deployment `default` }} failed (the "
            "alert starts above 10 %, with at least 5 failures).",
            "Find the failing DAGs and tasks in the 'Airflow / DAGs and tasks' dashboard; "
            "many DAGs failing at once point to a shared cause: a connection, a pool, a "
            "worker.",
        ),
        AlertRule(
            "AirflowPoolStarving",
            "max by (deployment, pool) (airflow_pool_starving_tasks{pool!=\"\"}) > 0",
            "15m", "warning",
            "Pool {{ $labels.pool }} of deployment "
            "{{ or $labels.deployment `default` }} starves tasks",
            "{{ $value }} tasks of deployment "
            "{{ or $labels.deployment `default` }} have been waiting for "
            "slots in pool {{ $labels.pool }} for 15 minutes.",
            "Give the pool more slots, or find what holds them (long or deferred tasks "
            "counting against the pool) in the 'Airflow / Pools and executor' dashboard.",
        ),
        AlertRule(
            "AirflowTasksKilledWithoutHeartbeat",
            "sum by (deployment) "
            "(increase(airflow_task_instances_without_heartbeats_killed_total[15m])) > 0",
            None, "warning",
            "Task instances of deployment "
            "{{ or $labels.deployment `default` }} were killed for missing "
            "heartbeats",
            "In the past 15 minutes the scheduler of deployment "
            "{{ or $labels.deployment `default` }} "
            "killed about {{ printf \"%.0f\" $value }} task instances whose processes stopped "
            "heartbeating (once called zombies): their workers died, ran out of memory or "
            "lost the database.",
            "Check worker restarts and out-of-memory kills around that time and the tasks' "
            "logs; raise [scheduler] task_instance_heartbeat_timeout only for tasks that are "
            "merely slow to heartbeat.",
        ),
        AlertRule(
            "AirflowExecutorBacklogGrowing",
            # the value from the raw gauges: Prometheus evaluates rule groups
            # concurrently, so a recorded series may still hold the previous
            # evaluation's value here
            "sum by (deployment) (airflow_executor_queued_tasks) > 0\n"
            "and on (deployment)\n"
            "deriv(deployment:airflow_executor_queued_tasks:sum[15m]) > 0",
            "15m", "warning",
            "The executor queue of deployment {{ or $labels.deployment `default` }} keeps growing",
            "The tasks queued in the executors of deployment "
            "{{ or $labels.deployment `default` }} have "
            "grown for 30 minutes and are at {{ $value }}: workers take tasks more slowly "
            "than the schedulers queue them.",
            "Check worker capacity (Celery workers alive, Kubernetes pods pending) and the "
            "executor's open slots ([core] parallelism) in the 'Airflow / Pools and "
            "executor' dashboard.",
        ),
        AlertRule(
            "AirflowTriggererFull",
            "sum by (deployment) (airflow_triggerer_capacity_left) <= 0",
            "10m", "warning",
            "The triggerers of deployment "
            "{{ or $labels.deployment `default` }} are out of capacity",
            "The triggerers of deployment "
            "{{ or $labels.deployment `default` }} have had no capacity "
            "left for 10 minutes: newly deferred tasks wait before their triggers run.",
            "Add triggerers or raise [triggerer] capacity; look for triggers that never "
            "finish or block the event loop (blocked main thread, in the 'Airflow / "
            "Triggerer' dashboard).",
        ),
    ]
    return tuple(alerts)


def aerostat_alerts() -> tuple[AlertRule, ...]:
    # aerostat's own metrics keep statsd_exporter's names: the job label keeps
    # these rules off any statsd_exporter the same Prometheus scrapes
    return (
        AlertRule(
            "AerostatDown",
            'up{job="aerostat"} == 0',
            "2m", "critical",
            "aerostat {{ $labels.instance }} is down",
            "Prometheus has failed to scrape aerostat at {{ $labels.instance }} for 2 "
            "minutes: no Airflow metric is being collected, and the Airflow alerts that "
            "need them may fire as a consequence.",
            "Check the aerostat process (pod) and its log, and "
            "`curl http://{{ $labels.instance }}/-/healthy`.",
        ),
        AlertRule(
            "AerostatDroppingDatagrams",
            'sum by (job, instance) (increase(aerostat_udp_kernel_drops_total{job="aerostat"}'
            "[10m])) > 0",
            None, "warning",
            "aerostat {{ $labels.instance }} loses StatsD datagrams",
            "The kernel dropped about {{ printf \"%.0f\" $value }} datagrams in the past 10 "
            "minutes because aerostat at {{ $labels.instance }} did not read its UDP socket "
            "in time: counters undercount and timers miss observations.",
            "Raise net.core.rmem_max and --statsd.read-buffer, give aerostat a CPU core of "
            "its own, or split the deployments over several aerostat instances.",
        ),
        AlertRule(
            "AerostatRefusingSeries",
            'sum by (job, instance) (increase(aerostat_series_refused_total{job="aerostat"}'
            "[10m])) > 0",
            None, "warning",
            "aerostat {{ $labels.instance }} refuses new series",
            "aerostat at {{ $labels.instance }} refused about {{ printf \"%.0f\" $value }} "
            "new series in the past 10 minutes because it holds --statsd.max-series series "
            "already: the metrics they carry are missing.",
            "Look for a label with unbounded values (`topk(10, count by (__name__) "
            "({__name__=~\"airflow_.+\"}))`); raise --statsd.max-series, or let idle series "
            "expire with --statsd.ttl.",
        ),
        AlertRule(
            "AerostatAirflowApiDown",
            'max by (job, instance, deployment) (aerostat_airflow_api_up{job="aerostat"}) == 0',
            "5m", "warning",
            "aerostat cannot read the REST API of deployment "
            "{{ or $labels.deployment `default` }}",
            "aerostat at {{ $labels.instance }} has failed to poll the REST API of deployment "
            "{{ or $labels.deployment `default` }} for 5 minutes: DAG freshness, runs, "
            "pools, import errors and health show their last good state (its age is "
            "time() - aerostat_airflow_api_last_success_timestamp_seconds), and task outcomes "
            "StatsD misses are not added.",
            "aerostat's log names the reason and what to do (once, when polls start "
            "failing); `aerostat_airflow_api_errors_total` counts them by reason.",
        ),
        AlertRule(
            "AerostatNoTraffic",
            'sum by (job, instance) (rate(statsd_exporter_lines_total{job="aerostat"}[10m]))'
            " == 0",
            "5m", "warning",
            "aerostat {{ $labels.instance }} receives no StatsD lines",
            "aerostat at {{ $labels.instance }} has received no StatsD line for 15 minutes: "
            "no Airflow deployment reaches it.",
            "Check Airflow's [metrics] statsd_on, statsd_host and statsd_port, and that UDP "
            "port 9125 of aerostat is reachable from every Airflow process.",
        ),
    )


def rule_files() -> tuple[RuleFile, ...]:
    return (
        RuleFile("prometheus/rules/airflow-recording.yml", "airflow-recording",
                 recording_rules()),
        RuleFile("prometheus/rules/airflow-alerts.yml", "airflow-alerts", airflow_alerts()),
        RuleFile("prometheus/rules/aerostat-alerts.yml", "aerostat-alerts", aerostat_alerts()),
    )


def rule_document(rules: RuleFile) -> dict[str, object]:
    """A rule file as Prometheus reads it."""
    entries: list[dict[str, object]] = []
    for rule in rules.rules:
        if isinstance(rule, RecordingRule):
            entries.append({"record": rule.record, "expr": rule.expr})
            continue
        entry: dict[str, object] = {"alert": rule.alert, "expr": rule.expr}
        if rule.for_:
            entry["for"] = rule.for_
        entry["labels"] = {"severity": rule.severity}
        entry["annotations"] = {
            "summary": rule.summary, "description": rule.description, "runbook": rule.runbook,
        }
        entries.append(entry)
    return {"groups": [{"name": rules.group, "rules": entries}]}
