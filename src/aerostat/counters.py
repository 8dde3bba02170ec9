"""The exporter's own counts, as plain ints on one object: every stage and
source bumps them (perf: about 30 ns against about 260 ns for
prometheus_client's ``Counter.inc``), and expose/telemetry.py turns them
into statsd_exporter's metrics at scrape time."""

from __future__ import annotations

from collections import defaultdict


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
