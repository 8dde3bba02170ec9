"""``host:port`` flags as statsd_exporter takes them (``:9125``, ``[::1]:9125``)."""

from __future__ import annotations

import socket

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
