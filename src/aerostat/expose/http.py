"""HTTP endpoints: the metrics path, health, readiness, lifecycle, landing page.

Served from threads; a scrape only reads the store (the event loop is its
only writer) and lifecycle calls are handed to the event loop."""

from __future__ import annotations

import gzip
import html
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aerostat.errors import AerostatError
from aerostat.wire import parse_address

log = logging.getLogger("aerostat.http")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What the HTTP side can ask of the rest of the server."""

    telemetry_path: str
    render: Callable[[bool], str]  # openmetrics? → exposition
    reload: Callable[[], str | None]  # None on success, else why it failed
    quit: Callable[[], None]
    enable_lifecycle: bool


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


class _Handler(BaseHTTPRequestHandler):
    server_version = "aerostat"
    endpoints: Endpoints

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s", format % args)

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
               compress: bool = False) -> None:
        if compress and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=1)
            self.send_response(status)
            self.send_header("Content-Encoding", "gzip")
        else:
            self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        endpoints = self.endpoints
        if path == endpoints.telemetry_path:
            from aerostat.expose.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE

            openmetrics = wants_openmetrics(self.headers.get("Accept", ""))
            body = endpoints.render(openmetrics).encode("utf-8")
            content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
            self._reply(200, body, content_type, compress=True)
        elif path == "/-/healthy":
            self._reply(200, b"Statsd Exporter is Healthy.\n")
        elif path == "/-/ready":
            self._reply(200, b"Statsd Exporter is Ready.\n")
        elif path in ("/-/reload", "/-/quit"):
            self._reply(405, b"Use POST or PUT.\n")
        elif path == "/":
            self._reply(200, _landing_page(endpoints.telemetry_path), "text/html; charset=utf-8")
        else:
            self._reply(404, b"Not found.\n")

    do_HEAD = do_GET

    def do_POST(self) -> None:
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HttpServer:
    """Binds at construction (so a bad address fails at start), serves from a
    background thread."""

    def __init__(self, address: str, endpoints: Endpoints) -> None:
        family, host, port = parse_address(address, "--web.listen-address")
        handler = type("Handler", (_Handler,), {"endpoints": endpoints})
        server_class = type("Server", (_Server,), {"address_family": family})
        try:
            self._server = server_class((host, port), handler)
        except OSError as error:
            raise AerostatError(
                f"cannot listen on {address}: {error.strerror}", source="--web.listen-address"
            ) from None
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
