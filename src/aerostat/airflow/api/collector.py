"""What the REST-API sources show at a scrape: each deployment's last good
state (the ``airflow_*`` gauges below, with the same ``deployment`` label
as its StatsD series) and how its polls fare (``aerostat_airflow_api_*``).
Every family is yielded even when empty, so that the server reserves the
names and no StatsD line can take one. ``API_METRICS`` lists them once,
for this collector and for docs/airflow-metrics.md."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from aerostat.airflow.api.client import ERROR_REASONS
from aerostat.airflow.api.state import ACTIVE_RUN_STATES, Snapshot

DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetric(NamedTuple):
    name: str
    type: str
    labels: tuple[str, ...]
    help: str


API_METRICS = (
    ApiMetric("airflow_dag_last_success_timestamp_seconds", "gauge", ("dag_id",),
              "End of the DAG's latest successful run, Unix seconds."),
    ApiMetric("airflow_dag_last_run_end_timestamp_seconds", "gauge", ("dag_id",),
              "End of the DAG's latest finished run (success or failed), Unix seconds."),
    ApiMetric("airflow_dag_last_run_state", "gauge", ("dag_id", "state"),
              "1 for the state of the DAG's latest finished run (success or failed)."),
    ApiMetric("airflow_dag_next_run_timestamp_seconds", "gauge", ("dag_id",),
              "When the scheduler will create the DAG's next run, Unix seconds (scheduled "
              "DAGs)."),
    ApiMetric("airflow_dag_interval_seconds", "gauge", ("dag_id",),
              "Length of the data interval of the DAG's next run: its period, for DAGs "
              "scheduled at regular intervals."),
    ApiMetric("airflow_dag_paused", "gauge", ("dag_id",),
              "1 when the DAG is paused, 0 when it is active (stale DAGs are left out)."),
    ApiMetric("airflow_dags", "gauge", ("state",),
              "DAGs by state: active (not paused), paused, stale (its file is gone)."),
    ApiMetric("airflow_dag_runs", "gauge", ("dag_id", "state"),
              "DAG runs queued and running now."),
    ApiMetric("airflow_dag_import_errors", "gauge", ("bundle", "file"),
              "Import errors of a DAG file now (bundle is empty on Airflow 2)."),
    ApiMetric("airflow_pool_slots", "gauge", ("pool", "state"),
              "A pool's slots by state, as the database sees them now: total, open, "
              "occupied, running, queued, scheduled, deferred."),
    ApiMetric("airflow_component_healthy", "gauge", ("component",),
              "1 when Airflow's health endpoint reports the component healthy, else 0."),
    ApiMetric("airflow_component_last_heartbeat_timestamp_seconds", "gauge", ("component",),
              "The component's latest heartbeat in the metadata database, Unix seconds."),
    ApiMetric("aerostat_airflow_api_up", "gauge", (),
              "1 when the last poll of the deployment's REST API succeeded, else 0."),
    ApiMetric("aerostat_airflow_api_last_success_timestamp_seconds", "gauge", (),
              "When the last successful poll ended, Unix seconds: the age of the state shown."),
    ApiMetric("aerostat_airflow_api_polls_total", "counter", (),
              "Polls of the REST API that succeeded."),
    ApiMetric("aerostat_airflow_api_requests_total", "counter", (),
              "Requests made to the REST API."),
    ApiMetric("aerostat_airflow_api_response_bytes_total", "counter", (),
              "Bytes of the REST API's answers."),
    ApiMetric("aerostat_airflow_api_errors_total", "counter", ("reason",),
              "Failed polls by reason: " + ", ".join(ERROR_REASONS) + "."),
    ApiMetric("aerostat_airflow_api_request_duration_seconds", "histogram", (),
              "Duration of REST API requests."),
    ApiMetric("aerostat_airflow_api_outcomes_added_total", "counter", (),
              "Task-instance tries that Airflow's API recorded and StatsD did not carry, "
              "added to airflow_ti_finish_total."),
)


class Polled(Protocol):
    """What the collector reads of a source (ApiSource)."""

    deployment: str
    snapshot: Snapshot
    up: int
    polls: int
    last_success: float
    requests: int
    bytes: int
    errors: Counter[str]
    duration_buckets: list[int]
    duration_sum: float
    added_outcomes: int


class ApiCollector:
    def __init__(self, sources: Sequence[Polled]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        families = {metric.name: _family(metric) for metric in API_METRICS}
        for source in self.sources:
            self._state(families, source.deployment, source.snapshot)
            self._health_of_polls(families, source)
        yield from families.values()

    def _state(self, families: dict[str, Any], deployment: str, snapshot: Snapshot) -> None:
        def add(name: str, value: float, *labels: str) -> None:
            families[name].add_metric([deployment, *labels], value)

        for dag_id, success in snapshot.last_success.items():
            add("airflow_dag_last_success_timestamp_seconds", success, dag_id)
        for dag_id, run in snapshot.latest_run.items():
            add("airflow_dag_last_run_end_timestamp_seconds", run.end, dag_id)
            add("airflow_dag_last_run_state", 1.0, dag_id, run.state)
        states = {"active": 0, "paused": 0, "stale": 0}
        for dag_id, dag in snapshot.dags.items():
            if dag.stale:
                states["stale"] += 1
                continue
            states["paused" if dag.paused else "active"] += 1
            add("airflow_dag_paused", float(dag.paused), dag_id)
            if dag.next_run is not None:
                add("airflow_dag_next_run_timestamp_seconds", dag.next_run, dag_id)
            if dag.interval is not None:
                add("airflow_dag_interval_seconds", dag.interval, dag_id)
            for state in ACTIVE_RUN_STATES:
                add("airflow_dag_runs", snapshot.active_runs.get((dag_id, state), 0), dag_id,
                    state)
        if snapshot.taken:
            for state, count in states.items():
                add("airflow_dags", count, state)
        for (bundle, file), count in snapshot.import_errors.items():
            add("airflow_dag_import_errors", count, bundle, file)
        for pool, slots in snapshot.pools.items():
            for state, value in slots.items():
                add("airflow_pool_slots", value, pool, state)
        for component, health in snapshot.health.items():
            add("airflow_component_healthy", float(health.healthy), component)
            if health.latest_heartbeat is not None:
                add("airflow_component_last_heartbeat_timestamp_seconds",
                    health.latest_heartbeat, component)

    def _health_of_polls(self, families: dict[str, Any], source: Polled) -> None:
        deployment = source.deployment
        labels = [deployment]
        families["aerostat_airflow_api_up"].add_metric(labels, source.up)
        if source.last_success:
            families["aerostat_airflow_api_last_success_timestamp_seconds"].add_metric(
                labels, source.last_success)
        families["aerostat_airflow_api_polls_total"].add_metric(labels, source.polls)
        families["aerostat_airflow_api_requests_total"].add_metric(labels, source.requests)
        families["aerostat_airflow_api_response_bytes_total"].add_metric(labels, source.bytes)
        for reason in ERROR_REASONS:
            families["aerostat_airflow_api_errors_total"].add_metric(
                [deployment, reason], source.errors.get(reason, 0))
        families["aerostat_airflow_api_outcomes_added_total"].add_metric(
            labels, source.added_outcomes)
        cumulative, running = [], 0
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), source.duration_buckets,
                                strict=True):
            running += count
            cumulative.append((_bound(bound), running))
        families["aerostat_airflow_api_request_duration_seconds"].add_metric(
            labels, cumulative, source.duration_sum)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


def _family(metric: ApiMetric) -> Any:
    labels = ["deployment", *metric.labels]
    name = metric.name
    if metric.type == "counter":
        return CounterMetricFamily(name.removesuffix("_total"), metric.help, labels=labels)
    if metric.type == "histogram":
        return HistogramMetricFamily(name, metric.help, labels=labels)
    return GaugeMetricFamily(name, metric.help, labels=labels)
