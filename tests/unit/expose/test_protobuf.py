"""The protobuf exposition (expose/protobuf.py): every family read back
with the generated classes, native histograms beside classic buckets, and
the generated classes up to date with metrics.proto."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aerostat.expose.exposition import Shown, render_store
from aerostat.expose.proto import metrics_pb2 as pb
from aerostat.expose.protobuf import delimited, registry_records, render_protobuf, store_records
from aerostat.store import (
    FamilySpec,
    Liveness,
    MetricType,
    NativeHistogramSeries,
    Refusal,
    SenderGaugeSeries,
    Store,
)
from aerostat.store.native import bucket_key

ROOT = Path(__file__).resolve().parents[3]


def read_records(data: bytes) -> dict[str, pb.MetricFamily]:
    """Splits a delimited stream by its varint sizes."""
    families: dict[str, pb.MetricFamily] = {}
    position = 0
    while position < len(data):
        size = shift = 0
        while True:
            byte = data[position]
            position += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        family = pb.MetricFamily.FromString(data[position:position + size])
        position += size
        assert family.name not in families
        families[family.name] = family
    return families


def labels(metric: pb.Metric) -> dict[str, str]:
    return {pair.name: pair.value for pair in metric.label}


def filled_store() -> Store:
    store = Store()
    counter = store.series_for(
        FamilySpec("jobs_total", MetricType.COUNTER, "Jobs.",
                   liveness=Liveness("jobs_alive", "jobs_last_seen", 30.0)),
        (("queue", 'a"b'),), now=1.0)
    gauge = store.series_for(FamilySpec("temp", MetricType.GAUGE, "Temperature."), ())
    classic = store.series_for(
        FamilySpec("lat_seconds", MetricType.HISTOGRAM, "Latency.", buckets=(0.1, 1.0)),
        (("op", "read"),))
    native = store.series_for(
        FamilySpec("dur_seconds", MetricType.HISTOGRAM, "Durations.", buckets=(0.1, 1.0),
                   native_schema=3, native_max_buckets=100),
        (("op", "write"),))
    summary = store.series_for(
        FamilySpec("size", MetricType.SUMMARY, "Sizes.", quantiles=(0.5, 0.99)), ())
    senders = store.series_for(
        FamilySpec("pool", MetricType.GAUGE, "Slots.", senders="sum"), (("pool", "p"),))
    cells = (counter, gauge, classic, native, summary, senders)
    assert not any(isinstance(cell, Refusal) for cell in cells)
    counter.value = 3.0  # type: ignore[union-attr]
    counter.updated = 5.0  # type: ignore[union-attr]
    gauge.value = -1.5  # type: ignore[union-attr]
    for value in (0.05, 0.1, 0.5, 5.0):
        classic.observe(value, 10.0)  # type: ignore[union-attr]
    for value in (0.0, 0.05, 0.1, 0.5, 0.5, 5.0, -2.0):
        native.observe(value, 10.0)  # type: ignore[union-attr]
    for value in range(1, 101):
        summary.observe(float(value), 10.0)  # type: ignore[union-attr]
    assert isinstance(senders, SenderGaugeSeries)
    senders.set(("10.0.0.1", 1), 2.0, False, 10.0)
    senders.set(("10.0.0.2", 1), 5.0, False, 10.0)
    return store


def test_every_family_reads_back() -> None:
    families = read_records(render_protobuf(filled_store(), now=11.0))
    assert sorted(families) == ["dur_seconds", "jobs_alive", "jobs_last_seen", "jobs_total",
                                "lat_seconds", "pool", "pool_by_sender", "size", "temp"]
    jobs = families["jobs_total"]
    assert (jobs.type, jobs.help) == (pb.COUNTER, "Jobs.")
    assert labels(jobs.metric[0]) == {"queue": 'a"b'}  # raw, no escaping
    assert jobs.metric[0].counter.value == 3.0
    assert families["jobs_alive"].metric[0].gauge.value == 1.0
    assert families["temp"].metric[0].gauge.value == -1.5
    pool = families["pool"]
    assert pool.type == pb.GAUGE and pool.metric[0].gauge.value == 7.0
    assert sorted((labels(m)["sender"], m.gauge.value)
                  for m in families["pool_by_sender"].metric) == [
        ("10.0.0.1:1", 2.0), ("10.0.0.2:1", 5.0)]

    classic = families["lat_seconds"].metric[0].histogram
    assert [(b.upper_bound, b.cumulative_count) for b in classic.bucket] == [(0.1, 2), (1.0, 3)]
    assert (classic.sample_count, classic.sample_sum) == (4, 5.65)
    assert not classic.positive_span  # classic only: nothing native about it

    size = families["size"].metric[0].summary
    assert [(q.quantile, q.value) for q in size.quantile] == [(0.5, 50.0), (0.99, 99.0)]
    assert (size.sample_count, size.sample_sum) == (100, 5050.0)


def test_native_histogram_beside_its_classic_buckets() -> None:
    families = read_records(render_protobuf(filled_store(), now=11.0))
    histogram = families["dur_seconds"].metric[0].histogram
    assert families["dur_seconds"].type == pb.HISTOGRAM
    assert [(b.upper_bound, b.cumulative_count) for b in histogram.bucket] == [
        (0.1, 4), (1.0, 6)]
    assert histogram.sample_count == 7
    assert histogram.sample_sum == pytest.approx(4.15)
    assert histogram.schema == 3
    assert histogram.zero_threshold == 2.0 ** -128
    assert histogram.zero_count == 1
    # decode the spans: the same buckets the values fall in at schema 3
    found: dict[int, int] = {}
    key = count = index = 0
    for number, span in enumerate(histogram.positive_span):
        key = span.offset if number == 0 else key + span.offset
        for _ in range(span.length):
            count += histogram.positive_delta[index]
            index += 1
            if count:
                found[key] = count
            key += 1
    expected: dict[int, int] = {}
    for value in (0.05, 0.1, 0.5, 0.5, 5.0):
        expected[bucket_key(value, 3)] = expected.get(bucket_key(value, 3), 0) + 1
    assert found == expected
    assert [(s.offset, s.length) for s in histogram.negative_span] == [(bucket_key(2.0, 3), 1)]
    assert list(histogram.negative_delta) == [1]


def test_an_empty_native_histogram_has_its_no_op_span() -> None:
    store = Store()
    series = store.series_for(
        FamilySpec("d", MetricType.HISTOGRAM, "D.", buckets=(1.0,), native_schema=0), ())
    assert isinstance(series, NativeHistogramSeries)
    histogram = read_records(render_protobuf(store, now=0.0))["d"].metric[0].histogram
    assert [(s.offset, s.length) for s in histogram.positive_span] == [(0, 0)]
    assert histogram.schema == 0


def test_held_series_show_zero_as_in_the_text_formats() -> None:
    store = filled_store()
    shown = Shown(horizon=0.0)  # every series born since: all held
    families = read_records(render_protobuf(store, now=11.0, shown=shown))
    assert families["jobs_total"].metric[0].counter.value == 0.0
    histogram = families["dur_seconds"].metric[0].histogram
    assert histogram.sample_count == 0 and histogram.zero_count == 0
    assert [b.cumulative_count for b in histogram.bucket] == [0, 0]
    assert [(s.offset, s.length) for s in histogram.positive_span] == [(0, 0)]
    summary = families["size"].metric[0].summary
    assert summary.sample_count == 0 and all(math.isnan(q.value) for q in summary.quantile)


def test_the_text_format_is_unchanged_by_a_native_histogram() -> None:
    """The classic side of a native histogram renders as any histogram."""
    text = render_store(filled_store(), openmetrics=False, now=11.0)
    families = {f.name: f for f in parse_text(text)}
    samples = {(s.name, s.labels.get("le")): s.value for s in families["dur_seconds"].samples}
    assert samples[("dur_seconds_bucket", "0.1")] == 4
    assert samples[("dur_seconds_bucket", "+Inf")] == 7
    assert samples[("dur_seconds_count", None)] == 7


def test_own_registry_families() -> None:
    registry = CollectorRegistry()
    Counter("own_events", "Events.", ["kind"], registry=registry).labels("a").inc(2)
    Gauge("own_level", "Level.", registry=registry).set(4)
    Histogram("own_seconds", "Seconds.", buckets=(1.0,), registry=registry).observe(0.5)
    Summary("own_sizes", "Sizes.", registry=registry).observe(3)
    families = read_records(b"".join(registry_records(registry)))
    assert sorted(families) == ["own_events_total", "own_level", "own_seconds", "own_sizes"]
    events = families["own_events_total"]
    assert events.type == pb.COUNTER and events.metric[0].counter.value == 2.0
    assert labels(events.metric[0]) == {"kind": "a"}
    assert families["own_level"].metric[0].gauge.value == 4.0
    seconds = families["own_seconds"].metric[0].histogram
    assert [(b.upper_bound, b.cumulative_count) for b in seconds.bucket] == [(1.0, 1)]
    assert (seconds.sample_count, seconds.sample_sum) == (1, 0.5)
    sizes = families["own_sizes"].metric[0].summary
    assert (sizes.sample_count, sizes.sample_sum) == (1, 3.0)


def test_delimited_sizes_past_one_varint_byte() -> None:
    family = pb.MetricFamily(name="x" * 300)
    record = delimited(family)
    # a tag, a two-byte size and the 300 bytes: 303
    assert record[:2] == bytes([0x80 | (303 & 0x7F), 303 >> 7])
    assert read_records(record)["x" * 300] == family


def test_generated_classes_match_the_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools/gen_metrics_pb2.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for path in generator.generate(tmp_path):
        shipped = ROOT / "src" / path.relative_to(tmp_path)
        assert path.read_text() == shipped.read_text(), (
            f"{shipped} is stale: run .venv/bin/python tools/gen_metrics_pb2.py")


def test_a_large_family_renders_in_slices() -> None:
    """A chunk per series, so that the event loop can pause within one
    family (scrapes.py renders RENDER_SLICE chunks between reads)."""
    store = Store()
    spec = FamilySpec("big", MetricType.GAUGE, "Big.")
    for index in range(5000):
        assert not isinstance(store.series_for(spec, (("i", str(index)),)), Refusal)
    chunks = list(store_records(store, now=0.0))
    assert len(chunks) == 5001
    assert len(read_records(b"".join(chunks))["big"].metric) == 5000
