"""The exporter's own metrics, under statsd_exporter's names, declared once
as a table: name, help, type, label names and where the value comes from.
``TelemetryCollector`` reads the table at scrape time, from the plain counts
of aerostat.counters and the sizes of what is held now (``Vitals``)."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping, Sized
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aerostat import __version__
from aerostat.counters import Telemetry
from aerostat.events import EVENT_ERRORS, Kind, Reason
from aerostat.store import Store


class _MapperStats(Protocol):
    @property
    def cache_length(self) -> int: ...

    cache_gets: int
    cache_hits: int


class _Lines(Protocol):
    """The pipeline, as far as its own metrics go."""

    @property
    def mapper(self) -> _MapperStats: ...

    @property
    def cache_length(self) -> int: ...


class _Relay(Protocol):
    target: str
    packets: int
    lines: int
    long_lines: int


class _Connections(Protocol):
    @property
    def connections(self) -> Sized: ...


@dataclass
class Vitals:
    """Everything the own metrics read. Parts a process lacks (``aerostat
    replay`` has no sockets) stay None and their metrics read as nothing."""

    telemetry: Telemetry
    store: Store | None = None
    pipeline: _Lines | None = None
    relay: _Relay | None = None
    tcp: _Connections | None = None
    sockets: bool = False  # a serving process: its relay metrics exist, if empty


Value = float | Mapping[tuple[str, ...], float]


@dataclass(frozen=True)
class OwnMetric:
    name: str
    help: str
    type: str  # counter or gauge
    read: Callable[[Vitals], Value | None]  # None: not in this process
    labels: tuple[str, ...] = field(default=())


def _by(values: Mapping[str, int], known: tuple[str, ...] = ()) -> Mapping[tuple[str, ...], float]:
    """Label value → count, every ``known`` one present from the start at
    zero: increase() over a counter born at 1 misses that first 1."""
    return {(key,): values.get(key, 0) for key in (*known, *values)}


# the reasons of statsd_exporter_events_error_total and of sample_errors_total
EVENT_REASONS = tuple(reason.value for reason in Reason if reason in EVENT_ERRORS)
SAMPLE_REASONS = tuple(reason.value for reason in Reason if reason not in EVENT_ERRORS)


OTLP_CODES = ("200", "400", "401", "404", "405", "413", "415", "503")
OTLP_REJECTIONS = ("too_many_attributes", "too_many_data_points", "unsupported_type",
                   "unknown_type", "non_finite_value", "malformed_histogram")


def _otlp(vitals: Vitals, read: Callable[[Telemetry], Value]) -> Value | None:
    return read(vitals.telemetry) if vitals.telemetry.otlp_enabled else None


def _conflicts(telemetry: Telemetry) -> Mapping[tuple[str, ...], float]:
    return {(kind, name): count for (kind, name), count in telemetry.conflicts.items()}


def _relayed(attribute: str) -> Callable[[Vitals], Value | None]:
    def read(vitals: Vitals) -> Value | None:
        relay = vitals.relay
        if relay is None:
            return {} if vitals.sockets else None
        return {(relay.target,): getattr(relay, attribute)}
    return read


def _counter(name: str, help_text: str, read: Callable[[Telemetry], Value]) -> OwnMetric:
    return OwnMetric(name, help_text, "counter", lambda vitals: read(vitals.telemetry))


OWN_METRICS: tuple[OwnMetric, ...] = (
    OwnMetric("aerostat_build_info", "aerostat's version and the Python running it.", "gauge",
              lambda _: {(__version__, platform.python_version()): 1},
              ("version", "python_version")),
    # upstream's statsd_exporter_metrics_total is a gauge with a _total name
    # (promtool objects) that never goes down; this one is current
    OwnMetric("aerostat_metric_families", "Metric families held now, by type.", "gauge",
              lambda v: None if v.store is None else _by(v.store.count_families()),
              ("type",)),
    _counter("statsd_exporter_lines", "The total number of StatsD lines received.",
             lambda t: t.lines),
    _counter("statsd_exporter_samples", "The total number of StatsD samples received.",
             lambda t: t.samples),
    _counter("statsd_exporter_tags", "The total number of DogStatsD tags processed.",
             lambda t: t.tags),
    _counter("statsd_exporter_tag_errors", "The number of errors parsing DogStatsD tags.",
             lambda t: t.tag_errors),
    _counter("statsd_exporter_udp_packets",
             "The total number of StatsD packets received over UDP.", lambda t: t.udp_packets),
    _counter("statsd_exporter_udp_packet_drops",
             "The number of UDP packets dropped inside the exporter because its queue was full.",
             lambda t: t.udp_packet_drops),
    _counter("aerostat_udp_kernel_drops",
             "UDP datagrams the kernel dropped before the exporter could read them "
             "(receive buffer full), read from the socket's drop counter.",
             lambda t: t.udp_kernel_drops),
    _counter("statsd_exporter_tcp_connections", "The total number of TCP connections handled.",
             lambda t: t.tcp_connections),
    _counter("statsd_exporter_tcp_connection_errors",
             "The number of errors encountered reading from TCP.",
             lambda t: t.tcp_connection_errors),
    _counter("statsd_exporter_tcp_too_long_lines",
             "The number of lines discarded due to being too long.",
             lambda t: t.tcp_too_long_lines),
    _counter("statsd_exporter_unixgram_packets",
             "The total number of StatsD packets received over unixgram.",
             lambda t: t.unixgram_packets),
    OwnMetric("statsd_exporter_events", "The total number of StatsD events seen.", "counter",
              lambda v: {(kind.label,): v.telemetry.events[kind] for kind in Kind}, ("type",)),
    _counter("statsd_exporter_events_unmapped",
             "The total number of StatsD events no mapping was found for.",
             lambda t: t.events_unmapped),
    OwnMetric("statsd_exporter_sample_errors",
              "The total number of errors parsing StatsD samples.", "counter",
              lambda v: _by(v.telemetry.sample_errors, SAMPLE_REASONS), ("reason",)),
    OwnMetric("statsd_exporter_events_error",
              "The total number of StatsD events discarded due to errors.", "counter",
              lambda v: _by(v.telemetry.events_error, EVENT_REASONS), ("reason",)),
    OwnMetric("statsd_exporter_events_actions", "The total number of StatsD events by action.",
              "counter", lambda v: _by(v.telemetry.actions, ("drop", "map")), ("action",)),
    OwnMetric("statsd_exporter_events_conflict",
              "The total number of StatsD events discarded due to a type or name conflict.",
              "counter", lambda v: _conflicts(v.telemetry), ("type", "metric_name")),
    OwnMetric("statsd_exporter_config_reloads", "The number of configuration reloads.",
              "counter", lambda v: _by(v.telemetry.config_reloads, ("success", "failure")),
              ("outcome",)),
    OwnMetric("statsd_exporter_loaded_mappings",
              "The current number of configured metric mappings.", "gauge",
              lambda v: v.telemetry.loaded_mappings),
    _counter("aerostat_series_expired",
             "Series removed because their TTL passed without a new sample.",
             lambda t: t.series_expired),
    _counter("aerostat_internal_errors",
             "Lines or batches of input skipped because aerostat hit a bug processing them "
             "(the log has the traceback).", lambda t: t.internal_errors),
    OwnMetric("aerostat_series_refused",
              "New series refused because the store held --statsd.max-series series (limit "
              "series) or --statsd.max-series-bytes bytes (limit bytes) already.", "counter",
              lambda v: {(limit,): v.telemetry.series_refused.get(limit, 0)
                         for limit in ("series", "bytes")}, ("limit",)),
    _counter("aerostat_tcp_connections_refused",
             "StatsD TCP connections closed at once because --statsd.tcp-max-connections "
             "were open.", lambda t: t.tcp_connections_refused),
    _counter("aerostat_http_connections_refused",
             "HTTP connections closed at once because --web.max-connections were being served.",
             lambda t: t.http_connections_refused),
    _counter("aerostat_accept_backoffs",
             "Times accepting TCP connections paused for a second because the process was out "
             "of file descriptors.", lambda t: t.accept_backoffs),
    OwnMetric("statsd_metric_mapper_cache_length",
              "The count of unique metrics currently cached.", "gauge",
              lambda v: None if v.pipeline is None else v.pipeline.mapper.cache_length),
    OwnMetric("aerostat_series", "Series currently held for StatsD metrics.", "gauge",
              lambda v: None if v.store is None else v.store.series_count),
    OwnMetric("aerostat_line_cache_length",
              "Distinct StatsD lines (without their values) resolved to a series.", "gauge",
              lambda v: None if v.pipeline is None else v.pipeline.cache_length),
    OwnMetric("aerostat_series_bytes",
              "Estimated memory of the series held for StatsD metrics, in bytes "
              "(bounded by --statsd.max-series-bytes).", "gauge",
              lambda v: None if v.store is None else v.store.bytes),
    OwnMetric("aerostat_tcp_connections_open", "StatsD TCP connections open now.", "gauge",
              lambda v: None if v.tcp is None else len(v.tcp.connections)),
    OwnMetric("statsd_exporter_relay_packets", "The number of packets relayed.", "counter",
              _relayed("packets"), ("target",)),
    OwnMetric("statsd_exporter_relay_lines_relayed", "The number of lines relayed.", "counter",
              _relayed("lines"), ("target",)),
    OwnMetric("statsd_exporter_relay_long_lines", "The number of lines too long to relay.",
              "counter", _relayed("long_lines"), ("target",)),
    # the OTLP receiver's, present when it listens
    OwnMetric("aerostat_otlp_requests",
              "OTLP/HTTP export requests answered, by HTTP status code.", "counter",
              lambda v: _otlp(v, lambda t: _by(t.otlp_requests, OTLP_CODES)), ("code",)),
    OwnMetric("aerostat_otlp_data_points",
              "OTLP data points taken (before the mapping; rejected ones are not among them).",
              "counter", lambda v: _otlp(v, lambda t: t.otlp_points)),
    OwnMetric("aerostat_otlp_rejected_data_points",
              "OTLP data points refused, by reason (the exporter is told so in the "
              "response's partial success).", "counter",
              lambda v: _otlp(v, lambda t: _by(t.otlp_rejected_points, OTLP_REJECTIONS)),
              ("reason",)),
    OwnMetric("aerostat_otlp_stale_data_points",
              "Cumulative OTLP data points below their stream's total, which add nothing "
              "(a forked process's frozen copy of its parent's meters).", "counter",
              lambda v: _otlp(v, lambda t: t.otlp_stale_points)),
    OwnMetric("aerostat_otlp_streams",
              "Cumulative OTLP streams remembered now (each process's series, until "
              "--otlp.stream-ttl of silence).", "gauge",
              lambda v: _otlp(v, lambda t: t.otlp_streams)),
    OwnMetric("statsd_metric_mapper_cache_gets", "The count of total metric cache gets.",
              "counter", lambda v: None if v.pipeline is None else v.pipeline.mapper.cache_gets),
    OwnMetric("statsd_metric_mapper_cache_hits", "The count of total metric cache hits.",
              "counter", lambda v: None if v.pipeline is None else v.pipeline.mapper.cache_hits),
)


class TelemetryCollector:
    """A prometheus_client collector over OWN_METRICS."""

    def __init__(self, vitals: Vitals | Telemetry) -> None:
        self.vitals = vitals if isinstance(vitals, Vitals) else Vitals(vitals)

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration; families vary

    def collect(self) -> Iterator[Metric]:
        vitals = self.vitals
        for metric in OWN_METRICS:
            value = metric.read(vitals)
            if value is None:
                continue
            family_type = CounterMetricFamily if metric.type == "counter" else GaugeMetricFamily
            if not metric.labels:
                assert not isinstance(value, Mapping)
                yield family_type(metric.name, metric.help, value=value)
                continue
            assert isinstance(value, Mapping)
            family = family_type(metric.name, metric.help, labels=list(metric.labels))
            for labels, amount in sorted(value.items()):
                family.add_metric(list(labels), amount)
            yield family
