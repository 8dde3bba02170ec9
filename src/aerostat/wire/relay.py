"""Forwarding the raw lines to another StatsD server (``--statsd.relay.address``),
so aerostat can sit in front of an existing pipeline.

As upstream: every non-empty line received on any listener, before parsing
(invalid lines too, tags untouched), newline-terminated, packed into
datagrams of at most ``packet_length`` bytes; a line that cannot fit alone
is dropped and counted. Unlike upstream, a batch is flushed as soon as it is
read (upstream waits up to a second) and a failed send is counted instead of
stopping the relay for good."""

from __future__ import annotations

import socket
from collections.abc import Iterable

from aerostat.addresses import parse_address
from aerostat.errors import AerostatError
from aerostat.framing import split_lines


class Relay:
    def __init__(self, address: str, packet_length: int = 1400) -> None:
        flag = "--statsd.relay.address"
        family, host, port = parse_address(address, flag)
        if packet_length < 2:
            raise AerostatError("must be at least 2 bytes", source="--statsd.relay.packet-length")
        self.target = address
        self.packet_length = packet_length
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._socket.connect((host or "127.0.0.1", port))
        except OSError as error:
            self._socket.close()
            raise AerostatError(f"cannot relay to {address}: {error.strerror}",
                                source=flag) from None
        self._socket.setblocking(False)
        self._pending = bytearray()
        self.packets = 0
        self.lines = 0
        self.long_lines = 0
        self.send_errors = 0

    def forward(self, chunks: Iterable[bytes]) -> None:
        """Datagrams or lines as received; sends them on, packed."""
        limit = self.packet_length
        pending = self._pending
        for chunk in chunks:
            for line in split_lines(chunk):
                if len(line) + 1 > limit:
                    self.long_lines += 1
                    continue
                if len(pending) + len(line) + 1 > limit:
                    self._send()
                pending += line
                pending += b"\n"
                self.lines += 1
        self._send()

    def _send(self) -> None:
        if not self._pending:
            return
        try:
            self._socket.send(self._pending)
            self.packets += 1
        except OSError:
            self.send_errors += 1  # e.g. nobody listening yet: the next batch tries again
        self._pending.clear()

    def close(self) -> None:
        self._socket.close()
