"""The exporter's lifecycle: start, the event loop, tick, reload, drain, stop.

One thread (the caller of ``serve_forever``) owns the store: it reads every
socket and runs every mutation, including reloads asked for over HTTP.
HTTP requests are answered from their own threads and only read."""

from __future__ import annotations

import contextlib
import errno
import gc
import itertools
import logging
import os
import queue
import resource
import selectors
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from aerostat.errors import AerostatError
from aerostat.expose.exposition import exposition_lines
from aerostat.expose.http import Endpoints, HttpServer
from aerostat.expose.telemetry import Telemetry, TelemetryCollector
from aerostat.logs import RateLimited
from aerostat.mapper import Mapper, MappingConfig, load_mapping_config
from aerostat.parse import Dialects
from aerostat.pipeline import BuiltIn, InputLimits, Pipeline
from aerostat.store import Store
from aerostat.wire import (
    LineAssembler,
    Relay,
    bind_tcp,
    bind_udp,
    bind_unixgram,
    read_buffer_bytes,
    udp_kernel_drops,
)

log = logging.getLogger("aerostat")

# a drain of one socket yields to the others after this many datagrams
_BATCH = 2048
# ... or after this many bytes: 2,048 datagrams of 60 KB of new samples would
# keep the loop (and every scrape) waiting for tens of seconds
_BATCH_BYTES = 1 << 20
# /-/healthy answers 503 when the event loop has not come round for this long
_STALL_SECONDS = 10.0
_TICK_SECONDS = 1.0
# refused input is summed up in one warning at most this often
_REFUSAL_REPORT_SECONDS = 60.0
# lines of a scrape rendered between two drains of the sockets
_RENDER_SLICE = 2000
# out of file descriptors, accepting TCP pauses this long instead of
# spinning on a listener that stays readable
_ACCEPT_BACKOFF_SECONDS = 1.0
# descriptors kept free for what must go on at the limit: scrapes, the
# mapping file on reload, /proc reads
_RESERVED_FDS = 32
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

_batch_errors = RateLimited(log, per_second=1)


class _Scrape:
    """A scrape being rendered by the event loop, a slice at a time."""

    __slots__ = ("chunks", "done", "lines")

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.chunks: list[str] = []
        self.done = threading.Event()

    def advance(self) -> bool:
        """Renders one slice; True when the scrape is complete."""
        before = len(self.chunks)
        self.chunks.extend(itertools.islice(self.lines, _RENDER_SLICE))
        if len(self.chunks) - before < _RENDER_SLICE:
            self.done.set()
            return True
        return False


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """statsd_exporter's flags, by the same names and defaults."""

    listen_udp: str = ":9125"
    listen_tcp: str = ":9125"
    listen_unixgram: str = ""
    unixsocket_mode: int = 0o755
    mapping_config: str | None = None
    cache_size: int = 1000
    read_buffer: int | None = None
    dialects: Dialects = field(default_factory=Dialects)
    web_listen_address: str = ":9102"
    telemetry_path: str = "/metrics"
    enable_lifecycle: bool = False
    line_cache_size: int = 100_000
    ttl: float = 0.0
    max_series: int = 500_000
    max_series_bytes: int = 1 << 30
    limits: InputLimits = field(default_factory=InputLimits)
    tcp_max_connections: int = 1024
    tcp_idle_timeout: float = 300.0
    web_max_connections: int = 64
    web_idle_timeout: float = 30.0
    relay_address: str = ""
    relay_packet_length: int = 1400
    built_in: BuiltIn | None = None  # --airflow: aerostat.airflow's mapping


def load_config(path: str | None) -> MappingConfig:
    return MappingConfig.empty() if path is None else load_mapping_config(path)


def _reserved_names(registry: CollectorRegistry) -> frozenset[str]:
    names: set[str] = set()
    for family in registry.collect():
        for suffix in ("", "_total", "_created", "_sum", "_count", "_bucket", "_info"):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


class Server:
    """Everything ``aerostat serve`` runs. Construct (loads the mapping),
    ``start()`` (binds every socket, so mistakes surface before serving),
    then ``serve_forever()`` until ``stop()``."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.relay: Relay | None = None
        self._connections: dict[socket.socket, LineAssembler] = {}
        config = load_config(options.mapping_config)
        self.telemetry = Telemetry()
        self.registry = CollectorRegistry(auto_describe=False)
        self.mapper = self._mapper(config)
        self.telemetry.loaded_mappings = len(self.mapper.rules)
        self.store = Store(max_series=options.max_series, max_bytes=options.max_series_bytes)
        self.pipeline = Pipeline(
            self.mapper,
            self.store,
            self.telemetry,
            options.dialects,
            options.line_cache_size,
            default_ttl=options.ttl,
            frontend=None if options.built_in is None else options.built_in.frontend(),
            limits=options.limits,
        )
        self.registry.register(
            TelemetryCollector(
                self.telemetry,
                gauges={
                    "statsd_metric_mapper_cache_length": (
                        "The count of unique metrics currently cached.",
                        lambda: self.pipeline.mapper.cache_length,
                    ),
                    "aerostat_series": (
                        "Series currently held for StatsD metrics.",
                        lambda: self.store.series_count,
                    ),
                    "aerostat_line_cache_length": (
                        "Distinct StatsD lines (without their values) resolved to a series.",
                        lambda: self.pipeline.cache_length,
                    ),
                    "aerostat_series_bytes": (
                        "Estimated memory of the series held for StatsD metrics, in bytes "
                        "(bounded by --statsd.max-series-bytes).",
                        lambda: self.store.bytes,
                    ),
                    "aerostat_tcp_connections_open": (
                        "StatsD TCP connections open now.",
                        lambda: len(self._connections),
                    ),
                },
                families=self.store.count_families,
                labelled={
                    "statsd_exporter_relay_packets": (
                        "The number of packets relayed.", "target",
                        lambda: self._relay_stat("packets"),
                    ),
                    "statsd_exporter_relay_lines_relayed": (
                        "The number of lines relayed.", "target",
                        lambda: self._relay_stat("lines"),
                    ),
                    "statsd_exporter_relay_long_lines": (
                        "The number of lines too long to relay.", "target",
                        lambda: self._relay_stat("long_lines"),
                    ),
                },
                counters={
                    "statsd_metric_mapper_cache_gets": (
                        "The count of total metric cache gets.",
                        lambda: self.pipeline.mapper.cache_gets,
                    ),
                    "statsd_metric_mapper_cache_hits": (
                        "The count of total metric cache hits.",
                        lambda: self.pipeline.mapper.cache_hits,
                    ),
                },
            )
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.store.reserved = _reserved_names(self.registry)

        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stopping = False
        self._stopped = threading.Event()
        self._owner: int | None = None
        self.udp: socket.socket | None = None
        self.tcp: socket.socket | None = None
        self.unixgram: socket.socket | None = None
        self._peers: dict[socket.socket, object] = {}
        self._last_read: dict[socket.socket, float] = {}
        self._max_connections = options.tcp_max_connections
        self._accept_paused_until = 0.0
        self._unixgram_identity: tuple[int, int] | None = None
        self._limits_warned: set[str] = set()
        self._last_turn = time.monotonic()
        self._limits_reported: dict[str, float] = {}
        self._scrapes: list[_Scrape] = []
        self._refusals_reported: dict[str, int] = {}
        self._next_refusal_report = 0.0
        self.http: HttpServer | None = None

    def _mapper(self, config: MappingConfig) -> Mapper:
        built_in = self.options.built_in
        if built_in is None:
            return Mapper(config, self.options.cache_size)
        return built_in.mapper(config, self.options.cache_size)

    def _relay_stat(self, name: str) -> dict[str, float]:
        relay = self.relay
        return {} if relay is None else {relay.target: getattr(relay, name)}

    # -- start -----------------------------------------------------------------

    def start(self) -> None:
        options = self.options
        if not (options.listen_udp or options.listen_tcp or options.listen_unixgram):
            raise AerostatError("at least one of UDP, TCP or unixgram listeners must be set",
                                source="--statsd.listen-*")
        self._max_connections = _connection_cap(
            options.tcp_max_connections, options.web_max_connections)
        try:
            if options.listen_udp:
                self.udp = bind_udp(options.listen_udp, options.read_buffer)
                self._selector.register(self.udp, selectors.EVENT_READ, self._drain_udp)
            if options.listen_tcp:
                self.tcp = bind_tcp(options.listen_tcp)
                self._selector.register(self.tcp, selectors.EVENT_READ, self._accept_tcp)
            if options.listen_unixgram:
                self.unixgram = bind_unixgram(
                    options.listen_unixgram, options.unixsocket_mode, options.read_buffer
                )
                self._selector.register(self.unixgram, selectors.EVENT_READ, self._drain_unixgram)
                if not options.listen_unixgram.startswith("@"):
                    # what we bound, so that stop removes it and nothing else
                    created = os.stat(options.listen_unixgram)
                    self._unixgram_identity = (created.st_dev, created.st_ino)
            self._selector.register(self._wake_reader, selectors.EVENT_READ, self._run_requests)
            if options.relay_address:
                self.relay = Relay(options.relay_address, options.relay_packet_length)
            self.http = HttpServer(
                options.web_listen_address,
                Endpoints(
                    telemetry_path=options.telemetry_path,
                    render=self.render,
                    reload=self.request_reload,
                    quit=self.stop,
                    enable_lifecycle=options.enable_lifecycle,
                    refused=self._count_http_refusal,
                    healthy=self._loop_is_turning,
                ),
                max_connections=options.web_max_connections,
                idle_timeout=options.web_idle_timeout,
            )
        except AerostatError:
            self._close_sockets()
            raise
        self.http.start()
        # perf: an HTTP thread encoding or compressing a large response holds
        # the GIL for up to the switch interval while the reader waits and
        # datagrams pile up in the kernel. When scrapes still rendered in
        # HTTP threads, 0.5 ms instead of the default 5 ms turned 20 % loss
        # at 200k datagrams/s into none (bench_udp.py, 8 MiB buffer).
        sys.setswitchinterval(0.0005)
        # perf: every new series allocates a few container objects, and with
        # the default threshold (700) the collector ran so often that a flood
        # of new names cost 22 µs a line instead of 18 (300,000 names, one
        # core, /tmp measurements in the closing note of the hostile-input
        # issue); the store holds no reference cycles, so young collections
        # are rarely worth their cost
        gc.set_threshold(50_000, 20, 100)
        if self.udp is not None:
            self._report_read_buffer(self.udp)
        log.info(
            "Accepting StatsD traffic",
            extra={"fields": {
                "udp": _address(self.udp), "tcp": _address(self.tcp),
                "unixgram": options.listen_unixgram or None,
            }},
        )
        host, port = self.http.address
        log.info("Accepting Prometheus requests", extra={"fields": {"addr": f"{host}:{port}"}})

    def _report_read_buffer(self, sock: socket.socket) -> None:
        granted = read_buffer_bytes(sock)
        asked = self.options.read_buffer
        fields = {"read_buffer_bytes": granted}
        if asked is not None and granted < asked:
            log.warning("The kernel granted a smaller UDP read buffer than asked for; raise "
                        "net.core.rmem_max", extra={"fields": {**fields, "asked": asked}})
        elif granted < 1024 * 1024:
            log.info("Small UDP read buffer: a pause of a few milliseconds under heavy load "
                     "drops datagrams (counted in aerostat_udp_kernel_drops_total); raise "
                     "net.core.rmem_max to 8388608 or more", extra={"fields": fields})
        else:
            log.debug("UDP read buffer", extra={"fields": fields})

    @property
    def http_port(self) -> int:
        assert self.http is not None
        return self.http.address[1]

    # -- the event loop -----------------------------------------------------------

    def serve_forever(self) -> None:
        self._owner = threading.get_ident()
        next_tick = time.monotonic() + _TICK_SECONDS
        select = self._selector.select
        try:
            while not self._stopping:
                self._last_turn = time.monotonic()
                timeout = 0.0 if self._scrapes else max(0.0, next_tick - self._last_turn)
                for key, _ in select(timeout):
                    key.data()
                if self._scrapes and self._scrapes[0].advance():
                    self._scrapes.pop(0)
                now = time.monotonic()
                if now >= next_tick:
                    self.tick(now)
                    next_tick = now + _TICK_SECONDS
            self._drain_on_stop()
        finally:
            self._close_sockets()
            self._owner = None
            for scrape in self._scrapes:
                while not scrape.advance():
                    pass
            self._stopped.set()

    def _drain_udp(self) -> None:
        assert self.udp is not None
        self.telemetry.udp_packets += self._drain(self.udp)

    def _drain_unixgram(self) -> None:
        assert self.unixgram is not None
        self.telemetry.unixgram_packets += self._drain(self.unixgram)

    def _drain(self, sock: socket.socket) -> int:
        """Reads what the socket holds, up to a batch, then processes it:
        two tight loops cost less per datagram than one that alternates.
        Source addresses are read only when a mapping rule needs senders."""
        batch: list[bytes] = []
        append = batch.append
        senders: list[object] | None = None
        try:
            budget = _BATCH_BYTES
            if self.pipeline.needs_senders:
                senders = []
                recvfrom, add_sender = sock.recvfrom, senders.append
                for _ in range(_BATCH):
                    data, address = recvfrom(65535)
                    append(data)
                    add_sender(address)
                    budget -= len(data)
                    if budget < 0:
                        break
            else:
                recv = sock.recv
                for _ in range(_BATCH):
                    data = recv(65535)
                    append(data)
                    budget -= len(data)
                    if budget < 0:
                        break
        except BlockingIOError:
            pass
        if self.relay is not None:
            self.relay.forward(batch)
        self._feed(batch, senders)
        return len(batch)

    def _feed(self, lines: list[bytes], senders: list[object] | None = None) -> None:
        """Feeds the pipeline; a bug in aerostat must cost one batch, never
        the process (the fuzz tests look for such bugs; this is the net)."""
        try:
            self.pipeline.feed_batch(lines, time.monotonic(), senders)
        except Exception:
            self.telemetry.internal_errors += 1
            _batch_errors.exception("Internal error while processing a batch; it was skipped",
                                    lines=len(lines))

    def _accept_tcp(self) -> None:
        assert self.tcp is not None
        try:
            connection, peer = self.tcp.accept()
        except BlockingIOError:
            return
        except OSError as error:
            self.telemetry.tcp_connection_errors += 1
            if error.errno in _OUT_OF_FDS:
                # the listener stays readable: without a pause the loop would
                # spin on accept() and starve everything else
                self._pause_accepting()
            return
        if len(self._connections) >= self._max_connections:
            connection.close()
            self.telemetry.tcp_connections_refused += 1
            return
        connection.setblocking(False)
        self.telemetry.tcp_connections += 1
        self._connections[connection] = LineAssembler()
        self._peers[connection] = peer
        self._last_read[connection] = time.monotonic()
        self._selector.register(
            connection, selectors.EVENT_READ, lambda: self._read_tcp(connection)
        )

    def _pause_accepting(self) -> None:
        assert self.tcp is not None
        self.telemetry.accept_backoffs += 1
        self._accept_paused_until = time.monotonic() + _ACCEPT_BACKOFF_SECONDS
        self._selector.unregister(self.tcp)

    def _resume_accepting(self, now: float) -> None:
        if self._accept_paused_until and now >= self._accept_paused_until and self.tcp:
            self._accept_paused_until = 0.0
            self._selector.register(self.tcp, selectors.EVENT_READ, self._accept_tcp)

    def _close_idle_connections(self, now: float) -> None:
        horizon = now - self.options.tcp_idle_timeout
        for connection, last in list(self._last_read.items()):
            if last < horizon:
                self._close_connection(connection)

    def _close_connection(self, connection: socket.socket) -> None:
        self._selector.unregister(connection)
        del self._connections[connection]
        self._peers.pop(connection, None)
        self._last_read.pop(connection, None)
        connection.close()

    def _loop_is_turning(self) -> bool:
        """False when the event loop is stuck: a liveness probe should see a
        wedged exporter, not only a dead one."""
        return self._owner is None or time.monotonic() - self._last_turn < _STALL_SECONDS

    def _count_http_refusal(self) -> None:
        self.telemetry.http_connections_refused += 1  # an int: safe from any thread

    def _read_tcp(self, connection: socket.socket) -> None:
        assembler = self._connections[connection]
        try:
            chunk = connection.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            self.telemetry.tcp_connection_errors += 1
            chunk = b""
        lines = assembler.feed(chunk) if chunk else [assembler.finish()]
        if self.relay is not None:
            self.relay.forward(lines)
        lines = [line for line in lines if line]
        self._feed(lines, [self._peers.get(connection)] * len(lines))
        self.telemetry.tcp_too_long_lines += assembler.too_long
        assembler.too_long = 0
        if chunk:
            self._last_read[connection] = time.monotonic()
        else:
            self._close_connection(connection)

    def tick(self, now: float) -> None:
        """Once a second: expire series, read the kernel's drop counter."""
        expired = self.store.expire(now)
        if expired:
            self.telemetry.series_expired += len(expired)
            self.pipeline.forget_series(expired)
        self._read_kernel_drops()
        self._resume_accepting(now)
        self._close_idle_connections(now)
        self._warn_at_limits()
        if now >= self._next_refusal_report:
            self._next_refusal_report = now + _REFUSAL_REPORT_SECONDS
            self._report_refusals()
            self._report_limits()

    def _limit_counts(self) -> dict[str, tuple[float, str]]:
        """What is lost at a limit, so far, and what to do about it."""
        t = self.telemetry
        return {
            "series_limit": (t.series_refused.get("series", 0),
                             "raise --statsd.max-series, or drop the metrics with most series "
                             "(aerostat_series, and a mapping with action: drop)"),
            "bytes_limit": (t.series_refused.get("bytes", 0),
                            "raise --statsd.max-series-bytes, or find the senders of long "
                            "label values"),
            "kernel_drops": (t.udp_kernel_drops,
                             "the exporter cannot keep up: raise net.core.rmem_max and "
                             "--statsd.read-buffer, or spread the senders over more exporters"),
            "tcp_refused": (t.tcp_connections_refused,
                            "raise --statsd.tcp-max-connections (and the file-descriptor limit)"),
            "http_refused": (t.http_connections_refused, "raise --web.max-connections"),
            "accept_backoffs": (t.accept_backoffs,
                                "the process ran out of file descriptors: raise its limit "
                                "(ulimit -n) or lower --statsd.tcp-max-connections"),
        }

    def _warn_at_limits(self) -> None:
        """The first time something is lost at a limit: one warning, at once."""
        for name, (count, advice) in self._limit_counts().items():
            if count and name not in self._limits_warned:
                self._limits_warned.add(name)
                self._limits_reported[name] = count
                log.warning("Input is being lost at a limit: %s", advice,
                            extra={"fields": {"limit": name, "count": int(count)}})

    def _report_limits(self) -> None:
        """Then what was lost since, in the periodic summary."""
        grown = {}
        for name, (count, _) in self._limit_counts().items():
            before = self._limits_reported.get(name, count)
            if count > before:
                grown[name] = int(count - before)
            self._limits_reported[name] = count
        if grown:
            log.warning("Input lost at limits since the last report (see aerostat_* metrics)",
                        extra={"fields": grown})

    def _report_refusals(self) -> None:
        """One warning for all input refused since the last one: enough for
        an operator to notice a misbehaving sender, never a flood (each line
        is logged at debug level)."""
        current = dict(self.telemetry.sample_errors)
        new = {reason: count - self._refusals_reported.get(reason, 0)
               for reason, count in current.items()}
        new = {reason: count for reason, count in sorted(new.items()) if count}
        self._refusals_reported = current
        if new:
            log.warning("Refused StatsD input (see statsd_exporter_sample_errors_total; "
                        "--log.level=debug shows the lines)", extra={"fields": new})

    def _read_kernel_drops(self) -> None:
        if self.udp is not None:
            drops = udp_kernel_drops(self.udp)
            if drops is not None:
                self.telemetry.udp_kernel_drops = drops

    # -- requests from other threads -------------------------------------------------

    def _run_requests(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_reader.recv(4096):
                pass
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            request()

    def _call_in_loop(self, function: Callable[[], None]) -> None:
        """Runs ``function`` on the event loop and waits for it."""
        if self._owner is None or self._owner == threading.get_ident():
            function()
            return
        done = threading.Event()

        def request() -> None:
            try:
                function()
            finally:
                done.set()

        self._requests.put(request)
        self._wake()
        while not done.wait(0.5):
            if self._stopped.is_set():  # the loop ended before taking it
                request()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def reload(self) -> str | None:
        """Re-reads the mapping file; on failure keeps the old mapping.
        Returns None on success, else the reason. Call on the event loop."""
        try:
            config = load_config(self.options.mapping_config)
        except AerostatError as error:
            self.telemetry.config_reloads["failure"] += 1
            log.error("Error reloading config: %s", error)
            return str(error)
        self.mapper = self._mapper(config)
        self.pipeline.set_mapper(self.mapper)
        self.telemetry.loaded_mappings = len(self.mapper.rules)
        self.telemetry.config_reloads["success"] += 1
        log.info("Reloaded mapping config", extra={"fields": {"mappings": len(config.rules)}})
        return None

    def schedule_reload(self) -> None:
        """Reloads at the loop's next turn; safe from a signal handler."""
        self._requests.put(self._reload_quietly)
        self._wake()

    def _reload_quietly(self) -> None:
        self.reload()  # the outcome is logged and counted by reload()

    def request_reload(self) -> str | None:
        outcome: list[str | None] = []
        self._call_in_loop(lambda: outcome.append(self.reload()))
        return outcome[0]

    def stop(self) -> None:
        """Asks the loop to finish: it drains what the sockets hold, then closes."""
        self._stopping = True
        self._wake()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _drain_on_stop(self) -> None:
        """What the kernel already holds was sent before the stop: keep it."""
        udp_before = unix_before = -1
        while (self.udp is not None and self.telemetry.udp_packets != udp_before) or (
            self.unixgram is not None and self.telemetry.unixgram_packets != unix_before
        ):
            udp_before = self.telemetry.udp_packets
            unix_before = self.telemetry.unixgram_packets
            if self.udp is not None:
                self._drain_udp()
            if self.unixgram is not None:
                self._drain_unixgram()
        self._read_kernel_drops()
        self._report_refusals()
        for connection in list(self._connections):
            self._read_tcp(connection)

    def _close_sockets(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        for sock in (self.udp, self.tcp, self.unixgram, *self._connections):
            if sock is not None:
                sock.close()
        self._last_read.clear()
        if self.relay is not None:
            self.relay.close()
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()
        self._connections.clear()
        self._peers.clear()
        path = self.options.listen_unixgram
        if self.unixgram is not None and self._unixgram_identity is not None:
            with contextlib.suppress(OSError):
                found = os.lstat(path)
                # only the socket aerostat made: a file put there since stays
                if stat.S_ISSOCK(found.st_mode) and (
                    (found.st_dev, found.st_ino) == self._unixgram_identity
                ):
                    os.unlink(path)
        self.unixgram = None

    # -- scrapes ----------------------------------------------------------------------

    def render(self, openmetrics: bool) -> str:
        """The exposition. From another thread (HTTP), the event loop renders
        it in slices between reads of its sockets: rendering in the HTTP
        thread made the reader wait for the GIL after every recv(), and the
        kernel dropped datagrams during scrapes (benchmarks/README.md)."""
        scrape = _Scrape(self._exposition(openmetrics))
        if self._owner is None or self._owner == threading.get_ident() or self._stopping:
            while not scrape.advance():
                pass
        else:
            self._requests.put(lambda: self._scrapes.append(scrape))
            self._wake()
            while not scrape.done.wait(0.5):
                if self._stopped.is_set():  # the loop ended before taking it
                    while not scrape.advance():
                        pass
        return "".join(scrape.chunks)

    def _exposition(self, openmetrics: bool) -> Iterator[str]:
        yield from exposition_lines(self.store, openmetrics=openmetrics, now=time.monotonic())
        generate = generate_openmetrics if openmetrics else generate_text
        # in OpenMetrics, the own output ends with the one # EOF
        own: bytes = generate(self.registry)
        yield own.decode("utf-8")


def _connection_cap(wanted: int, web_connections: int) -> int:
    """StatsD TCP connections allowed at once: what was asked for, within the
    file-descriptor limit, so that the process never runs out of descriptors
    for its own scrapes. The soft limit is first raised to the hard one, as
    Go programs (statsd_exporter among them) do at start."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            with contextlib.suppress(ValueError, OSError):
                target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ValueError, OSError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    room = soft - _RESERVED_FDS - web_connections - _open_descriptors()
    return max(1, min(wanted, room))


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


def _address(sock: socket.socket | None) -> str | None:
    if sock is None:
        return None
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"
