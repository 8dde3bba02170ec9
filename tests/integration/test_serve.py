"""aerostat serve through its real sockets: what a scrape returns, in both
formats, and how bad input is counted without harm."""

from __future__ import annotations

import gzip
import socket
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aerostat.pipeline import InputLimits
from bridge import Bridge, running_bridge

MAPPING = """\
mappings:
- match: "test.*.count"
  name: "test_${1}_total"
- match: "test.timer.*"
  name: "test_timer_seconds"
  observer_type: histogram
  help: "A timer, with a \\"quoted\\" help."
  labels:
    job: "$1"
- match: "test.dropped.*"
  name: "unused"
  action: drop
"""

MIXED_TRAFFIC = [
    b"test.a.count:3|c",
    b"test.a.count:2|c|@0.5",
    b"test.timer.x:200|ms",
    b"test.timer.x:2000|ms",
    b"g:1|g",
    b"g:+4|g",
    b"s:2|d|#a:b",
    b'q:1|g|#v:with"quote\\back',
    b"test.dropped.x:1|c",
]


@pytest.fixture
def mapping_file(tmp_path: Path) -> str:
    path = tmp_path / "mapping.yml"
    path.write_text(MAPPING)
    return str(path)


@pytest.fixture
def bridge(mapping_file: str) -> Bridge:
    with running_bridge(mapping_config=mapping_file, enable_lifecycle=True) as running:
        yield running  # type: ignore[misc]


def test_values_of_mixed_traffic(bridge: Bridge) -> None:
    bridge.send_udp(*MIXED_TRAFFIC)
    samples = bridge.samples()
    assert samples[("test_a_total", frozenset())] == 3 + 2 / 0.5
    assert samples[("g", frozenset())] == 5
    assert samples[("test_timer_seconds_count", frozenset({("job", "x")}))] == 2
    assert samples[("test_timer_seconds_sum", frozenset({("job", "x")}))] == pytest.approx(2.2)
    bucket = ("test_timer_seconds_bucket", frozenset({("job", "x"), ("le", "0.25")}))
    assert samples[bucket] == 1
    assert samples[("s_count", frozenset({("a", "b")}))] == 1
    assert samples[("q", frozenset({("v", 'with"quote\\back')}))] == 1
    assert not any(name == "unused" for name, _ in samples)
    assert bridge.counter("statsd_exporter_events_actions_total", action="drop") == 1


def test_text_format_passes_promtool(bridge: Bridge) -> None:
    bridge.send_udp(*MIXED_TRAFFIC)
    text = bridge.scrape_text()
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {family.name for family in parse_text(text)} >= {"g", "q", "s", "test_timer_seconds"}


def test_upstream_counter_names_only_draw_the_suffix_lint() -> None:
    """An unmapped counter keeps its name, as upstream: promtool's only
    complaint is the _total naming convention, never a parse error."""
    with running_bridge() as bridge:
        bridge.send_udp(b"plain.requests:1|c")
        checked = subprocess.run(
            ["promtool", "check", "metrics"],
            input=bridge.scrape_text().encode(),
            capture_output=True,
            check=False,
        )
    findings = (checked.stdout + checked.stderr).decode().strip().splitlines()
    assert findings == ['plain_requests counter metrics should have "_total" suffix']


def test_openmetrics_by_negotiation(bridge: Bridge) -> None:
    bridge.send_udp(*MIXED_TRAFFIC, b"plain.counter:1|c")
    status, headers, body = bridge.get(
        "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    families = {family.name: family for family in parse_openmetrics(text)}
    assert families["test_a"].type == "counter"
    assert families["test_a"].samples[0].name == "test_a_total"
    # a counter without _total keeps its series name, typed unknown
    assert families["plain_counter"].type == "unknown"
    assert families["plain_counter"].samples[0].name == "plain_counter"
    assert families["test_timer_seconds"].type == "histogram"


def test_text_format_is_the_default(bridge: Bridge) -> None:
    status, headers, _ = bridge.get("/metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


@pytest.mark.parametrize("accept", ["text/plain", "application/openmetrics-text; version=1.0.0"])
def test_own_values_read_like_the_stores(bridge: Bridge, accept: str) -> None:
    """prometheus_client wrote the own metrics' 16 as 16.0 beside the
    store's 4: now both as Go writes them, in either format."""
    bridge.send_udp(b"a.b:4|c")
    _, _, body = bridge.get("/metrics", {"Accept": accept})
    samples = [line for line in body.decode().splitlines() if line and line[0] != "#"]
    assert any(line.startswith("aerostat_series ") for line in samples)
    assert [line for line in samples if line.endswith(".0")] == []


def test_gzip_when_asked(bridge: Bridge) -> None:
    bridge.send_udp(b"g:1|g")
    status, headers, body = bridge.get("/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert "\ng 1\n" in gzip.decompress(body).decode()


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        pytest.param("/-/healthy", 200, b"Healthy", id="healthy"),
        pytest.param("/-/ready", 200, b"Ready", id="ready"),
        pytest.param("/", 200, b'href="/metrics"', id="landing-page"),
        pytest.param("/nothing-here", 404, b"Not found", id="unknown-path"),
    ],
)
def test_endpoints(bridge: Bridge, path: str, status: int, needle: bytes) -> None:
    got, _, body = bridge.get(path)
    assert got == status and needle in body


def test_custom_telemetry_path() -> None:
    with running_bridge(telemetry_path="/stats") as bridge:
        bridge.send_udp(b"g:1|g")
        status, _, body = bridge.get("/stats")
        assert status == 200 and b"\ng 1\n" in body


def test_lifecycle_is_off_by_default() -> None:
    with running_bridge() as bridge:
        status, _ = bridge.post("/-/reload")
        assert status == 403


def test_reload_keeps_series_and_refuses_a_broken_file(bridge: Bridge, mapping_file: str) -> None:
    bridge.send_udp(b"test.a.count:1|c")
    Path(mapping_file).write_text(MAPPING + "- match: new.*\n  name: new_${1}\n")
    status, _ = bridge.post("/-/reload")
    assert status == 200
    assert bridge.counter("statsd_exporter_loaded_mappings") == 4
    bridge.send_udp(b"test.a.count:1|c", b"new.thing:1|g")
    samples = bridge.samples()
    assert samples[("test_a_total", frozenset())] == 2  # kept its value across the reload
    assert samples[("new_thing", frozenset())] == 1

    Path(mapping_file).write_text("mappings:\n- match: a.*\n  nme: broken\n")
    status, body = bridge.post("/-/reload")
    assert status == 500 and b"mapping.yml" in body
    assert bridge.counter("statsd_exporter_config_reloads_total", outcome="failure") == 1
    assert bridge.counter("statsd_exporter_loaded_mappings") == 4  # the old mapping stays
    bridge.send_udp(b"new.thing:7|g")
    assert bridge.samples()[("new_thing", frozenset())] == 7


BAD_INPUT = [
    pytest.param(b"no_colon", "malformed_line", id="no-colon"),
    pytest.param(b":1|c", "malformed_line", id="empty-name"),
    pytest.param(b"bad\xc3(utf8:1|c", "malformed_line", id="invalid-utf8"),
    pytest.param(b"x:1", "not_enough_parts_after_colon", id="no-type"),
    pytest.param(b"x:abc|c", "malformed_value", id="not-a-number"),
    pytest.param(b"x:NaN|g", "non_finite_value", id="nan"),
    pytest.param(b"x:+Inf|g", "non_finite_value", id="inf"),
    pytest.param(b"x:-Inf|ms", "non_finite_value", id="minus-inf"),
    pytest.param(b"x:1e999|c", "non_finite_value", id="overflow"),
    pytest.param(b"x:-1|c", "illegal_negative_counter", id="negative-counter"),
    pytest.param(b"x:1|s", "illegal_event", id="set"),
    pytest.param(b"x:1|c|", "malformed_component", id="empty-component"),
    pytest.param(b"x:1|c|#__name__:evil", "invalid_label_name", id="reserved-label"),
    pytest.param(b"x:1|h|#le:5", "invalid_label_name", id="le-on-histogram"),
    pytest.param(b"x:1|d|#quantile:5", "invalid_label_name", id="quantile-on-summary"),
    pytest.param(b"x:1:2|c", "invalid_extended_aggregate_type", id="aggregated-counter"),
    pytest.param(b"x,a=b:1|c|#c:d", "mixed_tagging_styles", id="mixed-tags"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_INPUT)
def test_bad_input_is_counted_by_reason(line: bytes, reason: str, tmp_path: Path) -> None:
    # "le" only clashes on histograms: here h and ms become histograms
    config = tmp_path / "histograms.yml"
    config.write_text("mappings:\n- match: x\n  name: x\n  match_metric_type: observer\n"
                      "  observer_type: histogram\n  match_type: glob\n")
    histograms = {"mapping_config": str(config)} if b"|h" in line else {}
    with running_bridge(**histograms) as bridge:
        bridge.send_udp(line, b"good:1|g")
        errors = ("statsd_exporter_events_error_total"
                  if reason in ("illegal_negative_counter", "empty_metric_name")
                  else "statsd_exporter_sample_errors_total")  # as upstream counts them
        assert bridge.counter(errors, reason=reason) == 1
        assert bridge.samples()[("good", frozenset())] == 1
        assert not any(name.startswith("x") for name, _ in bridge.samples())


def test_huge_datagram_is_read_whole() -> None:
    long_name = b"n" * 60_000
    with running_bridge(limits=InputLimits(max_name_length=60_000)) as bridge:
        bridge.send_udp(long_name + b":1|g")
        assert bridge.samples()[(long_name.decode(), frozenset())] == 1


def test_names_past_the_limit_are_refused_and_counted() -> None:
    with running_bridge() as bridge:  # the default limit: 1024 characters
        bridge.send_udp(b"n" * 1025 + b":1|g", b"n" * 1024 + b":1|g")
        assert bridge.counter("statsd_exporter_sample_errors_total",
                              reason="name_too_long") == 1
        assert [name for name, _ in bridge.samples()] == ["n" * 1024]


def test_own_metric_names_cannot_be_taken() -> None:
    """Upstream answers HTTP 500 for every scrape after go_goroutines:1|g."""
    with running_bridge() as bridge:
        bridge.send_udp(
            b"statsd_exporter_lines_total:5|g", b"process_cpu_seconds_total:1|c", b"ok:1|g"
        )
        text = bridge.scrape_text()
        assert len(list(parse_text(text))) > 10
        assert bridge.counter("statsd_exporter_lines_total") == 3
        conflicts = bridge.samples(own=True)
        assert (
            conflicts[
                (
                    "statsd_exporter_events_conflict_total",
                    frozenset({("type", "gauge"), ("metric_name", "statsd_exporter_lines_total")}),
                )
            ]
            == 1
        )


def test_cached_lines_keep_upstream_semantics() -> None:
    """The second and later copies of a line take the cached path."""
    with running_bridge() as bridge:
        bridge.send_udp(b"c:1|c|@0.1", b"c:2|c|@0.1", b"c:-1|c|@0.1")
        bridge.send_udp(b"g:10|g", b"g:-3|g", b"g:+1|g", b"g:4|g", b"g:-1|g")
        bridge.send_udp(b"t:500|ms|@0.5", b"t:1500|ms|@0.5")
        samples = bridge.samples()
        assert samples[("c_total", frozenset())] == pytest.approx(30)
        assert samples[("g", frozenset())] == 3
        assert samples[("t_count", frozenset())] == 4
        assert samples[("t_sum", frozenset())] == pytest.approx(4.0)
        refused = bridge.counter("statsd_exporter_events_error_total",
                                 reason="illegal_negative_counter")
        assert refused == 1
        assert bridge.counter("statsd_exporter_sample_errors_total",
                              reason="illegal_negative_counter") == 0


def test_tcp_lines_and_an_overlong_line() -> None:
    with running_bridge() as bridge:
        payload = b"a:1|c\r\n" + b"x" * 70_000 + b":1|c\nb:2|g\nc:3|g"
        bridge.send_tcp(payload)
        samples = bridge.samples()
        assert samples[("a_total", frozenset())] == 1
        assert samples[("b", frozenset())] == 2
        assert samples[("c", frozenset())] == 3  # the last line, without newline
        assert bridge.counter("statsd_exporter_tcp_too_long_lines_total") == 1


def test_unixgram(tmp_path: Path) -> None:
    path = tmp_path / "statsd.sock"
    with running_bridge(listen_unixgram=str(path)) as bridge:
        assert oct(path.stat().st_mode & 0o777) == oct(0o755)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"u:1|c\nv:2|g", str(path))
        bridge.wait_for_counter("statsd_exporter_unixgram_packets_total", 1)
        bridge.settle()
        assert bridge.samples()[("v", frozenset())] == 2
    assert not path.exists()  # removed on exit


@pytest.mark.parametrize(
    ("value", "expected", "reason"),
    [
        pytest.param(b" 2", 1.0, "malformed_value", id="padded"),
        pytest.param(b"2 ", 1.0, "malformed_value", id="trailing-space"),
        pytest.param(b"2_0", 1.0, "malformed_value", id="underscore"),
        pytest.param(b"nan", 1.0, "non_finite_value", id="nan"),
        pytest.param(b"1e999", 1.0, "non_finite_value", id="overflow"),
        pytest.param(b"0x1p3", 8.0, None, id="hex-float"),
        pytest.param(b"2.5e1", 25.0, None, id="exponent"),
    ],
)
def test_cached_line_values_are_checked_like_new_ones(
    value: bytes, expected: float, reason: str | None
) -> None:
    """Once v:1|g is known, a new value takes the cached path: it must be
    refused or read exactly as the full parser would."""
    with running_bridge() as bridge:
        bridge.send_udp(b"v:1|g", b"v:" + value + b"|g")
        assert bridge.samples()[("v", frozenset())] == expected
        if reason is not None:
            assert bridge.counter("statsd_exporter_sample_errors_total", reason=reason) == 1


def test_cached_lines_count_actions_and_unmapped_events(bridge: Bridge) -> None:
    """The exporter's own counters are the same whether a line took the
    full path or the cached one."""
    bridge.send_udp(*[b"test.a.count:1|c", b"unmapped.thing:1|g", b"test.dropped.x:1|c"] * 3)
    assert bridge.counter("statsd_exporter_events_actions_total", action="map") == 3
    assert bridge.counter("statsd_exporter_events_actions_total", action="drop") == 3
    assert bridge.counter("statsd_exporter_events_unmapped_total") == 3
    assert bridge.counter("statsd_exporter_events_total", type="counter") == 6
    assert bridge.counter("statsd_exporter_events_total", type="gauge") == 3
    assert bridge.counter("statsd_exporter_lines_total") == 9
    assert bridge.counter("statsd_exporter_samples_total") == 9


def test_build_info_and_families_by_type(bridge: Bridge) -> None:
    bridge.send_udp(b"a:1|c", b"b:1|g", b"c:1|g", b"test.timer.x:1|ms", b"d:1|ms")
    assert bridge.counter("aerostat_metric_families", type="counter") == 1
    assert bridge.counter("aerostat_metric_families", type="gauge") == 2
    assert bridge.counter("aerostat_metric_families", type="histogram") == 1
    assert bridge.counter("aerostat_metric_families", type="summary") == 1
    info = [labels for name, labels in bridge.samples(own=True) if name == "aerostat_build_info"]
    assert len(info) == 1 and ("version", __import__("aerostat").__version__) in info[0]


def test_a_scraper_that_resets_mid_request_prints_no_traceback(
    bridge: Bridge, capfd: pytest.CaptureFixture[str]
) -> None:
    """A scraper that gives up (its timeout) resets the connection while
    aerostat reads the request: that is no error of aerostat's, and nothing
    reaches stderr; the port goes on answering."""
    import struct
    import time

    for _ in range(3):
        with socket.create_connection(("127.0.0.1", bridge.server.http_port)) as sock:
            sock.sendall(b"GET /metr")
            time.sleep(0.1)  # the handler is reading the request line
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.3)
    status, _, _ = bridge.get("/-/healthy")
    assert status == 200
    assert "Exception occurred during processing of request" not in capfd.readouterr().err
