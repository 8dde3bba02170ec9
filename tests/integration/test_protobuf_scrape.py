"""A protobuf scrape over a real socket: the Accept header Prometheus sends
with native histograms on gets delimited MetricFamily messages (gzipped
when asked), with the store's and the exporter's own families; any other
Accept header gets the text formats as before."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aerostat.airflow import airflow_built_in
from aerostat.expose.http import wants_protobuf
from aerostat.expose.proto import metrics_pb2 as pb
from bridge import OWN_PREFIXES, running_bridge
from unit.expose.test_protobuf import read_records

CAPTURE = (Path(__file__).resolve().parents[2]
           / "src/aerostat/airflow/captures/airflow-3.3.2-plain.jsonl")

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


def _protobuf_samples(families: dict[str, pb.MetricFamily]
                      ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples a text scrape would show for the same families (the +Inf
    bucket is the count; bucket bounds and quantiles as floats)."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for name, family in families.items():
        for metric in family.metric:
            labels = frozenset((pair.name, pair.value) for pair in metric.label)
            if family.type == pb.HISTOGRAM:
                histogram = metric.histogram
                for bucket in histogram.bucket:
                    key = labels | {("le", repr(bucket.upper_bound))}
                    found[(name + "_bucket", key)] = bucket.cumulative_count
                found[(name + "_bucket", labels | {("le", "inf")})] = histogram.sample_count
                found[(name + "_count", labels)] = histogram.sample_count
                found[(name + "_sum", labels)] = histogram.sample_sum
                if histogram.positive_span or histogram.negative_span:
                    native = (histogram.zero_count + _total(histogram.positive_delta)
                              + _total(histogram.negative_delta))
                    assert native == histogram.sample_count, name  # buckets hold the count
            elif family.type == pb.SUMMARY:
                for quantile in metric.summary.quantile:
                    found[(name, labels | {("quantile", repr(quantile.quantile))})] = (
                        quantile.value)
                found[(name + "_count", labels)] = metric.summary.sample_count
                found[(name + "_sum", labels)] = metric.summary.sample_sum
            else:
                value = metric.counter.value if family.type == pb.COUNTER else metric.gauge.value
                found[(name, labels)] = value
    return found


def _total(deltas: Sequence[int]) -> int:
    """The sum of the counts that deltas encode."""
    count = total = 0
    for delta in deltas:
        count += delta
        total += count
    return total


def _text_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in parse_text(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            for key in ("le", "quantile"):
                if key in labels:
                    labels[key] = repr(float(labels[key]))
            found[(sample.name, frozenset(labels.items()))] = sample.value
    return found


@pytest.mark.slow
def test_real_airflow_traffic_reads_the_same_in_both_formats() -> None:
    """The 3.3.2 capture through --airflow (its timers are histograms, so
    native ones too): every sample of the text format is in the protobuf
    with the same value, and every native histogram's buckets hold its
    count."""
    lines = [json.loads(line)["data"].encode() for line in CAPTURE.read_text().splitlines()]
    with running_bridge(built_in=airflow_built_in()) as bridge:
        for start in range(0, len(lines), 50):
            bridge.send_udp(b"\n".join(lines[start:start + 50]))
        bridge.settle()
        _, _, body = bridge.get("/metrics", {"Accept": PROMETHEUS_NATIVE})
        text = bridge.scrape_text()
    families = {name: family for name, family in read_records(body).items()
                if not name.startswith(OWN_PREFIXES)}
    assert any(family.metric[0].histogram.positive_span for family in families.values()
               if family.type == pb.HISTOGRAM)
    from_protobuf = _protobuf_samples(families)
    from_text = {key: value for key, value in _text_samples(text).items()
                 if not key[0].startswith(OWN_PREFIXES)}
    assert len(from_text) > 500
    assert from_protobuf.keys() == from_text.keys()
    for key, value in from_text.items():
        assert from_protobuf[key] == pytest.approx(value, nan_ok=True), key
