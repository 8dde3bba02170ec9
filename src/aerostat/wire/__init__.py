"""Sockets: binding the listeners statsd_exporter has, reading them without
blocking, and the kernel's own count of what it dropped."""

from aerostat.wire.address import parse_address
from aerostat.wire.framing import split_lines
from aerostat.wire.listeners import (
    LineAssembler,
    bind_tcp,
    bind_udp,
    bind_unixgram,
    read_buffer_bytes,
    udp_kernel_drops,
)
from aerostat.wire.relay import Relay

__all__ = [
    "LineAssembler",
    "Relay",
    "bind_tcp",
    "bind_udp",
    "bind_unixgram",
    "parse_address",
    "read_buffer_bytes",
    "split_lines",
    "udp_kernel_drops",
]
