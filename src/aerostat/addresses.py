"""``host:port`` flags as statsd_exporter takes them (``:9125``, ``[::1]:9125``),
and URLs made fit to show."""

from __future__ import annotations

import socket
import urllib.parse

from aerostat.errors import AerostatError


def parse_address(text: str, flag: str) -> tuple[socket.AddressFamily, str, int]:
    """Returns the address family, host and port; an empty host means every
    interface, as in Go's net.Listen."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        raise AerostatError(f"{text!r} is not host:port (e.g. :9125)", source=flag)
    try:
        port = int(port_text)
    except ValueError:
        raise AerostatError(
            f"port {port_text!r} of {text!r} is not a number", source=flag
        ) from None
    if not 0 <= port <= 65535:
        raise AerostatError(f"port {port} of {text!r} is out of range", source=flag)
    if host.startswith("[") and host.endswith("]"):
        return socket.AF_INET6, host[1:-1], port
    if host in ("", "0.0.0.0"):
        return socket.AF_INET, "0.0.0.0", port
    if ":" in host:
        return socket.AF_INET6, host, port
    return socket.AF_INET, host, port


def redact_url(url: str) -> str:
    """The URL without the credentials in it: a user and password (or a
    token in the user's place) become ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "(a URL that does not parse)"
    if "@" not in parts.netloc:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))
