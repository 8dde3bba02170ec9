"""The options of ``aerostat serve``: one table that builds both the command
line (statsd_exporter's flags, by the same names and defaults) and the
ServerOptions the server runs with. A default is written once, on the
field; ``--help`` shows it."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aerostat.frontend import BuiltIn
from aerostat.mapper import parse_duration
from aerostat.parse import Dialects
from aerostat.pipeline import InputLimits


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What ``aerostat serve`` runs with; every field but the last three is
    a flag in SERVE_FLAGS."""

    listen_udp: str = ":9125"
    listen_tcp: str = ":9125"
    listen_unixgram: str = ""
    unixsocket_mode: int = 0o755
    mapping_config: str | None = None
    cache_size: int = 1000
    read_buffer: int | None = None
    udp_single_receive: bool = False
    line_cache_size: int = 100_000
    ttl: float = 0.0
    max_series: int = 500_000
    max_series_bytes: int = 1 << 30
    tcp_max_connections: int = 1024
    tcp_idle_timeout: float = 300.0
    relay_address: str = ""
    relay_packet_length: int = 1400
    web_listen_address: str = ":9102"
    telemetry_path: str = "/metrics"
    web_max_connections: int = 64
    web_idle_timeout: float = 30.0
    enable_lifecycle: bool = False
    web_config_file: str | None = None
    new_series_hold: float = 120.0
    created_timestamps: bool = False
    otlp_listen_address: str = ""
    otlp_max_body_bytes: int = 16 << 20
    otlp_stream_ttl: float = 600.0
    otlp_max_data_points: int = 100_000
    otlp_max_attributes: int = 128
    limits: InputLimits = field(default_factory=InputLimits)
    dialects: Dialects = field(default_factory=Dialects)
    built_in: BuiltIn | None = None  # --airflow: aerostat.airflow's mapping


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def duration(text: str) -> float:
    """Seconds, or a duration as mapping files write it (30s, 5m, 1h30m)."""
    try:
        seconds = float(text)
    except ValueError:
        found = parse_duration(text)
        if found is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration (e.g. 30s, 5m, 1h30m)"
            ) from None
        seconds = found
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return seconds


def octal_mode(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal file mode") from None


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag of ``serve``: the field it sets (``limits.x`` for a field of
    InputLimits), how its text reads, and what it does."""

    flag: str
    field: str
    help: str
    read: Callable[[str], Any] = str
    switch: bool = False  # present or absent, no value


SERVE_FLAGS: tuple[Flag, ...] = (
    Flag("--statsd.listen-udp", "listen_udp",
         'UDP address to receive StatsD on ("" disables).'),
    Flag("--statsd.listen-tcp", "listen_tcp",
         'TCP address to receive StatsD on ("" disables).'),
    Flag("--statsd.listen-unixgram", "listen_unixgram",
         'Unix datagram socket path to receive StatsD on ("" disables).'),
    Flag("--statsd.unixsocket-mode", "unixsocket_mode",
         "Permission mode of the unixgram socket (octal).", octal_mode),
    Flag("--statsd.mapping-config", "mapping_config", "Metric mapping configuration file."),
    Flag("--statsd.read-buffer", "read_buffer",
         "Size of the kernel receive buffer of the sockets (unset: aerostat asks 8 MiB for "
         "UDP).", positive_int),
    Flag("--statsd.udp-single-receive", "udp_single_receive",
         "Receive UDP with one recv per datagram instead of many datagrams per recvmmsg "
         "(the default on Linux); for comparisons.", switch=True),
    Flag("--statsd.cache-size", "cache_size", "Maximum size of the metric mapping cache.",
         positive_int),
    Flag("--statsd.line-cache-size", "line_cache_size",
         "Distinct lines remembered with their resolved series (0 = off).", positive_int),
    Flag("--statsd.ttl", "ttl",
         "Drop a series after this long without a sample (e.g. 10m), for series whose "
         "mapping sets no ttl. 0 keeps them forever.", duration),
    Flag("--statsd.max-series", "max_series",
         "Most series held at once (about 1 KB each); past it new series are refused and "
         'counted in aerostat_series_refused_total{limit="series"} (0 = no limit).',
         positive_int),
    Flag("--statsd.max-series-bytes", "max_series_bytes",
         "Most memory the series may take, as estimated per series; past it new series "
         'are refused and counted under limit="bytes" (0 = no limit).', positive_int),
    Flag("--statsd.max-name-length", "limits.max_name_length",
         "Longest metric name taken, in characters; longer ones are refused "
         '(sample_errors_total{reason="name_too_long"}).', positive_int),
    Flag("--statsd.max-label-value-length", "limits.max_label_value_length",
         "Longest label value taken, in characters; a sample with a longer one is refused "
         "(reason label_value_too_long).", positive_int),
    Flag("--statsd.tcp-max-connections", "tcp_max_connections",
         "Most StatsD TCP connections open at once (further ones are closed and counted); "
         "kept within the file-descriptor limit.", positive_int),
    Flag("--statsd.tcp-idle-timeout", "tcp_idle_timeout",
         "Close a StatsD TCP connection silent this long.", duration),
    Flag("--statsd.relay.address", "relay_address",
         "Forward every line received to this StatsD server (host:port, UDP)."),
    Flag("--statsd.relay.packet-length", "relay_packet_length",
         "Largest relayed datagram in bytes.", positive_int),
    Flag("--web.listen-address", "web_listen_address",
         "Address to expose metrics and the web interface on."),
    Flag("--web.telemetry-path", "telemetry_path", "Path under which to expose metrics."),
    Flag("--web.max-connections", "web_max_connections",
         "Most HTTP connections served at once (further ones are closed and counted).",
         positive_int),
    Flag("--web.idle-timeout", "web_idle_timeout",
         "Close an HTTP connection that sends nothing for this long.", duration),
    Flag("--web.config.file", "web_config_file",
         "Web configuration file (exporter-toolkit's format) for TLS, basic auth and "
         "response headers on every HTTP endpoint; read again when it changes."),
    Flag("--web.enable-lifecycle", "enable_lifecycle",
         "Enable shutdown and reload via HTTP (POST /-/quit, /-/reload).", switch=True),
    Flag("--web.new-series-hold", "new_series_hold",
         "Show a new counter, histogram or summary series at zero until every Prometheus "
         "scraping aerostat has read it so (then increase() sees its first event), waiting "
         "at most this long; after a start, new series wait this long while the scrapers "
         "make themselves known. 0 shows values at once.", duration),
    Flag("--web.created-timestamps", "created_timestamps",
         "Add _created to counters, histograms and summaries in OpenMetrics scrapes, for "
         "a Prometheus that ingests created timestamps (otherwise it stores them as extra "
         "series).", switch=True),
    Flag("--otlp.listen-address", "otlp_listen_address",
         "Address to receive OpenTelemetry metrics on over OTLP/HTTP (POST /v1/metrics, "
         'protobuf or JSON; 4318 is the usual port; "" disables).'),
    Flag("--otlp.max-body-bytes", "otlp_max_body_bytes",
         "Largest OTLP request body taken, in bytes, compressed and decompressed alike "
         "(larger ones get 413).", positive_int),
    Flag("--otlp.stream-ttl", "otlp_stream_ttl",
         "Forget a sending process's cumulative OTLP series after this long without a "
         "push (memory follows the live processes).", duration),
    Flag("--otlp.max-data-points", "otlp_max_data_points",
         "Most data points taken from one OTLP request (the rest are refused and counted).",
         positive_int),
    Flag("--otlp.max-attributes", "otlp_max_attributes",
         "Most attributes on one OTLP data point (one with more is refused and counted).",
         positive_int),
)


def default_of(name: str) -> Any:
    """A field's default, from ServerOptions or InputLimits."""
    owner: type[Any] = ServerOptions
    if name.startswith("limits."):
        owner, name = InputLimits, name.removeprefix("limits.")
    found = next(f for f in dataclasses.fields(owner) if f.name == name)
    if found.default is not dataclasses.MISSING:
        return found.default
    raise LookupError(name)


_METAVARS: dict[Callable[[str], Any], str] = {
    positive_int: "N", duration: "DURATION", octal_mode: "MODE",
}


def _dest(flag: Flag) -> str:
    return flag.field.replace(".", "__")


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    for flag in SERVE_FLAGS:
        default = default_of(flag.field)
        if flag.switch:
            parser.add_argument(flag.flag, dest=_dest(flag), action="store_true",
                                help=flag.help)
            continue
        shown: object = default
        if flag.read is octal_mode:
            shown = oct(default)[2:]
        elif flag.read is duration:
            shown = f"{default:g}s"
        parser.add_argument(
            flag.flag, dest=_dest(flag), default=default, type=flag.read,
            metavar=_METAVARS.get(flag.read, "TEXT"),
            help=f"{flag.help} Default: {shown!r}." if shown is not None else flag.help,
        )


def serve_options(
    args: argparse.Namespace, dialects: Dialects, built_in: BuiltIn | None
) -> ServerOptions:
    """The ServerOptions the parsed flags say."""
    given: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for flag in SERVE_FLAGS:
        value = getattr(args, _dest(flag))
        if flag.field.startswith("limits."):
            limits[flag.field.removeprefix("limits.")] = value
        else:
            given[flag.field] = value
    return ServerOptions(**given, limits=InputLimits(**limits), dialects=dialects,
                         built_in=built_in)
