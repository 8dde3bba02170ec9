"""What an operator relies on over months: relay, TTL, the series limit,
reload without loss, the lifecycle API, socket hygiene, and overload."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aerostat.errors import AerostatError
from aerostat.server import Server
from bridge import LOOPBACK, running_bridge


def test_relay_forwards_raw_lines_packed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        target = f"127.0.0.1:{receiver.getsockname()[1]}"
        with running_bridge(relay_address=target, relay_packet_length=40) as bridge:
            bridge.send_udp(b"a:1|c\nnot a statsd line\r\nb:2|g|#k:v", b"x" * 60 + b":1|c",
                            b"c:3|ms")
            relayed = b""
            while relayed.count(b"\n") < 4:
                relayed += receiver.recv(65535)
            assert relayed == b"a:1|c\nnot a statsd line\nb:2|g|#k:v\nc:3|ms\n"
            assert bridge.counter("statsd_exporter_relay_lines_relayed_total", target=target) == 4
            assert bridge.counter("statsd_exporter_relay_long_lines_total", target=target) == 1
            packets = bridge.counter("statsd_exporter_relay_packets_total", target=target)
            assert 2 <= packets <= 3  # at most 40 bytes each
            assert bridge.samples()[("b", frozenset({("k", "v")}))] == 2  # and still exported


def wait_until_gone(bridge: object, name: str, timeout: float = 5.0) -> float:
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    while any(key[0] == name for key in bridge.samples()):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"{name} never expired"
        time.sleep(0.05)
    return time.monotonic() - start


def test_global_ttl_expires_idle_series() -> None:
    with running_bridge(ttl=0.5) as bridge:
        bridge.send_udp(b"idle:1|g", b"deleted.pool.slots:4|g")
        assert ("idle", frozenset()) in bridge.samples()
        wait_until_gone(bridge, "idle")
        assert bridge.counter("aerostat_series_expired_total") == 2
        bridge.send_udp(b"idle:2|g")  # comes back, from its new sample
        assert bridge.samples()[("idle", frozenset())] == 2


def test_mapping_ttl_beats_the_global_one(tmp_path: Path) -> None:
    config = tmp_path / "ttl.yml"
    config.write_text("mappings:\n- match: short.*\n  name: short_$1\n  ttl: 300ms\n")
    with running_bridge(mapping_config=str(config), ttl=3600) as bridge:
        bridge.send_udp(b"short.a:1|g", b"long:1|g")
        wait_until_gone(bridge, "short_a")
        assert ("long", frozenset()) in bridge.samples()


def test_series_limit_refuses_new_series_and_keeps_old_ones() -> None:
    with running_bridge(max_series=10) as bridge:
        bridge.send_udp(*[b"random.%d:1|g" % number for number in range(25)])
        kept = [key for key in bridge.samples() if key[0].startswith("random_")]
        assert len(kept) == 10
        assert bridge.counter("aerostat_series_refused_total", limit="series") == 15
        bridge.send_udp(b"random.0:7|g")  # an existing series still updates
        assert bridge.samples()[("random_0", frozenset())] == 7


def test_reload_loses_no_datagram(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yml", tmp_path / "b.yml"
    first.write_text("mappings:\n- match: other.*\n  name: other_a\n")
    second.write_text("mappings:\n- match: other.*\n  name: other_b\n")
    config = tmp_path / "mapping.yml"
    config.write_text(first.read_text())
    sent = 20_000
    with running_bridge(mapping_config=str(config), enable_lifecycle=True) as bridge:

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for number in range(sent):
                    sock.sendto(b"steady:1|c", bridge.udp_address)
                    if number % 50 == 0:
                        # a steady stream, not a burst: even the kernel's
                        # default 208 KiB buffer holds what arrives during a reload
                        time.sleep(0.002)

        sender = threading.Thread(target=send)
        sender.start()
        reloads = 0
        while sender.is_alive():
            config.write_text((second if reloads % 2 else first).read_text())
            status, _ = bridge.post("/-/reload")
            assert status == 200
            reloads += 1
        sender.join()
        bridge.wait_for_counter("statsd_exporter_udp_packets_total", sent)
        bridge.settle()
        assert reloads >= 5
        assert bridge.counter("aerostat_udp_kernel_drops_total") == 0
        assert bridge.samples()[("steady_total", frozenset())] == sent


def test_quit_stops_the_server() -> None:
    with running_bridge(enable_lifecycle=True) as bridge:
        status, _ = bridge.post("/-/quit")
        assert status == 200
        assert bridge.server.wait_stopped(5)


def test_unixgram_refuses_to_replace_a_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    from dataclasses import replace

    server = Server(replace(LOOPBACK, listen_unixgram=str(path)))
    with pytest.raises(AerostatError, match="not a socket"):
        server.start()
    assert path.read_text() == "precious"


def test_unixgram_replaces_a_stale_socket(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()  # the file stays behind, nobody listens
    with running_bridge(listen_unixgram=str(path), unixsocket_mode=0o660) as bridge:
        assert oct(path.stat().st_mode & 0o777) == oct(0o660)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"fresh:1|g", str(path))
        bridge.wait_for_counter("statsd_exporter_unixgram_packets_total", 1)


BLASTER = """
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lines = [b"airflow.pool.open_slots.p%d:%d|g" % (i % 50, i) for i in range(1000)]
lines += [b"airflow.dag_processing.total_parse_time:%d.5|ms" % i for i in range(100)]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for line in lines:
        try:
            sock.sendto(line, (host, port))
            sent += 1
        except OSError:
            pass
print(sent)
"""


def blast(address: tuple[str, int], seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", BLASTER, address[0], str(address[1]), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )


def test_kernel_drops_are_counted() -> None:
    """With a tiny receive buffer the kernel drops datagrams; every one of
    them shows in aerostat_udp_kernel_drops_total."""
    with running_bridge(read_buffer=4096) as bridge:
        sender = blast(bridge.udp_address, 1.0)
        out, _ = sender.communicate(timeout=30)
        sent = int(out)
        time.sleep(1.5)  # the kernel counter is read once a second
        bridge.settle()
        received = bridge.counter("statsd_exporter_udp_packets_total")
        dropped = bridge.counter("aerostat_udp_kernel_drops_total")
        assert dropped > 0
        assert received + dropped == sent


def test_overload_keeps_serving_and_counts_every_drop() -> None:
    """Two senders flat out, far beyond what one Python thread processes:
    the process stays up, memory stays bounded, scrapes answer within a
    second, and received + kernel drops == sent."""
    with running_bridge(read_buffer=1 << 20) as bridge:
        senders = [blast(bridge.udp_address, 3.0) for _ in range(2)]
        latencies = []
        while any(sender.poll() is None for sender in senders):
            start = time.monotonic()
            status, _, body = bridge.get("/metrics")
            latencies.append(time.monotonic() - start)
            assert status == 200 and b"statsd_exporter_udp_packets_total" in body
            time.sleep(0.2)
        sent = sum(int(sender.communicate(timeout=30)[0]) for sender in senders)
        time.sleep(1.5)
        bridge.settle()
        own = bridge.samples(own=True)
        received = own[("statsd_exporter_udp_packets_total", frozenset())]
        dropped = own[("aerostat_udp_kernel_drops_total", frozenset())]
        assert received + dropped == sent
        assert max(latencies) < 1.0, latencies
        assert len(latencies) >= 5
        assert own[("aerostat_series", frozenset())] == 51  # 50 pools and one timer
        assert own[("process_resident_memory_bytes", frozenset())] < 400e6


def test_many_tcp_connections_at_once() -> None:
    """Connections interleave their chunks, lines split across chunks."""
    with running_bridge() as bridge:
        connections = [socket.create_connection(bridge.tcp_address) for _ in range(20)]
        try:
            for _ in range(50):
                for index, connection in enumerate(connections):
                    # a line cut in two sends, other connections' bytes between
                    connection.sendall(b"tcp.conn%d:1|c\ntcp.half:" % index)
                for connection in connections:
                    connection.sendall(b"1|c\n")
        finally:
            for connection in connections:
                connection.close()
        bridge.wait_for_counter("statsd_exporter_lines_total", 20 * 50 * 2)
        bridge.settle()
        samples = bridge.samples()
        assert all(samples[(f"tcp_conn{index}_total", frozenset())] == 50 for index in range(20))
        assert samples[("tcp_half_total", frozenset())] == 1000
        assert bridge.counter("statsd_exporter_tcp_connections_total") == 20


def test_a_bug_costs_a_batch_not_the_process() -> None:
    """No input is known to crash the pipeline (tests/fuzz looks); should a
    bug do so, the server logs it, counts it and goes on. The bug is
    simulated, since no real input provokes one."""
    with running_bridge() as bridge:
        pipeline = bridge.server.pipeline
        real_feed = pipeline.feed_batch
        calls = []

        def buggy_once(lines: list[bytes], now: float, senders: object = None) -> None:
            calls.append(lines)
            if len(calls) == 1:
                raise RuntimeError("simulated bug")
            real_feed(lines, now, senders)  # type: ignore[arg-type]

        pipeline.feed_batch = buggy_once  # type: ignore[method-assign]
        bridge.send_udp(b"lost:1|g")
        bridge.send_udp(b"kept:1|g")
        assert bridge.counter("aerostat_internal_errors_total") == 1
        assert ("kept", frozenset()) in bridge.samples()
