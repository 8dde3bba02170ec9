"""Batch receive (recvmmsg through ctypes) on real sockets: every datagram
in order and whole, across many calls; senders exactly as recvfrom gives
them; the recv loop where recvmmsg is missing, chosen at start and logged;
and the same series from both paths."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Hashable, Iterator

import pytest

from aerostat.airflow import airflow_built_in
from aerostat.counters import Telemetry
from aerostat.wire import batch_receive, sources
from aerostat.wire.batch_receive import SLOTS, batch_receiver
from aerostat.wire.sources import UdpSource
from bridge import running_bridge

LARGEST_UDP_PAYLOAD = 65507  # IPv4: 65535 - 20 (IP) - 8 (UDP)


def _pair(family: socket.AddressFamily = socket.AF_INET
          ) -> tuple[socket.socket, socket.socket]:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    receiver.bind((host, 0))
    receiver.setblocking(False)
    sender = socket.socket(family, socket.SOCK_DGRAM)
    sender.bind((host, 0))
    return receiver, sender


@pytest.fixture
def udp() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver, sender = _pair()
    yield receiver, sender
    receiver.close()
    sender.close()


def _receive_all(receiver: socket.socket, expected: int,
                 senders: list[Hashable] | None = None) -> list[bytes]:
    batch = batch_receiver(receiver)
    assert batch is not None, "recvmmsg is in every Linux C library this runs on"
    got: list[bytes] = []
    deadline = time.monotonic() + 5
    while len(got) < expected and time.monotonic() < deadline:
        if not batch.receive(got, senders):
            time.sleep(0.01)
    batch.close()
    return got


def test_every_datagram_whole_and_in_order_across_calls(
        udp: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = udp
    sent = [f"airflow.ti.finish.dag_{n}.task.success:1|c".encode() * (1 + n % 5)
            for n in range(SLOTS * 3 + 7)]
    sent.append(b"")  # an empty datagram is a datagram too
    for datagram in sent:
        sender.sendto(datagram, receiver.getsockname())
    assert _receive_all(receiver, len(sent)) == sent


def test_the_largest_datagram_is_not_cut(udp: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = udp
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    largest = b"x" * (LARGEST_UDP_PAYLOAD - 4) + b":1|c"
    sender.sendto(b"a:1|c", receiver.getsockname())
    sender.sendto(largest, receiver.getsockname())
    sender.sendto(b"b:1|c", receiver.getsockname())
    batch = batch_receiver(receiver)
    assert batch is not None
    got: list[bytes] = []
    batch.receive(got, None)
    assert got == [b"a:1|c", largest, b"b:1|c"]
    assert batch.truncated == 0


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def test_senders_are_what_recvfrom_gives(family: socket.AddressFamily) -> None:
    receiver, first = _pair(family)
    second = socket.socket(family, socket.SOCK_DGRAM)
    second.bind((first.getsockname()[0], 0))
    with receiver, first, second:
        first.sendto(b"x:1|c", receiver.getsockname())
        second.sendto(b"y:1|c", receiver.getsockname())
        first.sendto(b"z:1|c", receiver.getsockname())
        senders: list[Hashable] = []
        assert _receive_all(receiver, 3, senders) == [b"x:1|c", b"y:1|c", b"z:1|c"]
        # what the recv loop reads for the same sockets
        first.sendto(b"w:1|c", receiver.getsockname())
        second.sendto(b"w:1|c", receiver.getsockname())
        time.sleep(0.05)
        by_recvfrom = [receiver.recvfrom(100)[1] for _ in range(2)]
    assert senders == [by_recvfrom[0], by_recvfrom[1], by_recvfrom[0]]
    assert senders[0] != senders[1]


def test_the_recv_loop_where_recvmmsg_is_missing(
        udp: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    receiver, sender = udp
    monkeypatch.setattr(batch_receive, "_recvmmsg", lambda: None)
    received: list[tuple[list[bytes], list[Hashable] | None]] = []
    source = UdpSource(receiver, lambda lines, who: received.append((lines, who)),
                       Telemetry(), lambda: True)
    assert (source.receive_call, source.datagrams_per_call, source.batch_receiver) == (
        "recv", 1, None)
    sender.sendto(b"a:1|c", receiver.getsockname())
    time.sleep(0.05)
    source.read()
    assert received == [([b"a:1|c"], [sender.getsockname()])]


def test_a_batch_stops_at_its_byte_budget(
        udp: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket full of large datagrams yields to the loop (and the scrapes)
    after BATCH_BYTES, as the recv loop does."""
    receiver, sender = udp
    monkeypatch.setattr(sources, "BATCH_BYTES", 100_000)
    batches: list[int] = []
    source = UdpSource(receiver, lambda lines, who: batches.append(len(lines)),
                       Telemetry(), lambda: False)
    assert source.receive_call == "recvmmsg"
    for _ in range(SLOTS * 4):
        sender.sendto(b"x" * 1000, receiver.getsockname())
    time.sleep(0.1)
    source.read()
    # whole calls of SLOTS datagrams until past 100,000 bytes
    assert batches == [SLOTS]
    source.drain()
    assert sum(batches) == SLOTS * 4
    assert source.telemetry.udp_packets == SLOTS * 4


@pytest.mark.parametrize("single", [False, True], ids=["recvmmsg", "recv"])
def test_the_server_logs_its_choice(single: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="aerostat"), \
            running_bridge(udp_single_receive=single) as bridge:
        bridge.settle()
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Receiving UDP")]
    fields = record.fields  # type: ignore[attr-defined]
    assert fields == ({"receive_call": "recv", "datagrams_per_call": 1} if single
                      else {"receive_call": "recvmmsg", "datagrams_per_call": SLOTS})


def test_both_paths_give_the_same_series() -> None:
    """Airflow's traffic from two processes (the mapping reads senders), a
    multi-line datagram, a malformed line: the same /metrics either way."""
    datagrams = [b"airflow.scheduler_heartbeat:1|c", b"airflow.executor.open_slots:16|g",
                 b"airflow.ti.finish.etl.load.success:1|c\nairflow.dagrun.duration.success."
                 b"etl:1200|ms", b"broken:x|c", b"airflow.pool.open_slots.default_pool:128|g"]
    exposed = []
    for single in (False, True):
        with running_bridge(built_in=airflow_built_in(), udp_single_receive=single) as bridge:
            senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
            for sock in senders:
                sock.bind(("127.0.0.1", 0))
                for _ in range(SLOTS + 3):
                    for datagram in datagrams:
                        sock.sendto(datagram, bridge.udp_address)
                bridge.settle()
            samples = bridge.samples()
            # the senders' ports and the times of the last beats differ from
            # run to run: compared without them
            exposed.append(sorted(
                (name, tuple(sorted((k, v if k != "sender" else "p") for k, v in labels)), value)
                for (name, labels), value in samples.items() if "timestamp" not in name))
            assert any(("sender", f"127.0.0.1:{sock.getsockname()[1]}") in labels
                       for sock in senders for (_, labels) in samples)
            for sock in senders:
                sock.close()
    assert exposed[0] == exposed[1]
