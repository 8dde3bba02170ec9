"""Sources: the StatsD sockets, read without blocking, each feeding the
pipeline through one seam, a ``Sink`` (as statsd_exporter's listeners feed
its event handler). The server registers them with its selector and only
runs their lifecycle; the Airflow REST-API poller and the OTLP receiver
will be sources too."""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from aerostat.counters import Telemetry
from aerostat.wire.batch_receive import SLOTS as SLOTS_PER_CALL
from aerostat.wire.batch_receive import BatchReceiver, batch_receiver
from aerostat.wire.listeners import LineAssembler, remove_own_socket, udp_kernel_drops
from aerostat.wire.relay import Relay

log = logging.getLogger("aerostat")

# a drain of one socket yields to the others after this many datagrams ...
BATCH = 2048
# ... or after this many bytes: 2,048 datagrams of 60 KB of new samples would
# keep the loop (and every scrape) waiting for tens of seconds
BATCH_BYTES = 1 << 20
# out of file descriptors, accepting pauses this long instead of spinning on
# a listener that stays readable
ACCEPT_BACKOFF_SECONDS = 1.0
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Sink(Protocol):
    """Where a source delivers what it read: lines (or datagrams of lines),
    in order, with who sent each when the source knows."""

    def __call__(self, lines: list[bytes], senders: list[Hashable] | None) -> None: ...


class Source(Protocol):
    """What the server runs for every source: its lifecycle, nothing else."""

    def register(self, selector: selectors.BaseSelector) -> None: ...

    def tick(self, now: float) -> None: ...

    def drain(self) -> None:
        """Reads what is already there (at stop: it was sent before the stop)."""

    def close(self) -> None: ...


class DatagramSource:
    """A UDP or unixgram socket: one datagram is one or more lines. Reads up
    to a batch, then hands the batch over: two tight loops cost less per
    datagram than one that alternates. Source addresses are read only when
    the pipeline needs senders."""

    def __init__(
        self,
        sock: socket.socket,
        sink: Sink,
        telemetry: Telemetry,
        wants_senders: Callable[[], bool],
        relay: Relay | None = None,
    ) -> None:
        self.socket = sock
        self.sink = sink
        self.telemetry = telemetry
        self.wants_senders = wants_senders
        self.relay = relay
        # many datagrams per system call where the platform has recvmmsg
        # (UdpSource), one recv per datagram otherwise
        self.batch_receiver: BatchReceiver | None = None

    def register(self, selector: selectors.BaseSelector) -> None:
        selector.register(self.socket, selectors.EVENT_READ, self.read)

    def read(self) -> None:
        self.count(self._read_batch())

    def count(self, datagrams: int) -> None:
        raise NotImplementedError

    def _read_batch(self) -> int:
        if self.batch_receiver is not None:
            return self._receive_batch(self.batch_receiver)
        batch: list[bytes] = []
        append = batch.append
        senders: list[Hashable] | None = None
        try:
            budget = BATCH_BYTES
            if self.wants_senders():
                senders = []
                recvfrom, add_sender = self.socket.recvfrom, senders.append
                for _ in range(BATCH):
                    data, address = recvfrom(65535)
                    append(data)
                    add_sender(address)
                    budget -= len(data)
                    if budget < 0:
                        break
            else:
                recv = self.socket.recv
                for _ in range(BATCH):
                    data = recv(65535)
                    append(data)
                    budget -= len(data)
                    if budget < 0:
                        break
        except BlockingIOError:
            pass
        if self.relay is not None:
            self.relay.forward(batch)
        self.sink(batch, senders)
        return len(batch)

    def _receive_batch(self, receiver: BatchReceiver) -> int:
        """As the recv loop, SLOTS datagrams per system call."""
        batch: list[bytes] = []
        senders: list[Hashable] | None = [] if self.wants_senders() else None
        receive = receiver.receive
        budget = receiver.bytes + BATCH_BYTES
        while len(batch) < BATCH:
            if receive(batch, senders) < SLOTS_PER_CALL or receiver.bytes > budget:
                break  # the socket is empty, or the batch is big enough
        if self.relay is not None:
            self.relay.forward(batch)
        self.sink(batch, senders)
        return len(batch)

    def tick(self, now: float) -> None:
        pass

    def drain(self) -> None:
        while True:
            read = self._read_batch()
            self.count(read)
            if not read:
                return

    def close(self) -> None:
        self.socket.close()


class UdpSource(DatagramSource):
    """``batch_receive``: with recvmmsg where the platform has it (see
    aerostat.wire.batch_receive), else one recv per datagram; which one is
    in ``receive_call``."""

    def __init__(
        self,
        sock: socket.socket,
        sink: Sink,
        telemetry: Telemetry,
        wants_senders: Callable[[], bool],
        relay: Relay | None = None,
        batch_receive: bool = True,
    ) -> None:
        super().__init__(sock, sink, telemetry, wants_senders, relay)
        if batch_receive:
            self.batch_receiver = batch_receiver(sock)
        self.receive_call = "recv" if self.batch_receiver is None else "recvmmsg"
        self.datagrams_per_call = 1 if self.batch_receiver is None else SLOTS_PER_CALL

    def close(self) -> None:
        if self.batch_receiver is not None:
            self.batch_receiver.close()
        super().close()

    def count(self, datagrams: int) -> None:
        self.telemetry.udp_packets += datagrams

    def tick(self, now: float) -> None:
        self.read_kernel_drops()

    def read_kernel_drops(self) -> None:
        drops = udp_kernel_drops(self.socket)
        if drops is not None:
            self.telemetry.udp_kernel_drops = drops

    def drain(self) -> None:
        super().drain()
        self.read_kernel_drops()


class UnixgramSource(DatagramSource):
    """At close it removes its socket file, if that is still the one bound
    (``identity``: device and inode; None for an abstract socket)."""

    def __init__(
        self,
        sock: socket.socket,
        sink: Sink,
        telemetry: Telemetry,
        wants_senders: Callable[[], bool],
        relay: Relay | None,
        path: str,
        identity: tuple[int, int] | None,
    ) -> None:
        super().__init__(sock, sink, telemetry, wants_senders, relay)
        self.path = path
        self.identity = identity

    def count(self, datagrams: int) -> None:
        self.telemetry.unixgram_packets += datagrams

    def close(self) -> None:
        super().close()
        remove_own_socket(self.path, self.identity)


class TcpSource:
    """A TCP listener and its connections: a byte stream cut into lines.
    At most ``max_connections`` at once (more are closed and counted), idle
    ones closed after ``idle_timeout``; out of descriptors, accepting pauses
    rather than spinning on a listener that stays readable."""

    def __init__(
        self,
        listener: socket.socket,
        sink: Sink,
        telemetry: Telemetry,
        max_connections: int,
        idle_timeout: float,
        relay: Relay | None = None,
    ) -> None:
        self.listener = listener
        self.sink = sink
        self.telemetry = telemetry
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.relay = relay
        self.connections: dict[socket.socket, LineAssembler] = {}
        self._peers: dict[socket.socket, Hashable] = {}
        self._last_read: dict[socket.socket, float] = {}
        self._paused_until = 0.0
        self._selector: selectors.BaseSelector | None = None

    def register(self, selector: selectors.BaseSelector) -> None:
        self._selector = selector
        selector.register(self.listener, selectors.EVENT_READ, self.accept)

    def accept(self) -> None:
        assert self._selector is not None
        try:
            connection, peer = self.listener.accept()
        except BlockingIOError:
            return
        except OSError as error:
            self.telemetry.tcp_connection_errors += 1
            if error.errno in OUT_OF_DESCRIPTORS:
                self._pause()
            return
        if len(self.connections) >= self.max_connections:
            connection.close()
            self.telemetry.tcp_connections_refused += 1
            return
        connection.setblocking(False)
        self.telemetry.tcp_connections += 1
        self.connections[connection] = LineAssembler()
        self._peers[connection] = peer
        self._last_read[connection] = time.monotonic()
        self._selector.register(
            connection, selectors.EVENT_READ, lambda: self.read(connection)
        )

    def _pause(self) -> None:
        assert self._selector is not None
        self.telemetry.accept_backoffs += 1
        self._paused_until = time.monotonic() + ACCEPT_BACKOFF_SECONDS
        self._selector.unregister(self.listener)

    def read(self, connection: socket.socket) -> None:
        assembler = self.connections[connection]
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
        self.sink(lines, [self._peers.get(connection)] * len(lines))
        self.telemetry.tcp_too_long_lines += assembler.too_long
        assembler.too_long = 0
        if chunk:
            self._last_read[connection] = time.monotonic()
        else:
            self._close(connection)

    def _close(self, connection: socket.socket) -> None:
        assert self._selector is not None
        self._selector.unregister(connection)
        del self.connections[connection]
        self._peers.pop(connection, None)
        self._last_read.pop(connection, None)
        connection.close()

    def tick(self, now: float) -> None:
        if self._paused_until and now >= self._paused_until:
            assert self._selector is not None
            self._paused_until = 0.0
            self._selector.register(self.listener, selectors.EVENT_READ, self.accept)
        horizon = now - self.idle_timeout
        for connection, last in list(self._last_read.items()):
            if last < horizon:
                self._close(connection)

    def drain(self) -> None:
        for connection in list(self.connections):
            self.read(connection)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        self.connections.clear()
        self._peers.clear()
        self._last_read.clear()
        self.listener.close()
