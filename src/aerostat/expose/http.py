"""HTTP endpoints: the metrics path, health, readiness, lifecycle, and the
status page at ``/`` with its JSON twin (status.py).

Served from threads, at most --web.max-connections at once; a scrape is
handed to the event loop, which renders it between reads (scrapes.py), and
so are lifecycle calls."""

from __future__ import annotations

import gzip
import html
import logging
import socket
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from aerostat.expose.status import STATUS_JSON_PATH, Status, render_html, render_json
from aerostat.listener import bind_http
from aerostat.webconfig import WebGuard

log = logging.getLogger("aerostat.http")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the HTTP side can ask of the rest of the server."""

    telemetry_path: str
    render: Callable[[bool, Hashable], str]  # (openmetrics?, scraper) → exposition
    reload: Callable[[], str | None]  # None on success, else why it failed
    quit: Callable[[], None]
    enable_lifecycle: bool
    refused: Callable[[], None] = lambda: None  # a connection closed at the cap
    healthy: Callable[[], bool] = lambda: True  # is the event loop coming round?
    # the status page's figures, gathered on the event loop; None: a bare page
    status: Callable[[], Status] | None = None
    # --web.config.file: TLS, basic auth and headers for every path; None: none
    guard: WebGuard | None = None
    # scraper → the delimited protobuf exposition (native histograms); None:
    # the text formats only
    render_protobuf: Callable[[Hashable], bytes] | None = None


def _weights(header: str) -> dict[str, float]:
    """``type;q=0.5, other`` → {type: 0.5, other: 1.0}: RFC 9110 quality
    values, the highest one kept when a type is listed twice."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        token, *params = (piece.strip() for piece in part.split(";"))
        if not token:
            continue
        weight = 1.0
        for param in params:
            key, _, text = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(text)
                except ValueError:
                    weight = 0.0
        token = token.lower()
        weights[token] = max(weight, weights.get(token, 0.0))
    return weights


def wants_openmetrics(accept: str) -> bool:
    """OpenMetrics when the client lists it, not at q=0, and not below the
    classic text format."""
    weights = _weights(accept)
    wanted = weights.get("application/openmetrics-text", 0.0)
    return wanted > 0.0 and wanted >= weights.get("text/plain", 0.0)


PROTOBUF_TYPE = "application/vnd.google.protobuf"


def wants_protobuf(accept: str) -> bool:
    """The delimited MetricFamily protobuf when the client lists it (with
    those parameters), not at q=0, and above neither text format: what
    Prometheus asks for with its native histograms on."""
    wanted = 0.0
    for part in accept.split(","):
        token, *params = (piece.strip() for piece in part.split(";"))
        if token.lower() != PROTOBUF_TYPE:
            continue
        found = {key.strip().lower(): value.strip()
                 for key, _, value in (param.partition("=") for param in params)}
        if (found.get("proto") != "io.prometheus.client.MetricFamily"
                or found.get("encoding") != "delimited"):
            continue
        try:
            wanted = max(wanted, float(found.get("q", "1")))
        except ValueError:
            continue
    weights = _weights(accept)
    return wanted > 0.0 and wanted >= max(weights.get("application/openmetrics-text", 0.0),
                                          weights.get("text/plain", 0.0))


def accepts_gzip(accept_encoding: str) -> bool:
    weights = _weights(accept_encoding)
    weight = weights.get("gzip")
    return (weights.get("*", 0.0) if weight is None else weight) > 0.0


class _Handler(BaseHTTPRequestHandler):
    server_version = "aerostat"
    endpoints: Endpoints

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s", format % args)

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
               compress: bool = False, headers: tuple[tuple[str, str], ...] = ()) -> None:
        if compress and accepts_gzip(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=1)
            self.send_response(status)
            self.send_header("Content-Encoding", "gzip")
        else:
            self.send_response(status)
        guard = self.endpoints.guard
        for name, value in (*headers, *(() if guard is None else guard.headers())):
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refused(self) -> bool:
        """Answers the request itself when the web config refuses it (no or
        wrong credentials: 401, as exporter-toolkit); every path is guarded."""
        guard = self.endpoints.guard
        if guard is None:
            return False
        refusal = guard.admit(self.headers.get("Authorization"))
        if refusal is None:
            return False
        self._reply(refusal.status, refusal.body, headers=refusal.headers)
        return True

    def do_GET(self) -> None:
        if self._refused():
            return
        path = self.path.split("?", 1)[0]
        endpoints = self.endpoints
        if path == endpoints.telemetry_path:
            from aerostat.expose.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE

            accept = self.headers.get("Accept", "")
            if endpoints.render_protobuf is not None and wants_protobuf(accept):
                from aerostat.expose.protobuf import PROTOBUF_CONTENT_TYPE

                self._reply(200, endpoints.render_protobuf(self._scraper()),
                            PROTOBUF_CONTENT_TYPE, compress=True)
                return
            openmetrics = wants_openmetrics(accept)
            body = endpoints.render(openmetrics, self._scraper()).encode("utf-8")
            content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            self._reply(200, body, content_type, compress=True)
        elif path == "/-/healthy":
            if endpoints.healthy():
                self._reply(200, b"Statsd Exporter is Healthy.\n")
            else:
                self._reply(503, b"The event loop is stuck: no StatsD is being read.\n")
        elif path == "/-/ready":
            self._reply(200, b"Statsd Exporter is Ready.\n")
        elif path in ("/-/reload", "/-/quit"):
            self._reply(405, b"Use POST or PUT.\n")
        elif path == "/":
            if endpoints.status is None:
                body = _landing_page(endpoints.telemetry_path)
            else:
                body = render_html(endpoints.status()).encode("utf-8")
            self._reply(200, body, "text/html; charset=utf-8", compress=True)
        elif path == STATUS_JSON_PATH and endpoints.status is not None:
            self._reply(200, render_json(endpoints.status()).encode("utf-8"),
                        "application/json", compress=True)
        else:
            self._reply(404, b"Not found.\n")

    do_HEAD = do_GET

    def _scraper(self) -> Hashable:
        """Who scrapes, as well as a request tells: two Prometheus servers
        of an HA pair differ in address or in the scrape timeout they send
        (which follows their interval); ports change with every connection."""
        headers = self.headers
        return (self.client_address[0], headers.get("User-Agent", ""),
                headers.get("X-Prometheus-Scrape-Timeout-Seconds", ""))

    def do_POST(self) -> None:
        if self._refused():
            return
        path = self.path.split("?", 1)[0]
        endpoints = self.endpoints
        if path not in ("/-/reload", "/-/quit"):
            self._reply(405, b"Method not allowed.\n")
            return
        if not endpoints.enable_lifecycle:
            self._reply(403, b"Lifecycle API is not enabled (--web.enable-lifecycle).\n")
            return
        if path == "/-/reload":
            failure = endpoints.reload()
            if failure is None:
                self._reply(200, b"Reloaded.\n")
            else:
                self._reply(500, f"Reload failed: {failure}\n".encode())
        else:
            self._reply(200, b"Requesting termination... Goodbye!\n")
            endpoints.quit()

    do_PUT = do_POST


def _landing_page(telemetry_path: str) -> bytes:
    path = html.escape(telemetry_path)
    return (
        "<!DOCTYPE html><html><head><title>aerostat</title></head><body>"
        "<h1>aerostat</h1><p>StatsD to Prometheus bridge.</p><ul>"
        f'<li><a href="{path}">Metrics</a></li>'
        '<li><a href="/-/healthy">Health</a></li>'
        '<li><a href="/-/ready">Readiness</a></li></ul></body></html>\n'
    ).encode()


_Request = socket.socket | tuple[bytes, socket.socket]


class HttpServer:
    """Binds at construction (so a bad address fails at start), serves from a
    background thread."""

    def __init__(
        self,
        address: str,
        endpoints: Endpoints,
        max_connections: int = 64,
        idle_timeout: float = 30.0,
    ) -> None:
        # timeout: a connection that sends nothing for this long is closed
        handler = type("Handler", (_Handler,), {"endpoints": endpoints,
                                                "timeout": idle_timeout or None})
        self._server = bind_http(
            address, "--web.listen-address", handler, max_connections=max_connections,
            guard=endpoints.guard, idle_timeout=idle_timeout, on_refused=endpoints.refused,
            log=log)
        # a short poll keeps shutdown() quick; idle cost is ten wake-ups a second
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="aerostat-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
