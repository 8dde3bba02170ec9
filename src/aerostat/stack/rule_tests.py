"""promtool unit tests for every rule: each alert has a scenario where it
fires and one where it must not, each recording rule a scenario that pins
its values. Rendered next to the rules, so whoever edits a rule file can run
``promtool test rules prometheus/tests/*.test.yml``.

An expected alert names its labels and how its annotations show ``$value``;
the annotation text itself comes from the rule's templates, so a wording
change needs no test change while a template that renders wrongly fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aerostat.stack.rules import COMPONENTS, AlertRule, Component, RuleFile


@dataclass(frozen=True)
class Firing:
    labels: Mapping[str, str]
    shown_value: str = ""  # what the annotations' {{ ... $value ... }} render to


@dataclass(frozen=True)
class AlertCheck:
    alert: str
    at: str
    firing: tuple[Firing, ...] = ()  # empty: the alert must not fire


@dataclass(frozen=True)
class SampleCheck:
    expr: str
    at: str
    samples: tuple[tuple[str, float], ...]  # (series in PromQL notation, value)


@dataclass(frozen=True)
class Scenario:
    name: str
    series: tuple[tuple[str, str], ...]  # (series, values in promtool's notation)
    alerts: tuple[AlertCheck, ...] = ()
    samples: tuple[SampleCheck, ...] = ()


@dataclass(frozen=True)
class RuleTestFile:
    path: str
    rule_files: tuple[str, ...]  # relative to the test file
    scenarios: tuple[Scenario, ...]


DEPLOYMENT = "prod"
AEROSTAT = 'job="aerostat",instance="aerostat:9102"'


def _in_prod(recorded: str, at: str, value: float | None) -> SampleCheck:
    """``recorded`` of deployment prod at ``at``: ``value``, or no sample."""
    series = f'{recorded}{{deployment="{DEPLOYMENT}"}}'
    return SampleCheck(recorded, at, () if value is None else ((series, value),))


def _beat(component: Component, sender: str) -> str:
    return f'{component.heartbeat}{{deployment="{DEPLOYMENT}",sender="{sender}"}}'


def _process(component: Component, sender: str, beats: str) -> tuple[tuple[str, str], ...]:
    """A process as aerostat exposes it: its heartbeat counter and its alive
    gauge (1 while it beats, 0 once silent, gone when the series expires)."""
    alive = f'{component.alive_gauge}{{deployment="{DEPLOYMENT}",sender="{sender}"}}'
    return ((_beat(component, sender), beats), (alive, _ALIVE[beats]))


# a heartbeat every 5 s is 12 a minute; a stopped process's series stays
# flat for the 10 minutes aerostat keeps it, then goes stale
BEATING_FOR_80M = "0+12x110"
STOPS_AT_30M = "0+12x30 360x10 stale"
STARTS_AT_29M = "_x29 0+12x80"
STARTS_AT_31M = "_x31 0+12x80"
# the same processes' alive gauges, minute by minute
_ALIVE = {BEATING_FOR_80M: "1x110", STOPS_AT_30M: "1x30 0x10 stale",
          STARTS_AT_29M: "_x29 1x80", STARTS_AT_31M: "_x31 1x80"}


def _component_scenarios(component: Component) -> list[Scenario]:
    down, process_down = f"{component.alert}Down", f"{component.alert}ProcessDown"
    first, second = "10.0.0.5:41000", "10.0.0.6:41000"
    return [
        Scenario(
            f"the only {component.name} stops",
            (*_process(component, first, STOPS_AT_30M),),
            alerts=(
                AlertCheck(down, "20m"),
                AlertCheck(down, "35m", (Firing({"deployment": DEPLOYMENT}),)),
                # its series is gone by now; the deployment is still down
                AlertCheck(down, "50m", (Firing({"deployment": DEPLOYMENT}),)),
            ),
            samples=(
                _in_prod(component.alive, "20m", 1),
                _in_prod(component.alive, "35m", 0),
                _in_prod(component.alive, "50m", None),
            ),
        ),
        Scenario(
            f"a restarted {component.name} takes over from the stopped one",
            (*_process(component, first, STOPS_AT_30M),
             *_process(component, second, STARTS_AT_29M)),
            alerts=(AlertCheck(down, "35m"), AlertCheck(process_down, "35m")),
            samples=(
                # old and new both beat for a moment: not a second process to expect
                _in_prod(component.alive, "30m", 2),
                _in_prod(component.expected, "40m", 1),
            ),
        ),
        Scenario(
            f"one of two {component.plural} stops and none replaces it",
            (*_process(component, first, BEATING_FOR_80M),
             *_process(component, second, STOPS_AT_30M)),
            alerts=(
                AlertCheck(process_down, "20m"),
                AlertCheck(process_down, "36m",
                           (Firing({"deployment": DEPLOYMENT, "sender": second}),)),
                AlertCheck(process_down, "50m",
                           (Firing({"deployment": DEPLOYMENT, "sender": second}),)),
                # an hour on, one process is what the deployment runs
                AlertCheck(process_down, "100m"),
                AlertCheck(down, "36m"),
            ),
            samples=(
                _in_prod(component.alive, "35m", 1),
                _in_prod(component.expected, "35m", 2),
                _in_prod(component.expected, "100m", 1),
            ),
        ),
    ]


def _airflow_scenarios() -> list[Scenario]:
    scheduler, _, triggerer = COMPONENTS
    prod = {"deployment": DEPLOYMENT}
    scenarios = [s for component in COMPONENTS for s in _component_scenarios(component)]
    scenarios += [
        Scenario(
            "every process of a deployment falls silent",
            (*_process(scheduler, "10.0.0.5:41000", STOPS_AT_30M),
             *_process(triggerer, "10.0.0.7:41000", STOPS_AT_30M)),
            alerts=(AlertCheck("AirflowDeploymentSilent", "20m"),
                    AlertCheck("AirflowDeploymentSilent", "40m", (Firing(prod),))),
        ),
        Scenario(
            "the scheduler stops while the triggerer still sends",
            (*_process(scheduler, "10.0.0.5:41000", STOPS_AT_30M),
             *_process(triggerer, "10.0.0.7:41000", BEATING_FOR_80M)),
            alerts=(AlertCheck("AirflowDeploymentSilent", "40m"),),
        ),
        Scenario(
            "one DAG file is no longer parsed",
            (('airflow_dag_processing_last_run_seconds_ago{deployment="prod",file="etl.py"}',
              "0+60x30"),
             ('airflow_dag_processing_last_run_seconds_ago{deployment="prod",file="ok.py"}',
              "15x30")),
            alerts=(AlertCheck("AirflowDagFileNotParsed", "20m", (
                Firing({"deployment": DEPLOYMENT, "file": "etl.py"}, "20m 0s"),)),),
        ),
        Scenario(
            "files parsed every 30 s; a series without a file label is not a file",
            (('airflow_dag_processing_last_run_seconds_ago{deployment="prod",file="ok.py"}',
              "30x30"),
             ('airflow_dag_processing_last_run_seconds_ago{deployment="prod"}', "0+60x30")),
            alerts=(AlertCheck("AirflowDagFileNotParsed", "20m"),),
        ),
        Scenario(
            "two DAG files fail to import",
            (('airflow_dag_processing_import_errors{deployment="prod"}', "0x5 2x20"),),
            alerts=(AlertCheck("AirflowDagImportErrors", "15m", (Firing(prod, "2"),)),),
        ),
        Scenario(
            # statsd_exporter with aerostat's exported mapping sets no deployment:
            # the texts must not read "in deployment  ..."
            "import errors from traffic that names no deployment",
            (("airflow_dag_processing_import_errors", "0x5 2x20"),),
            alerts=(AlertCheck("AirflowDagImportErrors", "15m", (Firing({}, "2"),)),),
        ),
        Scenario(
            "an import error fixed within a minute",
            (('airflow_dag_processing_import_errors{deployment="prod"}', "0x5 1 0x15"),),
            alerts=(AlertCheck("AirflowDagImportErrors", "15m"),),
        ),
        Scenario(
            "import errors while aerostat reads the REST API: the per-file alert speaks",
            (('airflow_dag_processing_import_errors{deployment="prod"}', "0x5 2x20"),
             ('aerostat_airflow_api_up{deployment="prod"}', "1x25")),
            alerts=(AlertCheck("AirflowDagImportErrors", "15m"),),
        ),
        *_api_scenarios(),
        Scenario(
            "half of the finished tasks fail",
            (('airflow_ti_failures_total{deployment="prod"}', "0+3x40"),
             ('airflow_ti_successes_total{deployment="prod"}', "0+3x40")),
            alerts=(AlertCheck("AirflowTaskFailureRatioHigh", "30m", (Firing(prod, "50%"),)),),
        ),
        Scenario(
            "a single failure in a quiet deployment",
            (('airflow_ti_failures_total{deployment="prod"}', "0x10 1x30"),),
            alerts=(AlertCheck("AirflowTaskFailureRatioHigh", "25m"),),
        ),
        Scenario(
            "tasks wait for a full pool",
            (('airflow_pool_starving_tasks{deployment="prod",pool="etl"}', "3x30"),
             ('airflow_pool_starving_tasks{deployment="prod",pool="default_pool"}', "0x30")),
            alerts=(AlertCheck("AirflowPoolStarving", "20m", (
                Firing({"deployment": DEPLOYMENT, "pool": "etl"}, "3"),)),),
        ),
        Scenario(
            "a pool short of slots now and then",
            (('airflow_pool_starving_tasks{deployment="prod",pool="etl"}', "3x10 0 3x10 0 3x10"),),
            alerts=(AlertCheck("AirflowPoolStarving", "30m"),),
        ),
        Scenario(
            "two task instances killed for missing heartbeats",
            (('airflow_task_instances_without_heartbeats_killed_total{deployment="prod"}',
              "0x10 2x20"),),
            alerts=(AlertCheck("AirflowTasksKilledWithoutHeartbeat", "15m", (Firing(prod, "2"),)),
                    AlertCheck("AirflowTasksKilledWithoutHeartbeat", "30m")),
        ),
        Scenario(
            "no task instance killed",
            (('airflow_task_instances_without_heartbeats_killed_total{deployment="prod"}',
              "0x30"),),
            alerts=(AlertCheck("AirflowTasksKilledWithoutHeartbeat", "15m"),),
        ),
        Scenario(
            "the executor queue grows by 2 tasks a minute",
            (('airflow_executor_queued_tasks{deployment="prod",executor="CeleryExecutor"}',
              "0+2x60"),),
            alerts=(AlertCheck("AirflowExecutorBacklogGrowing", "40m", (Firing(prod, "80"),)),),
        ),
        Scenario(
            "a long but steady executor queue",
            (('airflow_executor_queued_tasks{deployment="prod",executor="CeleryExecutor"}',
              "50x60"),),
            alerts=(AlertCheck("AirflowExecutorBacklogGrowing", "40m"),),
        ),
        Scenario(
            "both triggerers are full",
            (('airflow_triggerer_capacity_left{deployment="prod",hostname="t1"}', "0x30"),
             ('airflow_triggerer_capacity_left{deployment="prod",hostname="t2"}', "0x30")),
            alerts=(AlertCheck("AirflowTriggererFull", "20m", (Firing(prod),)),),
        ),
        Scenario(
            "one triggerer is full, the other has room",
            (('airflow_triggerer_capacity_left{deployment="prod",hostname="t1"}', "0x30"),
             ('airflow_triggerer_capacity_left{deployment="prod",hostname="t2"}', "200x30")),
            alerts=(AlertCheck("AirflowTriggererFull", "20m"),),
        ),
    ]
    return scenarios


def _api_scenarios() -> list[Scenario]:
    """The alerts on what aerostat reads from Airflow's REST API."""
    etl = {"deployment": DEPLOYMENT, "dag_id": "etl"}

    def dag(name: str, values: str, **labels: str) -> tuple[str, str]:
        inner = ",".join(f'{key}="{value}"' for key, value in
                         {"deployment": DEPLOYMENT, "dag_id": "etl", **labels}.items())
        return f"{name}{{{inner}}}", values

    hourly = (dag("airflow_dag_interval_seconds", "3600x200"),)
    # a success at Unix time 0: at 180m it is 3 hours old
    succeeded_at_0 = dag("airflow_dag_last_success_timestamp_seconds", "0x200")

    def component(name: str, healthy: str, heartbeat: bool) -> tuple[tuple[str, str], ...]:
        labels = f'deployment="{DEPLOYMENT}",component="{name}"'
        found: tuple[tuple[str, str], ...] = ((f"airflow_component_healthy{{{labels}}}", healthy),)
        if heartbeat:
            found += ((f"airflow_component_last_heartbeat_timestamp_seconds{{{labels}}}",
                       "0x20"),)
        return found

    return [
        Scenario(
            "an hourly DAG last succeeded 3 hours ago",
            (succeeded_at_0, *hourly, dag("airflow_dag_paused", "0x200")),
            alerts=(AlertCheck("AirflowDagLate", "90m"),
                    AlertCheck("AirflowDagLate", "180m", (Firing(etl, "3h 0m 0s"),))),
        ),
        Scenario(
            "a paused hourly DAG last succeeded 3 hours ago",
            (succeeded_at_0, *hourly, dag("airflow_dag_paused", "1x200")),
            alerts=(AlertCheck("AirflowDagLate", "180m"),),
        ),
        Scenario(
            "an hourly DAG that succeeds every hour",
            # Unix time of its latest success: every 60 minutes
            (dag("airflow_dag_last_success_timestamp_seconds",
                 " ".join(f"{hour * 3600}x59" for hour in range(4))),
             *hourly, dag("airflow_dag_paused", "0x200")),
            alerts=(AlertCheck("AirflowDagLate", "200m"),),
        ),
        Scenario(
            "the latest run of a DAG failed, then one succeeded",
            (dag("airflow_dag_last_run_state", "1x10 stale", state="failed"),
             dag("airflow_dag_last_run_state", "_x10 1x10", state="success")),
            alerts=(AlertCheck("AirflowDagRunFailed", "5m", (Firing(etl),)),
                    AlertCheck("AirflowDagRunFailed", "15m")),
        ),
        Scenario(
            "a DAG file fails to import",
            (('airflow_dag_import_errors{deployment="prod",bundle="dags-folder",file="etl.py"}',
              "1x20"),),
            alerts=(AlertCheck("AirflowDagFileImportError", "10m", (Firing(
                {"deployment": DEPLOYMENT, "bundle": "dags-folder", "file": "etl.py"}),)),),
        ),
        Scenario(
            "a broken DAG file fixed within minutes",
            (('airflow_dag_import_errors{deployment="prod",bundle="dags-folder",file="etl.py"}',
              "1x3 stale"),),
            alerts=(AlertCheck("AirflowDagFileImportError", "10m"),),
        ),
        Scenario(
            "a scheduler unhealthy for one poll",
            (*component("scheduler", "1x5 0 1x14", heartbeat=True),),
            alerts=(AlertCheck("AirflowComponentUnhealthy", "10m"),),
        ),
        Scenario(
            "Airflow reports its scheduler and database unhealthy, and a triggerer that "
            "never ran",
            (*component("scheduler", "0x20", heartbeat=True),
             *component("metadatabase", "0x20", heartbeat=False),
             *component("triggerer", "0x20", heartbeat=False),
             *component("dag_processor", "1x20", heartbeat=True)),
            alerts=(AlertCheck("AirflowComponentUnhealthy", "10m", (
                Firing({"deployment": DEPLOYMENT, "component": "metadatabase"}),
                Firing({"deployment": DEPLOYMENT, "component": "scheduler"}))),),
        ),
    ]


def _recording_scenarios() -> list[Scenario]:
    ratio = "deployment:airflow_ti_failure_ratio:rate15m"
    scenarios = [
        Scenario(
            f"live {component.plural} counted, and the number kept up",
            (*_process(component, "10.0.0.5:41000", BEATING_FOR_80M),
             *_process(component, "10.0.0.6:41000", STOPS_AT_30M)),
            samples=(
                _in_prod(component.alive, "20m", 2),
                _in_prod(component.alive, "35m", 1),
                _in_prod(component.expected, "35m", 2),
            ),
        )
        for component in COMPONENTS
    ]
    scenarios += [
        Scenario(
            "a third of the finished tasks fail",
            (('airflow_ti_failures_total{deployment="prod",dag_id="etl",task_id="load"}',
              "0+3x40"),
             ('airflow_ti_successes_total{deployment="prod",dag_id="etl",task_id="load"}',
              "0+6x40")),
            samples=(
                _in_prod("deployment:airflow_ti_failures:rate15m", "30m", 0.05),
                _in_prod("deployment:airflow_ti_successes:rate15m", "30m", 0.1),
                _in_prod(ratio, "30m", 1 / 3),
            ),
        ),
        Scenario(
            "tasks that never succeeded",
            (('airflow_ti_failures_total{deployment="prod"}', "0+1x40"),),
            samples=(_in_prod(ratio, "30m", 1),),
        ),
        Scenario(
            "tasks that never failed, and a deployment that finished no task lately",
            (('airflow_ti_successes_total{deployment="prod"}', "0+1x40"),
             ('airflow_ti_successes_total{deployment="idle"}', "7x40")),
            samples=(_in_prod(ratio, "30m", 0),),
        ),
        Scenario(
            "executor gauges summed over executors",
            tuple(
                (f'airflow_executor_{gauge}{{deployment="prod",executor="{executor}"}}', f"{n}x10")
                for gauge in ("open_slots", "queued_tasks", "running_tasks")
                for executor, n in (("CeleryExecutor", 10), ("KubernetesExecutor", 5))
            ),
            samples=tuple(
                _in_prod(f"deployment:airflow_executor_{gauge}:sum", "5m", 15)
                for gauge in ("open_slots", "queued_tasks", "running_tasks")
            ),
        ),
    ]
    return scenarios


def _aerostat_scenarios() -> list[Scenario]:
    aerostat = {"job": "aerostat", "instance": "aerostat:9102"}
    return [
        Scenario("Prometheus cannot scrape aerostat", ((f"up{{{AEROSTAT}}}", "1x5 0x20"),),
                 alerts=(AlertCheck("AerostatDown", "15m", (Firing(aerostat),)),)),
        Scenario("one failed scrape", ((f"up{{{AEROSTAT}}}", "1x5 0 1x15"),),
                 alerts=(AlertCheck("AerostatDown", "15m"),)),
        Scenario("the kernel drops 500 datagrams",
                 ((f"aerostat_udp_kernel_drops_total{{{AEROSTAT}}}", "0x10 500x20"),),
                 alerts=(AlertCheck("AerostatDroppingDatagrams", "15m", (Firing(aerostat, "500"),)),
                         AlertCheck("AerostatDroppingDatagrams", "30m"))),
        Scenario("no datagram dropped",
                 ((f"aerostat_udp_kernel_drops_total{{{AEROSTAT}}}", "0x30"),),
                 alerts=(AlertCheck("AerostatDroppingDatagrams", "15m"),)),
        Scenario("37 series refused at the series limit",
                 ((f"aerostat_series_refused_total{{{AEROSTAT}}}", "0x10 37x20"),),
                 alerts=(AlertCheck("AerostatRefusingSeries", "15m", (Firing(aerostat, "37"),)),)),
        Scenario("no series refused",
                 ((f"aerostat_series_refused_total{{{AEROSTAT}}}", "0x30"),),
                 alerts=(AlertCheck("AerostatRefusingSeries", "15m"),)),
        Scenario("aerostat cannot read a deployment's REST API",
                 ((f'aerostat_airflow_api_up{{{AEROSTAT},deployment="prod"}}', "1x5 0x20"),),
                 alerts=(AlertCheck("AerostatAirflowApiDown", "15m", (
                     Firing({**aerostat, "deployment": "prod"}),)),)),
        Scenario("one failed poll of a REST API",
                 ((f'aerostat_airflow_api_up{{{AEROSTAT},deployment="prod"}}',
                   "1x5 0 1x15"),),
                 alerts=(AlertCheck("AerostatAirflowApiDown", "15m"),)),
        Scenario("StatsD lines stop coming",
                 ((f"statsd_exporter_lines_total{{{AEROSTAT}}}", "0+100x10 1000x30"),),
                 alerts=(AlertCheck("AerostatNoTraffic", "30m", (Firing(aerostat),)),)),
        Scenario("StatsD lines keep coming",
                 ((f"statsd_exporter_lines_total{{{AEROSTAT}}}", "0+100x40"),),
                 alerts=(AlertCheck("AerostatNoTraffic", "30m"),)),
    ]


def rule_test_files() -> tuple[RuleTestFile, ...]:
    recording = "../rules/airflow-recording.yml"
    return (
        RuleTestFile("prometheus/tests/airflow-recording.test.yml", (recording,),
                     tuple(_recording_scenarios())),
        RuleTestFile("prometheus/tests/airflow-alerts.test.yml",
                     (recording, "../rules/airflow-alerts.yml"), tuple(_airflow_scenarios())),
        RuleTestFile("prometheus/tests/aerostat-alerts.test.yml",
                     ("../rules/aerostat-alerts.yml",), tuple(_aerostat_scenarios())),
    )


_LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
# a label with a fallback for when it is absent or empty: {{ or $labels.x `y` }}
_LABEL_OR = re.compile(r"\{\{\s*or \$labels\.(\w+) `([^`]*)`\s*\}\}")
_VALUE = re.compile(r"\{\{[^}]*\$value[^}]*\}\}")


def _expected_text(template: str, firing: Firing) -> str:
    text = _LABEL_OR.sub(lambda found: firing.labels.get(found[1]) or found[2], template)
    text = _LABEL.sub(lambda found: firing.labels.get(found[1], ""), text)
    text = _VALUE.sub(firing.shown_value, text)
    if "{{" in text:
        raise ValueError(f"template beyond what the tests render: {template!r}")
    return text


def promtool_test_document(test_file: RuleTestFile,
                           alerts: Mapping[str, AlertRule]) -> dict[str, object]:
    """A promtool test file; ``alerts`` gives each expected alert's severity
    and annotation templates."""
    groups: list[dict[str, object]] = []
    for scenario in test_file.scenarios:
        group: dict[str, object] = {
            "name": scenario.name,
            "interval": "1m",
            "input_series": [{"series": series, "values": values}
                             for series, values in scenario.series],
        }
        if scenario.alerts:
            group["alert_rule_test"] = [
                {"eval_time": check.at, "alertname": check.alert,
                 "exp_alerts": [_expected_alert(alerts[check.alert], firing)
                                for firing in check.firing]}
                for check in scenario.alerts
            ]
        if scenario.samples:
            group["promql_expr_test"] = [
                {"expr": check.expr, "eval_time": check.at,
                 "exp_samples": [{"labels": labels, "value": value}
                                 for labels, value in check.samples]}
                for check in scenario.samples
            ]
        groups.append(group)
    return {"rule_files": list(test_file.rule_files), "evaluation_interval": "1m",
            "tests": groups}


def _expected_alert(rule: AlertRule, firing: Firing) -> dict[str, object]:
    return {
        "exp_labels": {**firing.labels, "severity": rule.severity},
        "exp_annotations": {
            "summary": _expected_text(rule.summary, firing),
            "description": _expected_text(rule.description, firing),
            "runbook": _expected_text(rule.runbook, firing),
        },
    }


def alerts_by_name(files: tuple[RuleFile, ...]) -> dict[str, AlertRule]:
    return {rule.alert: rule for file in files for rule in file.rules
            if isinstance(rule, AlertRule)}
