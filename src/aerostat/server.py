"""The exporter's lifecycle: start, the event loop, tick, reload, drain, stop.

One thread (the caller of ``serve_forever``) owns the store: it runs every
source (aerostat.wire's sockets) and every mutation, including reloads
asked for over HTTP, and renders scrapes in slices between reads. HTTP
requests are answered from their own threads and only read."""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Hashable

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from aerostat import __version__
from aerostat.addresses import redact_url
from aerostat.counters import Telemetry
from aerostat.errors import AerostatError
from aerostat.events import Event
from aerostat.expose.http import Endpoints, HttpServer
from aerostat.expose.losses import LossReporter
from aerostat.expose.scrapes import Scrapes
from aerostat.expose.status import (
    NAME_ROWS,
    Limits,
    MappingState,
    Rates,
    Status,
    gather_flows,
    gather_names,
    gather_processes,
    traffic_counts,
)
from aerostat.expose.telemetry import TelemetryCollector, Vitals
from aerostat.frontend import build_mapper
from aerostat.logs import RateLimited
from aerostat.mapper import MappingConfig, load_mapping_config
from aerostat.options import ServerOptions
from aerostat.otlp import DecodeLimits, OtlpSettings, OtlpSource
from aerostat.pipeline import Pipeline
from aerostat.store import FirstValueHold, Store
from aerostat.webconfig import WebGuard
from aerostat.wire import (
    Relay,
    Source,
    TcpSource,
    UdpSource,
    UnixgramSource,
    bind_tcp,
    bind_udp,
    bind_unixgram,
    connection_cap,
    describe_read_buffer,
    socket_identity,
)

log = logging.getLogger("aerostat")

_TICK_SECONDS = 1.0
# /-/healthy answers 503 when the event loop has not come round for this long
_STALL_SECONDS = 10.0

_batch_errors = RateLimited(log, per_second=1)

# resource attributes that name an Airflow deployment over OTLP, first found
# wins (``OTEL_RESOURCE_ATTRIBUTES=deployment=prod``); a prefix in the
# metric names (``otel_prefix = airflow.prod``) works as over StatsD
OTLP_DEPLOYMENT_KEYS = ("deployment", "service.namespace")


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
        self.telemetry = Telemetry()
        config = load_config(options.mapping_config)
        self.mapper = build_mapper(config, options.built_in, options.cache_size)
        self.telemetry.loaded_mappings = len(self.mapper.rules)
        # for the status page: the mapping's story, the rates' ring, links
        # to the rest of a stack (set_links)
        self._started = time.monotonic()
        self._mapping_loaded = (time.time(), len(config.rules))
        self._reload_failure: tuple[str, float] | None = None
        self.rates = Rates()
        self.links: tuple[tuple[str, str], ...] = ()
        self.store = Store(max_series=options.max_series, max_bytes=options.max_series_bytes)
        self.store.hold = FirstValueHold(options.new_series_hold, time.monotonic())
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
        self.vitals = Vitals(self.telemetry, self.store, self.pipeline, sockets=True)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(TelemetryCollector(self.vitals))
        # sources a built-in mapping adds (Airflow's REST API): made now, so
        # that the names they show are reserved; started with the sockets
        self._extra_sources: list[Source] = []
        extra = None if options.built_in is None else options.built_in.extra
        if extra is not None:
            made = extra(self.pipeline.top_up)
            self._extra_sources = list(made.sources)
            if made.collector is not None:
                self.registry.register(made.collector)
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
        self._last_turn = time.monotonic()
        self.scrapes = Scrapes(self.store, self.registry, self._wake, self._stopped,
                               created_timestamps=options.created_timestamps)
        self.losses = LossReporter(self.telemetry)
        self.sources: list[Source] = []
        self.relay: Relay | None = None
        self.udp: socket.socket | None = None
        self.udp_source: UdpSource | None = None
        self.tcp: socket.socket | None = None
        self.unixgram: socket.socket | None = None
        self.otlp: OtlpSource | None = None
        self.http: HttpServer | None = None
        self.guard: WebGuard | None = None  # --web.config.file, for every HTTP listener

    # -- start -----------------------------------------------------------------

    def start(self) -> None:
        options = self.options
        if not (options.listen_udp or options.listen_tcp or options.listen_unixgram
                or options.otlp_listen_address):
            raise AerostatError("at least one of UDP, TCP or unixgram listeners must be set",
                                source="--statsd.listen-*")
        try:
            # the web config first: a mistake in it fails the start, named
            self.guard = None if options.web_config_file is None else WebGuard(
                options.web_config_file)
            self._bind_sources()
            self.http = HttpServer(
                options.web_listen_address,
                Endpoints(
                    telemetry_path=options.telemetry_path,
                    render=self.scrapes.render,
                    render_protobuf=self.scrapes.render_protobuf,
                    reload=self.request_reload,
                    quit=self.stop,
                    enable_lifecycle=options.enable_lifecycle,
                    refused=self._count_http_refusal,
                    healthy=self._loop_is_turning,
                    status=self.request_status,
                    guard=self.guard,
                ),
                max_connections=options.web_max_connections,
                idle_timeout=options.web_idle_timeout,
            )
        except AerostatError:
            self._close()
            raise
        self.sources.extend(self._extra_sources)
        for source in self.sources:
            source.register(self._selector)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, self._run_requests)
        self.http.start()
        # perf: an HTTP thread encoding or compressing a large response holds
        # the GIL for up to the switch interval while the reader waits and
        # datagrams pile up in the kernel. When scrapes still rendered in
        # HTTP threads, 0.5 ms instead of the default 5 ms turned 20 % loss
        # at 200k datagrams/s into none (bench_udp.py, 8 MiB buffer).
        sys.setswitchinterval(0.0005)
        # perf: every new series allocates a few container objects, and with
        # the default threshold (700) the collector ran so often that a flood
        # of new names cost 22 µs a line instead of 18 (300,000 names, in
        # process); the store holds no reference cycles, so young
        # collections are rarely worth their cost
        gc.set_threshold(50_000, 20, 100)
        self._log_listening()

    def _bind_sources(self) -> None:
        options = self.options
        sink, telemetry = self._feed, self.telemetry
        if options.relay_address:
            self.relay = Relay(options.relay_address, options.relay_packet_length)
            self.vitals.relay = self.relay
        wants_senders = lambda: self.pipeline.needs_senders  # noqa: E731 - asked per read
        if options.listen_udp:
            self.udp = bind_udp(options.listen_udp, options.read_buffer)
            self.udp_source = UdpSource(self.udp, sink, telemetry, wants_senders, self.relay,
                                        batch_receive=not options.udp_single_receive)
            self.sources.append(self.udp_source)
        if options.listen_tcp:
            self.tcp = bind_tcp(options.listen_tcp)
            tcp = TcpSource(
                self.tcp, sink, telemetry,
                connection_cap(options.tcp_max_connections, options.web_max_connections),
                options.tcp_idle_timeout, self.relay,
            )
            self.sources.append(tcp)
            self.vitals.tcp = tcp
        if options.otlp_listen_address:
            self.otlp = OtlpSource(OtlpSettings(
                options.otlp_listen_address, options.otlp_max_body_bytes,
                options.otlp_stream_ttl,
                DecodeLimits(options.otlp_max_data_points, options.otlp_max_attributes),
                # with Airflow's knowledge, a resource can name the deployment
                OTLP_DEPLOYMENT_KEYS if options.built_in is not None else (),
                options.web_max_connections, options.web_idle_timeout, guard=self.guard,
            ), self._feed_events, telemetry)
            self.sources.append(self.otlp)
        if options.listen_unixgram:
            path = options.listen_unixgram
            self.unixgram = bind_unixgram(path, options.unixsocket_mode, options.read_buffer)
            self.sources.append(UnixgramSource(
                self.unixgram, sink, telemetry, wants_senders, self.relay, path,
                socket_identity(path),
            ))

    def _log_listening(self) -> None:
        if self.udp is not None:
            granted, level, message = describe_read_buffer(self.udp, self.options.read_buffer)
            fields: dict[str, object] = {"read_buffer_bytes": granted}
            if level == logging.WARNING:
                fields["asked"] = self.options.read_buffer
            log.log(level, message, extra={"fields": fields})
        if self.udp_source is not None:
            log.info("Receiving UDP with %s", self.udp_source.receive_call, extra={"fields": {
                "receive_call": self.udp_source.receive_call,
                "datagrams_per_call": self.udp_source.datagrams_per_call}})
        log.info("Accepting StatsD traffic", extra={"fields": {
            "udp": _address(self.udp), "tcp": _address(self.tcp),
            "unixgram": self.options.listen_unixgram or None,
        }})
        if self.otlp is not None:
            host, port = self.otlp.address
            log.info("Accepting OTLP/HTTP metrics", extra={"fields": {
                "addr": f"{host}:{port}", "path": "/v1/metrics"}})
        assert self.http is not None
        host, port = self.http.address
        guard = self.guard
        log.info("Accepting Prometheus requests", extra={"fields": {
            "addr": f"{host}:{port}", "tls": guard is not None and guard.tls,
            "basic_auth": guard is not None and bool(guard.config.users)}})

    @property
    def http_port(self) -> int:
        assert self.http is not None
        return self.http.address[1]

    # -- the event loop -----------------------------------------------------------

    def serve_forever(self) -> None:
        self._owner = self.scrapes.owner = threading.get_ident()
        next_tick = time.monotonic() + _TICK_SECONDS
        select = self._selector.select
        scrapes = self.scrapes
        try:
            while not self._stopping:
                self._last_turn = time.monotonic()
                timeout = 0.0 if scrapes.pending else max(0.0, next_tick - self._last_turn)
                for key, _ in select(timeout):
                    key.data()
                scrapes.advance()
                now = time.monotonic()
                if now >= next_tick:
                    self.tick(now)
                    next_tick = now + _TICK_SECONDS
            for source in self.sources:  # what they hold was sent before the stop
                source.drain()
            self.losses.final()
        finally:
            self._close()
            self._owner = self.scrapes.owner = None
            scrapes.finish_all()
            self._stopped.set()

    def _feed(self, lines: list[bytes], senders: list[Hashable] | None) -> None:
        """The sources' sink. A bug in aerostat must cost lines, never the
        process (the fuzz tests look for such bugs; this is the last net)."""
        try:
            self.pipeline.feed_batch(lines, time.monotonic(), senders)
        except Exception:
            self.telemetry.internal_errors += 1
            _batch_errors.exception("Internal error while processing a batch; it was skipped",
                                    lines=len(lines))

    def _feed_events(self, events: list[tuple[Event, Hashable]]) -> None:
        """The OTLP source's sink: events with their senders, each through
        the pipeline's one decision chain; a bug costs that event only."""
        now = time.monotonic()
        apply = self.pipeline.apply
        for event, sender in events:
            try:
                apply(event, now, sender)
            except Exception:
                self.telemetry.internal_errors += 1
                _batch_errors.exception("Internal error while processing an OTLP data point; "
                                        "it was skipped", name=event.name)

    def tick(self, now: float) -> None:
        """Once a second: expire series, let the sources look after
        themselves (kernel drops, idle connections), report losses."""
        expired = self.store.expire(now)
        if expired:
            self.telemetry.series_expired += len(expired)
            self.pipeline.forget_series(expired)
        for source in self.sources:
            source.tick(now)
        self.losses.tick(now)
        self.rates.tick(now, traffic_counts(self.telemetry))

    def _loop_is_turning(self) -> bool:
        """False when the event loop is stuck: a liveness probe should see a
        wedged exporter, not only a dead one."""
        return self._owner is None or time.monotonic() - self._last_turn < _STALL_SECONDS

    def _count_http_refusal(self) -> None:
        self.telemetry.http_connections_refused += 1  # an int: safe from any thread

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
            self._reload_failure = (str(error), time.time())
            log.error("Error reloading config: %s", error)
            return str(error)
        self._mapping_loaded = (time.time(), len(config.rules))
        self._reload_failure = None
        self.mapper = build_mapper(config, self.options.built_in, self.options.cache_size)
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

    # -- the status page ------------------------------------------------------------

    def set_links(self, links: dict[str, str]) -> None:
        """Links the status page shows beside its own (name → URL): the
        Prometheus and Grafana that ``aerostat up`` started. Credentials in
        a URL are taken out here, before anything can show them."""
        self.links = tuple((name, redact_url(url)) for name, url in links.items())

    def status(self) -> Status:
        """The status page's figures. Call on the event loop (it reads the
        store and the counters' dicts, which the loop changes)."""
        now, wall = time.monotonic(), time.time()
        offset = wall - now
        telemetry, store = self.telemetry, self.store
        counts = traffic_counts(telemetry)
        traffic, losses = gather_flows(counts, self.rates.per_second(now, counts))
        unmapped, dropped, twins = (telemetry.unmapped_names, telemetry.dropped_names,
                                    telemetry.twin_names)
        loaded_at, file_rules = self._mapping_loaded
        failure = self._reload_failure
        return Status(
            version=__version__,
            generated_at=wall,
            uptime=now - self._started,
            telemetry_path=self.options.telemetry_path,
            senders_known=self.pipeline.needs_senders,
            deployments=gather_processes(store, now, offset),
            traffic=traffic,
            losses=losses,
            unmapped=gather_names(unmapped.top(NAME_ROWS), counts["unmapped"], unmapped.total,
                                  unmapped.slots, offset),
            dropped=gather_names(dropped.top(NAME_ROWS), counts["dropped"], dropped.total,
                                 dropped.slots, offset),
            twins=gather_names(twins.top(NAME_ROWS), None, twins.total,
                               twins.slots, offset),
            limits=Limits(store.series_count, store.max_series, store.bytes, store.max_bytes,
                          telemetry.series_refused.get("series", 0),
                          telemetry.series_refused.get("bytes", 0)),
            mapping=MappingState(
                path=self.options.mapping_config, loaded_at=loaded_at,
                rules=len(self.mapper.rules), file_rules=file_rules,
                reloads=telemetry.config_reloads.get("success", 0),
                reload_failures=telemetry.config_reloads.get("failure", 0),
                last_failure=None if failure is None else failure[0],
                last_failure_at=None if failure is None else failure[1],
            ),
            links=self.links,
        )

    def request_status(self) -> Status:
        """``status()`` from any thread: gathered on the loop, as a reload."""
        found: list[Status] = []
        self._call_in_loop(lambda: found.append(self.status()))
        return found[0]

    def stop(self) -> None:
        """Asks the loop to finish: it drains what the sockets hold, then closes."""
        self._stopping = True
        self._wake()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _close(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        for source in self.sources:
            source.close()
        for sock in (self.udp, self.tcp, self.unixgram):
            if sock is not None:
                sock.close()  # bound, but no source yet if start() failed
        if self.relay is not None:
            self.relay.close()
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()


def _address(sock: socket.socket | None) -> str | None:
    if sock is None:
        return None
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"
