"""The StatsD sources: binding the listeners statsd_exporter has (listeners),
reading them without blocking into the pipeline's one seam (sources), and
the relay that forwards what they read."""

from aerostat.wire.listeners import (
    LineAssembler,
    bind_tcp,
    bind_udp,
    bind_unixgram,
    connection_cap,
    describe_read_buffer,
    read_buffer_bytes,
    remove_own_socket,
    socket_identity,
    udp_kernel_drops,
)
from aerostat.wire.relay import Relay
from aerostat.wire.sources import (
    Sink,
    Source,
    TcpSource,
    UdpSource,
    UnixgramSource,
)

__all__ = [
    "LineAssembler",
    "Relay",
    "Sink",
    "Source",
    "TcpSource",
    "UdpSource",
    "UnixgramSource",
    "bind_tcp",
    "bind_udp",
    "bind_unixgram",
    "connection_cap",
    "describe_read_buffer",
    "read_buffer_bytes",
    "remove_own_socket",
    "socket_identity",
    "udp_kernel_drops",
]
