"""A protobuf scrape over a real socket: the Accept header Prometheus sends
with native histograms on gets delimited MetricFamily messages (gzipped
when asked), with the store's and the exporter's own families; any other
Accept header gets the text formats as before."""

from __future__ import annotations

import gzip

import pytest

from aerostat.expose.http import wants_protobuf
from bridge import running_bridge
from unit.expose.test_protobuf import read_records

PROTOBUF = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
            "encoding=delimited")
# what Debian's Prometheus 2.42 sends with --enable-feature=native-histograms
# (recorded by a listener it scraped)
PROMETHEUS_NATIVE = (f"{PROTOBUF},application/openmetrics-text;version=1.0.0;q=0.8,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        pytest.param(PROMETHEUS_NATIVE, True, id="prometheus-native-histograms"),
        pytest.param(PROTOBUF, True, id="protobuf-alone"),
        pytest.param(f"{PROTOBUF};q=0.5,text/plain;q=0.9", False, id="text-preferred"),
        pytest.param(f"{PROTOBUF};q=0", False, id="q-zero"),
        pytest.param("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                     "encoding=text", False, id="text-encoding"),
        pytest.param("application/vnd.google.protobuf;encoding=delimited", False, id="no-proto"),
        pytest.param("application/openmetrics-text;version=1.0.0,text/plain;q=0.5", False,
                     id="openmetrics"),
        pytest.param("", False, id="no-header"),
    ],
)
def test_negotiation(accept: str, wanted: bool) -> None:
    assert wants_protobuf(accept) is wanted


@pytest.mark.slow
def test_protobuf_scrape_over_http() -> None:
    with running_bridge() as bridge:
        bridge.send_udp(b"jobs:2|c", b"temp:3|g", b"took:320|ms")
        bridge.settle()
        status, headers, body = bridge.get("/metrics", {"Accept": PROMETHEUS_NATIVE,
                                                        "Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["Content-Type"] == (
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited")
        assert headers["Content-Encoding"] == "gzip"
        families = read_records(gzip.decompress(body))
        assert families["jobs"].metric[0].counter.value == 2.0
        assert families["temp"].metric[0].gauge.value == 3.0
        assert families["took"].metric[0].summary.sample_sum == pytest.approx(0.32)
        assert "statsd_exporter_lines_total" in families  # the exporter's own
        # the text format is what it was
        status, headers, text = bridge.get("/metrics")
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert b"\ntemp 3\n" in text
