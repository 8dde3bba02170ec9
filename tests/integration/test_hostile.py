"""Hostile input, through real sockets against a running server: one
datagram must not freeze aerostat, lose the traffic beside it, or make it
grow without bound (issue: hostile input). Each test is one row of that
issue's table; each failed before the fix (the closing note says how)."""

from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from bridge import Bridge, running_bridge

LEGIT = [f"legit.{i}:1|c".encode() for i in range(50)]


def legit_total(bridge: Bridge) -> float:
    return sum(value for (name, _), value in bridge.samples().items()
               if name.startswith("legit_"))


def both_formats_parse(bridge: Bridge) -> None:
    """Both expositions parse with prometheus_client's own parsers, and hold
    no value that is not finite (but NaN for the quantiles of an empty
    summary window, as upstream)."""
    text = bridge.scrape_text()
    for family in parse_text(text):
        for sample in family.samples:
            if "quantile" not in sample.labels and not family.name.startswith(
                    ("statsd_", "aerostat_", "process_", "python_")):
                assert sample.value - sample.value == 0.0, sample
    status, _, body = bridge.get("/metrics", {"Accept": "application/openmetrics-text"})
    assert status == 200
    list(parse_openmetrics(body.decode()))
    promtool = shutil.which("promtool")
    if promtool:  # the tests' ./run installs it; promtool reads the text format
        checked = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                                 capture_output=True, timeout=30)
        assert b"error" not in checked.stderr.lower(), checked.stderr


def test_a_tiny_sample_rate_is_one_weighted_event_not_a_billion() -> None:
    """upstream repeats the observation int(1/rate) times: 10**9 here, which
    froze the event loop (1,000,000 took 7 s and 146 MB)."""
    with running_bridge() as bridge:
        bridge.send_udp(b"p:1|ms|@0.000000001", *LEGIT)
        samples = bridge.samples()
        weight = int(1 / 0.000000001)  # as upstream computes it: 999,999,999
        assert samples[("p_count", frozenset())] == weight
        assert samples[("p_sum", frozenset())] == pytest.approx(weight / 1000)
        assert legit_total(bridge) == len(LEGIT)
        assert bridge.counter("statsd_exporter_events_total", type="observer") == weight


def test_a_rate_that_overflows_costs_its_line_only() -> None:
    """``@1e-320`` raised OverflowError and took the rest of its batch."""
    with running_bridge() as bridge:
        bridge.send_tcp(b"before:1|c\nq:1|c|@1e-320\nt:1|ms|@1e-320\nafter:1|c\n")
        samples = bridge.samples()
        assert samples[("before_total", frozenset())] == samples[("after_total", frozenset())] == 1
        assert bridge.counter("statsd_exporter_sample_errors_total",
                              reason="invalid_sample_factor") == 2
        assert bridge.counter("aerostat_internal_errors_total") == 0


@pytest.mark.parametrize(
    ("lines", "refused"),
    [
        pytest.param([b"c:1e308|c|@0.5"], 1, id="counter-over-rate"),
        pytest.param([b"c:1e308|c", b"c:1e308|c"], 1, id="counter-sum"),
        pytest.param([b"g:1e308|g", b"g:+1e308|g", b"g:+1e308|g"], 2, id="gauge-delta"),
        pytest.param([b"h:-1e308|h", b"h:-1e308|h"], 1, id="histogram-negative-sum"),
        pytest.param([b"t:1e308|h|@0.5"], 1, id="weighted-observation-sum"),
    ],
)
def test_values_past_the_float_range_are_refused_and_both_formats_parse(
    lines: list[bytes], refused: int
) -> None:
    with running_bridge() as bridge:
        for line in lines:  # one at a time: the second one meets the first's series
            bridge.send_udp(line)
        bridge.send_udp(*LEGIT)
        assert bridge.counter("statsd_exporter_sample_errors_total",
                              reason="non_finite_value") == refused
        assert legit_total(bridge) == len(LEGIT)
        both_formats_parse(bridge)


def test_a_negative_histogram_sum_keeps_openmetrics_parseable() -> None:
    """One ``-5|h`` made every OpenMetrics scrape unparseable (a negative
    counter-like _sum); OpenMetrics then gets the buckets alone."""
    with running_bridge() as bridge:
        bridge.send_udp(b"h:-5|h", b"s:-5|ms")
        both_formats_parse(bridge)
        assert bridge.samples()[("h_sum", frozenset())] == -5  # the text format keeps it


def test_long_label_values_are_refused_before_they_take_memory() -> None:
    """5,000 series of 50 KB labels took 704 MB; now each is refused."""
    label = "x" * 50_000
    with running_bridge() as bridge:
        for i in range(20):
            bridge.send_udp(f"big,id={i},pad={label}:1|c".encode())
        bridge.send_udp(*LEGIT)
        assert bridge.counter("statsd_exporter_sample_errors_total",
                              reason="label_value_too_long") == 20
        assert bridge.counter("aerostat_series") == len(LEGIT)
        assert legit_total(bridge) == len(LEGIT)


def test_the_byte_budget_refuses_new_series_and_counts_them() -> None:
    label = "y" * 4000  # each within the label limit
    with running_bridge(max_series_bytes=200_000) as bridge:
        for i in range(60):
            bridge.send_udp(f"wide,id={i},pad={label}:1|c".encode())
        held = bridge.counter("aerostat_series")
        refused = bridge.counter("aerostat_series_refused_total", limit="bytes")
        assert 0 < held < 60 and held + refused == 60
        assert bridge.counter("aerostat_series_bytes") <= 200_000


def test_type_conflicts_cannot_grow_the_conflict_counter_without_bound() -> None:
    """Each conflicting name was a new series of events_conflict_total."""
    with running_bridge() as bridge:
        for start in range(0, 1200, 200):
            bridge.send_udp(*(f"n{i}:1|c".encode() for i in range(start, start + 200)))
            bridge.send_udp(*(f"n{i}:1|g".encode() for i in range(start, start + 200)))
        names = {dict(labels)["metric_name"]
                 for (name, labels) in bridge.samples(own=True)
                 if name == "statsd_exporter_events_conflict_total"}
        assert len(names) == 1001 and "(other)" in names
        conflicts = sum(value for (name, _), value in bridge.samples(own=True).items()
                        if name == "statsd_exporter_events_conflict_total")
        assert conflicts == 1200


def test_a_repeated_refused_datagram_is_counted_like_the_first() -> None:
    """Refused lines are remembered by a hash of their bytes; what they add
    to the counters must be what parsing them adds."""
    datagram = b"x:" + b"1|q:" * 15_000 + b"1|q"  # 15,001 samples of a bad type
    with running_bridge() as bridge:
        bridge.send_udp(datagram)
        first = bridge.counter("statsd_exporter_sample_errors_total", reason="illegal_event")
        samples = bridge.counter("statsd_exporter_samples_total")
        bridge.send_udp(datagram, datagram)
        assert first == 15_001
        assert bridge.counter("statsd_exporter_sample_errors_total",
                              reason="illegal_event") == 3 * first
        assert bridge.counter("statsd_exporter_samples_total") == 3 * samples
        assert bridge.counter("statsd_exporter_lines_total") == 3


def test_the_first_time_a_limit_loses_input_it_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aerostat")
    with running_bridge(max_series=1) as bridge:
        bridge.send_udp(b"a:1|c", b"b:1|c", b"c:1|c")
        deadline = time.monotonic() + 5
        while not any("at a limit" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no warning"
            time.sleep(0.05)
        bridge.send_udp(b"d:1|c")
        time.sleep(1.2)  # another tick: no second warning before the summary
    warnings = [r for r in caplog.records if "at a limit" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].fields == {"limit": "series_limit", "count": 2}  # type: ignore[attr-defined]
    assert "--statsd.max-series" in warnings[0].getMessage()


def test_content_negotiation_honours_q_zero() -> None:
    with running_bridge() as bridge:
        bridge.send_udp(b"a:1|c")
        _, headers, body = bridge.get("/metrics", {
            "Accept": "application/openmetrics-text;q=0,text/plain;q=0.5",
            "Accept-Encoding": "gzip;q=0, identity"})
        assert headers["Content-Type"].startswith("text/plain")
        assert "Content-Encoding" not in headers
        assert b"# EOF" not in body
        _, headers, _ = bridge.get("/metrics", {
            "Accept": "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;q=0.3",
            "Accept-Encoding": "gzip"})
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert headers["Content-Encoding"] == "gzip"


def test_a_file_put_at_the_socket_path_is_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "statsd.sock"
    with running_bridge(listen_unixgram=str(path)):
        path.unlink()
        path.write_text("not aerostat's")
    assert path.read_text() == "not aerostat's"


def test_its_own_socket_is_removed_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "statsd.sock"
    with running_bridge(listen_unixgram=str(path)):
        assert path.is_socket()
    assert not path.exists()


def test_idle_statsd_connections_are_closed() -> None:
    with running_bridge(tcp_idle_timeout=0.3) as bridge, \
            socket.create_connection(bridge.tcp_address) as idle:
        idle.settimeout(5)
        assert idle.recv(1) == b""  # closed by aerostat, not by the timeout above


def test_http_connections_are_capped_and_idle_ones_closed() -> None:
    with running_bridge(web_max_connections=2, web_idle_timeout=0.5) as bridge:
        port = bridge.server.http_port
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.1)  # both taken by their threads
        with socket.create_connection(("127.0.0.1", port)) as third:
            third.settimeout(5)
            assert third.recv(1) == b""  # refused at the cap
        for sock in idle:
            sock.settimeout(5)
            assert sock.recv(1) == b""  # closed after 0.5 s of silence
            sock.close()
        assert bridge.counter("aerostat_http_connections_refused_total") >= 1


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


@pytest.fixture
def served_at_256_descriptors() -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "aerostat.cli", "serve", "--statsd.listen-udp=127.0.0.1:0",
         "--statsd.listen-tcp=127.0.0.1:0", "--web.listen-address=127.0.0.1:0",
         "--web.new-series-hold=0"],
        stderr=subprocess.PIPE, text=True, preexec_fn=_limit_descriptors,
    )
    assert process.stderr is not None
    tcp_port = http_port = 0
    while not (tcp_port and http_port):
        line = process.stderr.readline()
        assert line, "aerostat serve exited before listening"
        if found := re.search(r"tcp=127\.0\.0\.1:(\d+)", line):
            tcp_port = int(found[1])
        if found := re.search(r"addr=127\.0\.0\.1:(\d+)", line):
            http_port = int(found[1])
    try:
        yield process, tcp_port, http_port
    finally:
        process.kill()
        process.wait(10)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_more_connections_than_descriptors_neither_spin_nor_stop_scrapes(
    served_at_256_descriptors: tuple[subprocess.Popen[str], int, int],
) -> None:
    """At 256 descriptors, 300 connections made the loop spin at 97 % of a
    core on failing accept() and /metrics stopped answering."""
    process, tcp_port, http_port = served_at_256_descriptors
    connections = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", tcp_port))
            connections.append(sock)
        time.sleep(0.5)
        before = _cpu_seconds(process.pid)
        time.sleep(1.0)
        assert _cpu_seconds(process.pid) - before < 0.3  # idle, not spinning
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics",
                                    timeout=5) as response:
            text = response.read().decode()
        assert time.monotonic() - started < 1.0
        refused = re.search(r"^aerostat_tcp_connections_refused_total (\S+)$", text, re.M)
        assert refused and float(refused[1]) > 0
        # a connection that was let in still works
        connections[0].sendall(b"still:1|c\n")
        deadline = time.monotonic() + 5
        while "still 1" not in text:
            assert time.monotonic() < deadline
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics",
                                        timeout=5) as response:
                text = response.read().decode()
    finally:
        for sock in connections:
            sock.close()


def test_health_says_when_the_event_loop_is_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    """While one datagram froze the loop for 7 s, /-/healthy answered 200."""
    from aerostat import server as server_module

    monkeypatch.setattr(server_module, "_STALL_SECONDS", 0.3)
    with running_bridge() as bridge:
        assert bridge.get("/-/healthy")[0] == 200
        bridge.server._requests.put(lambda: time.sleep(1.0))  # a stand-in for a wedge
        bridge.server._wake()
        time.sleep(0.6)
        assert bridge.get("/-/healthy")[0] == 503
        time.sleep(0.6)
        assert bridge.get("/-/healthy")[0] == 200


def test_every_refusal_counter_exists_at_zero_from_the_start() -> None:
    """A counter born at 1 hides its first increment from increase(): the
    first refused line of a kind would never move an alert."""
    from aerostat.events import Reason

    with running_bridge() as bridge:
        own = bridge.samples(own=True)
        for reason in Reason:
            family = ("statsd_exporter_events_error_total"
                      if reason in (Reason.EMPTY_METRIC_NAME, Reason.ILLEGAL_NEGATIVE_COUNTER)
                      else "statsd_exporter_sample_errors_total")
            assert own[(family, frozenset({("reason", reason.value)}))] == 0, reason
        assert own[("statsd_exporter_config_reloads_total",
                    frozenset({("outcome", "failure")}))] == 0
