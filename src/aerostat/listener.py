"""The HTTP listener every HTTP port of aerostat runs on (the metrics port,
the OTLP receiver): bound at construction, so that a bad address fails at
start with the flag's name; one thread per connection, at most
``max_connections`` at once; TLS and basic auth from --web.config.file in
the connection's own thread; a client that goes away is no error."""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aerostat.addresses import parse_address
from aerostat.errors import AerostatError
from aerostat.logs import RateLimited
from aerostat.webconfig import WebGuard


class BoundedHttpServer(ThreadingHTTPServer):
    """Past ``max_connections`` a connection is closed at once and counted
    (``on_refused``), so that a flood of connections cannot take every
    thread and descriptor."""

    daemon_threads = True
    allow_reuse_address = True
    max_connections = 64
    on_refused: Callable[[], None] = staticmethod(lambda: None)
    guard: WebGuard | None = None
    idle_timeout: float | None = None
    errors: RateLimited = RateLimited(logging.getLogger("aerostat.http"), per_second=1)

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # out of descriptors the listener stays readable: pause rather
                # than spin (serve_forever calls again when it polls)
                time.sleep(0.1)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.on_refused()
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            if self.guard is not None and isinstance(request, socket.socket):
                # the TLS handshake here, in the connection's thread: a slow
                # or silent client holds its own thread, never the acceptor
                secured = self.guard.secure(request, self.idle_timeout)
                if secured is None:
                    return
                request = secured
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a reset, a broken pipe: an exporter's
        kept connection as its process exits, a scraper that gave up) is
        logged at debug; anything else is aerostat's bug, logged once a
        second at most, never printed to stderr as socketserver would."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            self.errors.debug("HTTP connection ended", error=str(error))
            return
        self.errors.exception("Internal error answering an HTTP request")


def bind_http(
    address: str,
    flag: str,
    handler: type[BaseHTTPRequestHandler],
    *,
    max_connections: int = 64,
    guard: WebGuard | None = None,
    idle_timeout: float | None = None,
    on_refused: Callable[[], None] = lambda: None,
    log: logging.Logger | None = None,
) -> BoundedHttpServer:
    """A listener bound to ``address`` (the value of ``flag``, named in the
    error when it cannot be bound)."""
    family, host, port = parse_address(address, flag)
    attributes: dict[str, Any] = {
        "address_family": family,
        "max_connections": max(1, max_connections),
        "on_refused": staticmethod(on_refused),
        "guard": guard,
        "idle_timeout": idle_timeout or None,
    }
    if log is not None:
        attributes["errors"] = RateLimited(log, per_second=1)
    server_class: type[BoundedHttpServer] = type("Server", (BoundedHttpServer,), attributes)
    try:
        return server_class((host, port), handler)
    except OSError as error:
        raise AerostatError(f"cannot listen on {address}: {error.strerror}",
                            source=flag) from None
