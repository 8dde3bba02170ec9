"""The OTLP/HTTP receiver as a source: ``POST /v1/metrics`` answered from
HTTP threads, which only read and decode (aerostat.otlp.decode, pure); the
data points are handed to the event loop, which owns the cumulative
streams (aerostat.otlp.streams) and the store, through a queue and a wake-up
socket the loop's selector watches.

Answers follow the OTLP/HTTP specification: 200 with an
ExportMetricsServiceResponse in the request's encoding (its partial_success
counts the data points refused and says why), 400 for a body that is not
a request, 413 for one over --otlp.max-body-bytes (compressed or not), 415
for another content type, 405 for another method, 404 for another path,
503 when the loop is behind (retryable: the exporter sends it again)."""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import NamedTuple

from google.protobuf.json_format import MessageToJson
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from aerostat.counters import Telemetry
from aerostat.errors import AerostatError
from aerostat.events import Event
from aerostat.listener import bind_http
from aerostat.otlp.decode import (
    JSON,
    PROTOBUF,
    BadRequest,
    DecodeLimits,
    Point,
    decode,
    read_request,
)
from aerostat.otlp.streams import Streams
from aerostat.webconfig import WebGuard

log = logging.getLogger("aerostat.otlp")

METRICS_PATH = "/v1/metrics"
# requests decoded but not yet taken by the loop; past it, 503
_QUEUE_DEPTH = 256

# where the events go: (event, sender) pairs, applied on the event loop
EventSink = Callable[[list[tuple[Event, Hashable]]], None]


@dataclass(frozen=True, slots=True)
class OtlpSettings:
    address: str
    max_body_bytes: int = 16 << 20
    stream_ttl: float = 600.0
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    deployment_keys: tuple[str, ...] = ()
    max_connections: int = 64
    idle_timeout: float = 30.0
    # --web.config.file: the same TLS and basic auth as the metrics port
    guard: WebGuard | None = None


class _Batch(NamedTuple):
    code: int
    points: list[Point]
    rejected: Counter[str]


class OtlpSource:
    """Binds at construction (a bad address fails at start); serves from a
    thread once registered."""

    def __init__(self, settings: OtlpSettings, sink: EventSink, telemetry: Telemetry) -> None:
        self.settings = settings
        self.sink = sink
        self.telemetry = telemetry
        self.streams = Streams(settings.stream_ttl)
        self._queue: queue.Queue[_Batch] = queue.Queue(_QUEUE_DEPTH)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self.overloaded = 0  # 503s, counted by the HTTP threads (an int)
        handler = type("Handler", (_Handler,), {
            "source": self, "timeout": settings.idle_timeout or None})
        try:
            self._server = bind_http(
                settings.address, "--otlp.listen-address", handler,
                max_connections=settings.max_connections, guard=settings.guard,
                idle_timeout=settings.idle_timeout, log=log)
        except AerostatError:
            self._wake_reader.close()
            self._wake_writer.close()
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="aerostat-otlp", daemon=True)
        telemetry.otlp_enabled = True

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    # -- the HTTP side (any thread) -------------------------------------------------

    def hand_over(self, batch: _Batch) -> bool:
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self.overloaded += 1
            return False
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")
        return True

    # -- the event loop's side ------------------------------------------------------

    def register(self, selector: selectors.BaseSelector) -> None:
        selector.register(self._wake_reader, selectors.EVENT_READ, self.read)
        self._thread.start()

    def read(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_reader.recv(4096):
                pass
        self._take()

    def _take(self) -> None:
        telemetry = self.telemetry
        streams = self.streams
        while True:
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                break
            telemetry.otlp_requests[str(batch.code)] += 1
            for reason, amount in batch.rejected.items():
                telemetry.otlp_rejected_points[reason] += amount
            telemetry.otlp_points += len(batch.points)
            now = time.monotonic()
            events = []
            for point in batch.points:
                event = streams.events(point, now)
                if event is not None:
                    events.append((event, point.sender))
            if events:
                self.sink(events)
        telemetry.otlp_streams = len(streams)
        telemetry.otlp_stale_points = streams.stale
        telemetry.otlp_rejected_points["too_many_streams"] = streams.refused
        if self.overloaded:
            telemetry.otlp_requests["503"] += self.overloaded
            self.overloaded = 0

    def count(self, code: int) -> None:
        """A request answered without data points (an error)."""
        self.hand_over(_Batch(code, [], Counter()))

    def tick(self, now: float) -> None:
        self._take()
        self.streams.expire(now)
        self.telemetry.otlp_streams = len(self.streams)

    def drain(self) -> None:
        self._take()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._wake_reader.close()
        self._wake_writer.close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "aerostat"
    protocol_version = "HTTP/1.1"  # exporters keep their connection
    source: OtlpSource

    def log_message(self, format: str, *args: object) -> None:
        log.debug("otlp %s", format % args)

    def _answer(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if code >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _fail(self, code: int, message: str, content_type: str = PROTOBUF) -> None:
        """An error: a google.rpc.Status in the request's encoding."""
        status = Status(code=_RPC_CODES.get(code, 3), message=message)
        self.source.count(code)
        if content_type == JSON:
            self._answer(code, MessageToJson(status, indent=None).encode(), JSON)
        else:
            self._answer(code, status.SerializeToString(), PROTOBUF)

    def _refused(self) -> bool:
        """Answers the request itself when the web config refuses it (no or
        wrong credentials: 401 with WWW-Authenticate)."""
        guard = self.source.settings.guard
        refusal = None if guard is None else guard.admit(self.headers.get("Authorization"))
        if refusal is None:
            return False
        # counted like any other refusal: a deployment pushing with a wrong
        # password loses everything, and the counter is where that shows
        self.source.count(refusal.status)
        self._discard(self.headers.get("Content-Length"))
        self.send_response(refusal.status)
        for name, value in refusal.headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(refusal.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(refusal.body)
        return True

    def do_POST(self) -> None:
        if self._refused():
            return
        path = self.path.split("?", 1)[0]
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        encoding = PROTOBUF if content_type != JSON else JSON
        length_text = self.headers.get("Content-Length")
        if path != METRICS_PATH:
            self._discard(length_text)
            self._fail(404, f"no such path: only POST {METRICS_PATH} is served", encoding)
            return
        if content_type not in (PROTOBUF, JSON):
            self._discard(length_text)
            self._fail(415, f"unsupported content type {content_type!r}: send {PROTOBUF} or "
                            f"{JSON}", encoding)
            return
        limit = self.source.settings.max_body_bytes
        try:
            length = int(length_text or "")
        except ValueError:
            self._fail(411 if length_text is None else 400,
                       "a request needs a Content-Length", encoding)
            return
        if length < 0:
            self._fail(400, "a negative Content-Length", encoding)
            return
        if length > limit:
            self._fail(413, f"body of {length} bytes is over the limit of {limit} "
                            "(--otlp.max-body-bytes)", encoding)
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            self.source.count(400)
            return  # the client went away
        content_encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if content_encoding == "gzip":
            try:
                body = _gunzip(body, limit)
            except _TooLarge:
                self._fail(413, f"body decompresses to more than {limit} bytes "
                                "(--otlp.max-body-bytes)", encoding)
                return
            except (zlib.error, EOFError):
                self._fail(400, "Content-Encoding is gzip but the body is not gzip", encoding)
                return
        elif content_encoding not in ("identity", ""):
            self._fail(415, f"unsupported Content-Encoding {content_encoding!r}: send gzip "
                            "or none", encoding)
            return
        source = self.source
        try:
            request = read_request(body, content_type)
            decoded = decode(request, source.settings.limits, source.settings.deployment_keys)
        except BadRequest as error:
            self._fail(400, str(error), encoding)
            return
        except RecursionError:
            self._fail(400, "malformed OTLP body: nested too deep", encoding)
            return
        if not source.hand_over(_Batch(200, decoded.points, decoded.rejected)):
            self._fail_uncounted(503, "aerostat is behind: retry later", encoding)
            return
        response = ExportMetricsServiceResponse()
        rejected = sum(decoded.rejected.values())
        if rejected:
            response.partial_success.rejected_data_points = rejected
            response.partial_success.error_message = decoded.message
        if content_type == JSON:
            self._answer(200, MessageToJson(response, indent=None).encode(), JSON)
        else:
            self._answer(200, response.SerializeToString(), PROTOBUF)

    def _fail_uncounted(self, code: int, message: str, content_type: str) -> None:
        status = Status(code=14, message=message)  # UNAVAILABLE
        body = (MessageToJson(status, indent=None).encode() if content_type == JSON
                else status.SerializeToString())
        self.send_response(code)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _discard(self, length_text: str | None) -> None:
        """Reads a refused body away (up to a limit) so that the client sees
        the answer rather than a reset; past the limit the connection closes."""
        try:
            length = int(length_text or "0")
        except ValueError:
            length = 0
        if 0 < length <= self.source.settings.max_body_bytes:
            self.rfile.read(length)
        self.close_connection = True

    def _not_allowed(self) -> None:
        if self._refused():
            return
        self.close_connection = True
        if self.path.split("?", 1)[0] != METRICS_PATH:
            self._fail(404, f"no such path: only POST {METRICS_PATH} is served")
            return
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.source.count(405)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_allowed


# HTTP status → google.rpc.Code, for the Status body
_RPC_CODES = {400: 3, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3}


class _TooLarge(Exception):
    pass


def _gunzip(body: bytes, limit: int) -> bytes:
    """The gzip body decompressed, never past ``limit`` bytes (a small body
    can inflate a thousandfold)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise _TooLarge
    if not inflater.eof:
        raise EOFError("truncated gzip body")
    return out


