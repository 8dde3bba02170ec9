"""What the dashboards share: units, label filters, and the panels more
than one dashboard shows (process liveness, heartbeats, aerostat's own
health)."""

from __future__ import annotations

from aerostat.stack.grafana import (
    Panel,
    Row,
    Target,
    at_least_one,
    increase,
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


def or_zero_per_deployment(expr: str) -> str:
    """``expr`` (summed by deployment), or 0 for a deployment without such a
    series yet: a counter of failures per DAG, task or file exists only
    from its first event on, and "No data" reads as broken. Every
    deployment has ``airflow_job_start_total`` from the moment aerostat sees
    it (docs/airflow.md, "Counters before their first event")."""
    return f"{expr} or (0 * sum by (deployment) ({increase('airflow_job_start_total')}))"


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:]  # str.capitalize() would lower "DAG"


def _alive_stat(component: Component, width: int = 4) -> Panel:
    return stat_panel(
        f"{_sentence_case(component.plural)} alive",
        f"{_sentence_case(component.name)} processes of each deployment that sent a heartbeat "
        f"within the last 30 seconds ('alive'), of those aerostat heard in the last 10 "
        f"minutes ('known'): 1 alive of 2 known is one stopped {component.name}. Find it, "
        f"and since when it is silent, in '{_sentence_case(component.name)} processes', and "
        f"read its log. No value: aerostat has heard no {component.name} of this deployment "
        f"for over 10 minutes, or the deployment runs none.",
        [Target(select(component.alive), "{{deployment}} alive"),
         Target(f"count by (deployment) ({select(component.alive_gauge)})",
                "{{deployment}} known")],
        thresholds=at_least_one(), width=width,
    )


def _processes(component: Component, width: int = 6) -> Panel:
    return table_panel(
        f"{_sentence_case(component.name)} processes",
        f"Each {component.name} process aerostat heard from in the last 10 minutes, by the "
        f"address it sends from, and when it last sent a heartbeat. More than 30 seconds "
        f"ago: it stopped (its alive gauge reads 0 and the process-down alert follows a "
        f"minute later); a restarted process shows as a new row.",
        [("last heartbeat", Target(
            f"max by (deployment, sender) ({select(component.last_heartbeat)}) * 1000"))],
        unit="dateTimeFromNow", width=width,
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
