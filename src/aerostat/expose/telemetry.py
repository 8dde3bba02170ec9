"""The exporter's own metrics, under statsd_exporter's names.

The hot path bumps plain ints on a ``Telemetry`` object (perf: about 30 ns
against about 260 ns for prometheus_client's ``Counter.inc``, see STYLE.md);
``TelemetryCollector`` turns them into metric families at scrape time."""

from __future__ import annotations

import platform
from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aerostat import __version__
from aerostat.events import Kind


class Telemetry:
    """Counts of everything received, refused and produced."""

    def __init__(self) -> None:
        self.lines = 0
        self.samples = 0
        self.tags = 0
        self.tag_errors = 0
        self.udp_packets = 0
        self.udp_packet_drops = 0
        self.udp_kernel_drops = 0
        self.tcp_connections = 0
        self.tcp_connection_errors = 0
        self.tcp_too_long_lines = 0
        self.unixgram_packets = 0
        self.events = [0, 0, 0]  # by Kind
        self.events_unmapped = 0
        self.sample_errors: defaultdict[str, int] = defaultdict(int)
        self.events_error: defaultdict[str, int] = defaultdict(int)
        self.actions: defaultdict[str, int] = defaultdict(int)
        self.conflicts: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.config_reloads: defaultdict[str, int] = defaultdict(int)
        self.loaded_mappings = 0
        self.series_expired = 0
        self.series_refused: defaultdict[str, int] = defaultdict(int)  # by limit
        self.tcp_connections_refused = 0
        self.http_connections_refused = 0
        self.accept_backoffs = 0
        self.internal_errors = 0


class TelemetryCollector:
    """A prometheus_client collector over a Telemetry and the live sizes
    the server reports through ``gauges`` (name → (help, read function))."""

    def __init__(
        self,
        telemetry: Telemetry,
        gauges: dict[str, tuple[str, Callable[[], float]]] | None = None,
        counters: dict[str, tuple[str, Callable[[], float]]] | None = None,
        labelled: dict[str, tuple[str, str, Callable[[], dict[str, float]]]] | None = None,
        families: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.gauges = gauges or {}
        self.counters = counters or {}
        # name → (help, label name, read function giving label value → value)
        self.labelled = labelled or {}
        self.families = families

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration; families vary

    def collect(self) -> Iterator[Metric]:
        t = self.telemetry
        info = GaugeMetricFamily(
            "aerostat_build_info", "aerostat's version and the Python running it.",
            labels=["version", "python_version"],
        )
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        if self.families is not None:
            # upstream's statsd_exporter_metrics_total is a gauge with a _total
            # name (promtool objects) that never goes down; this one is current
            held = GaugeMetricFamily(
                "aerostat_metric_families", "Metric families held now, by type.",
                labels=["type"],
            )
            for type_name, count in sorted(self.families().items()):
                held.add_metric([type_name], count)
            yield held

        def counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, help_text, value=value)

        yield counter(
            "statsd_exporter_lines", "The total number of StatsD lines received.", t.lines
        )
        yield counter(
            "statsd_exporter_samples", "The total number of StatsD samples received.", t.samples
        )
        yield counter(
            "statsd_exporter_tags", "The total number of DogStatsD tags processed.", t.tags
        )
        yield counter(
            "statsd_exporter_tag_errors",
            "The number of errors parsing DogStatsD tags.",
            t.tag_errors,
        )
        yield counter(
            "statsd_exporter_udp_packets", "The total number of StatsD packets received over UDP.",
            t.udp_packets,
        )
        yield counter(
            "statsd_exporter_udp_packet_drops",
            "The number of UDP packets dropped inside the exporter because its queue was full.",
            t.udp_packet_drops,
        )
        yield counter(
            "aerostat_udp_kernel_drops",
            "UDP datagrams the kernel dropped before the exporter could read them "
            "(receive buffer full), read from the socket's drop counter.",
            t.udp_kernel_drops,
        )
        yield counter(
            "statsd_exporter_tcp_connections", "The total number of TCP connections handled.",
            t.tcp_connections,
        )
        yield counter(
            "statsd_exporter_tcp_connection_errors",
            "The number of errors encountered reading from TCP.",
            t.tcp_connection_errors,
        )
        yield counter(
            "statsd_exporter_tcp_too_long_lines",
            "The number of lines discarded due to being too long.",
            t.tcp_too_long_lines,
        )
        yield counter(
            "statsd_exporter_unixgram_packets",
            "The total number of StatsD packets received over unixgram.",
            t.unixgram_packets,
        )
        events = CounterMetricFamily(
            "statsd_exporter_events", "The total number of StatsD events seen.", labels=["type"]
        )
        for kind in Kind:
            events.add_metric([kind.label], t.events[kind])
        yield events
        yield counter(
            "statsd_exporter_events_unmapped",
            "The total number of StatsD events no mapping was found for.",
            t.events_unmapped,
        )
        yield _labelled(
            "statsd_exporter_sample_errors",
            "The total number of errors parsing StatsD samples.",
            "reason",
            t.sample_errors,
        )
        yield _labelled(
            "statsd_exporter_events_error",
            "The total number of StatsD events discarded due to errors.",
            "reason",
            t.events_error,
        )
        yield _labelled(
            "statsd_exporter_events_actions",
            "The total number of StatsD events by action.",
            "action",
            t.actions,
        )
        conflicts = CounterMetricFamily(
            "statsd_exporter_events_conflict",
            "The total number of StatsD events discarded due to a type or name conflict.",
            labels=["type", "metric_name"],
        )
        for (kind_label, metric_name), value in sorted(t.conflicts.items()):
            conflicts.add_metric([kind_label, metric_name], value)
        yield conflicts
        yield _labelled(
            "statsd_exporter_config_reloads",
            "The number of configuration reloads.",
            "outcome",
            t.config_reloads,
        )
        yield GaugeMetricFamily(
            "statsd_exporter_loaded_mappings",
            "The current number of configured metric mappings.",
            value=t.loaded_mappings,
        )
        yield counter(
            "aerostat_series_expired",
            "Series removed because their TTL passed without a new sample.",
            t.series_expired,
        )
        yield counter(
            "aerostat_internal_errors",
            "Lines or batches of input skipped because aerostat hit a bug processing them "
            "(the log has the traceback).",
            t.internal_errors,
        )
        refused = CounterMetricFamily(
            "aerostat_series_refused",
            "New series refused because the store held --statsd.max-series series (limit "
            "series) or --statsd.max-series-bytes bytes (limit bytes) already.",
            labels=["limit"],
        )
        for limit in ("series", "bytes"):
            refused.add_metric([limit], t.series_refused.get(limit, 0))
        yield refused
        yield counter(
            "aerostat_tcp_connections_refused",
            "StatsD TCP connections closed at once because --statsd.tcp-max-connections "
            "were open.",
            t.tcp_connections_refused,
        )
        yield counter(
            "aerostat_http_connections_refused",
            "HTTP connections closed at once because --web.max-connections were being served.",
            t.http_connections_refused,
        )
        yield counter(
            "aerostat_accept_backoffs",
            "Times accepting TCP connections paused for a second because the process was out "
            "of file descriptors.",
            t.accept_backoffs,
        )
        for name, (help_text, read) in self.gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())
        for name, (help_text, read) in self.counters.items():
            yield CounterMetricFamily(name, help_text, value=read())
        for name, (help_text, label, read_all) in self.labelled.items():
            relayed = CounterMetricFamily(name, help_text, labels=[label])
            for key, amount in sorted(read_all().items()):
                relayed.add_metric([key], amount)
            yield relayed


def _labelled(
    name: str, help_text: str, label: str, values: dict[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family
