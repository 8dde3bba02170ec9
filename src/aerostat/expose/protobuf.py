"""The store (and the exporter's own registry) as Prometheus's protobuf
exposition: length-delimited ``io.prometheus.client.MetricFamily``
messages, the format Prometheus asks for when its native histograms are on
(``--enable-feature=native-histograms``). It is the only format that carries
native histograms (store/native.py); a histogram whose rule has them sends
them beside its classic buckets, in one Histogram message, as client_golang
does.

The same series as the text formats show, under the same names (a counter
keeps its ``_total``), the same first-value hold (store/hold.py); created
timestamps are left out, as in the text format 0.0.4. The messages are
built with the ``protobuf`` library from metrics.proto's generated classes
(proto/, see tools/gen_metrics_pb2.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from functools import partial

from prometheus_client import CollectorRegistry

from aerostat.expose.exposition import EVERYTHING, Shown, format_value
from aerostat.expose.proto import metrics_pb2 as pb
from aerostat.store import (
    BY_SENDER,
    Family,
    HistogramSeries,
    MetricType,
    ScalarSeries,
    SenderGaugeSeries,
    Store,
    SummarySeries,
    sender_text,
)
from aerostat.store.native import NativeHistogram

PROTOBUF_CONTENT_TYPE = ("application/vnd.google.protobuf; "
                         "proto=io.prometheus.client.MetricFamily; encoding=delimited")


def delimited(message: pb.MetricFamily) -> bytes:
    """The message after its size as a varint: one record of the stream."""
    body = message.SerializeToString()
    size = len(body)
    head = bytearray()
    while size > 0x7F:
        head.append((size & 0x7F) | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head) + body


def _labels(metric: pb.Metric, labels: Iterable[tuple[str, str]]) -> None:
    for name, value in labels:
        pair = metric.label.add()
        pair.name = name
        pair.value = value


def _native(histogram: pb.Histogram, native: NativeHistogram) -> None:
    histogram.schema = native.schema
    histogram.zero_threshold = native.zero_threshold
    histogram.zero_count = native.zero_count
    for negative, spans_field, deltas_field in (
        (False, histogram.positive_span, histogram.positive_delta),
        (True, histogram.negative_span, histogram.negative_delta),
    ):
        spans, deltas = native.spans(negative)
        for offset, length in spans:
            span = spans_field.add()
            span.offset = offset
            span.length = length
        deltas_field.extend(deltas)
    if not histogram.positive_span and not histogram.negative_span:
        # no bucket yet: a no-op span says "native" to the parser
        histogram.positive_span.add(offset=0, length=0)


def _family(family: Family, now: float,
            shown: Shown) -> Iterator[pb.MetricFamily | None]:
    """The family's messages, with a None after each series: a point where
    the event loop may pause a large family."""
    spec = family.spec
    message = pb.MetricFamily(name=spec.name, help=spec.help)
    horizon = shown.horizon
    series_list = list(family.series.values())
    if spec.senders:
        message.type = pb.GAUGE
        drill_down = pb.MetricFamily(
            name=spec.name + BY_SENDER, type=pb.GAUGE,
            help=f"{spec.help} One series per sender ({spec.senders} in {spec.name}).")
        for series in series_list:
            assert isinstance(series, SenderGaugeSeries)
            value = series.value_at(now)
            if value is None:
                continue
            metric = message.metric.add()
            _labels(metric, series.labels)
            metric.gauge.value = value
            for sender, own in series.live(now):
                metric = drill_down.metric.add()
                _labels(metric, sorted((*series.labels, ("sender", sender_text(sender)))))
                metric.gauge.value = own
            yield None
        yield message
        yield drill_down
        return
    if spec.type is MetricType.GAUGE:
        message.type = pb.GAUGE
        for series in series_list:
            assert isinstance(series, ScalarSeries)
            metric = message.metric.add()
            _labels(metric, series.labels)
            metric.gauge.value = series.value
            yield None
    elif spec.type is MetricType.COUNTER:
        message.type = pb.COUNTER
        for series in series_list:
            assert isinstance(series, ScalarSeries)
            metric = message.metric.add()
            _labels(metric, series.labels)
            metric.counter.value = series.value if series.born < horizon else 0.0
            yield None
    elif spec.type is MetricType.HISTOGRAM:
        message.type = pb.HISTOGRAM
        for series in series_list:
            assert isinstance(series, HistogramSeries)
            metric = message.metric.add()
            _labels(metric, series.labels)
            histogram = metric.histogram
            held = series.born >= horizon
            cumulative = 0
            for bound, count in zip(spec.buckets, series.counts, strict=False):
                cumulative += 0 if held else count
                histogram.bucket.add(cumulative_count=cumulative, upper_bound=bound)
            histogram.sample_count = 0 if held else series.count
            histogram.sample_sum = 0.0 if held else series.sum
            native = series.native
            if native is not None:
                if held:
                    native = NativeHistogram(native.schema, 0, native.zero_threshold)
                _native(histogram, native)
            yield None
    else:
        message.type = pb.SUMMARY
        for series in series_list:
            assert isinstance(series, SummarySeries)
            metric = message.metric.add()
            _labels(metric, series.labels)
            summary = metric.summary
            held = series.born >= horizon
            values = ([math.nan] * len(spec.quantiles) if held
                      else series.quantile_values(now))
            for quantile, value in zip(spec.quantiles, values, strict=True):
                summary.quantile.add(quantile=quantile, value=value)
            summary.sample_count = 0 if held else series.count
            summary.sample_sum = 0.0 if held else series.sum
            yield None
    yield message
    if spec.liveness is not None and spec.type is MetricType.COUNTER:
        yield from _liveness(family, series_list, now, shown)


def _liveness(family: Family, series_list: Sequence[object], now: float,
              shown: Shown) -> Iterator[pb.MetricFamily | None]:
    liveness = family.spec.liveness
    assert liveness is not None
    alive = pb.MetricFamily(
        name=liveness.alive, type=pb.GAUGE,
        help=(f"1 while the process sent within the last {format_value(liveness.silence)} s, "
              "else 0; a stopped process stays at 0 until its series expires."))
    last_seen = pb.MetricFamily(name=liveness.last_seen, type=pb.GAUGE,
                                help="When the process last sent, in Unix seconds.")
    for series in series_list:
        assert isinstance(series, ScalarSeries)
        metric = alive.metric.add()
        _labels(metric, series.labels)
        metric.gauge.value = 1.0 if now - series.updated <= liveness.silence else 0.0
        metric = last_seen.metric.add()
        _labels(metric, series.labels)
        metric.gauge.value = round(series.updated + shown.wall_offset, 3)
        yield None
    yield alive
    yield last_seen


def store_records(store: Store, now: float, shown: Shown = EVERYTHING) -> Iterator[bytes]:
    """Every family of the store, sorted by name, one delimited message at
    a time, and an empty chunk after each series, so that the event loop
    renders in slices even a family of 100,000 series (scrapes.py)."""
    for name in sorted(store.families):
        family = store.families.get(name)
        if family is not None:  # expired while an earlier slice was rendered
            for message in _family(family, now, shown):
                yield b"" if message is None else delimited(message)


# prometheus_client's type names → the protobuf's; what has no match there
# (info, stateset, unknown) goes as untyped, as client_golang's own
# exposition of the text format's untyped
_OWN_TYPES = {"counter": pb.COUNTER, "gauge": pb.GAUGE, "summary": pb.SUMMARY,
              "histogram": pb.HISTOGRAM}


def _metric_for(message: pb.MetricFamily, grouped: dict[tuple[tuple[str, str], ...], pb.Metric],
                labels: dict[str, str], drop: str = "") -> pb.Metric:
    key = tuple(sorted((k, v) for k, v in labels.items() if k != drop))
    metric = grouped.get(key)
    if metric is None:
        metric = message.metric.add()
        _labels(metric, key)
        grouped[key] = metric
    return metric


def registry_records(registry: CollectorRegistry) -> Iterator[bytes]:
    """The exporter's own metrics (prometheus_client's registry), with the
    sample names its text format shows."""
    for own in registry.collect():
        kind = _OWN_TYPES.get(own.type, pb.UNTYPED)
        if kind == pb.COUNTER:
            name = own.name + "_total"
        elif own.type == "info":
            name = own.name + "_info"
        else:
            name = own.name
        message = pb.MetricFamily(name=name, help=own.documentation, type=kind)
        # one Metric per label set; histogram and summary samples gather
        grouped: dict[tuple[tuple[str, str], ...], pb.Metric] = {}
        metric_for = partial(_metric_for, message, grouped)
        for sample in own.samples:
            suffix = sample.name[len(own.name):]
            if suffix == "_created":
                continue
            if kind == pb.COUNTER:
                metric_for(sample.labels).counter.value = sample.value
            elif kind == pb.GAUGE:
                metric_for(sample.labels).gauge.value = sample.value
            elif kind == pb.HISTOGRAM:
                histogram = metric_for(sample.labels, "le").histogram
                if suffix == "_bucket":
                    bound = float(sample.labels["le"])
                    if not math.isinf(bound):
                        histogram.bucket.add(cumulative_count=int(sample.value),
                                             upper_bound=bound)
                elif suffix == "_sum":
                    histogram.sample_sum = sample.value
                elif suffix == "_count":
                    histogram.sample_count = int(sample.value)
            elif kind == pb.SUMMARY:
                summary = metric_for(sample.labels, "quantile").summary
                if suffix == "_sum":
                    summary.sample_sum = sample.value
                elif suffix == "_count":
                    summary.sample_count = int(sample.value)
                else:
                    summary.quantile.add(quantile=float(sample.labels["quantile"]),
                                         value=sample.value)
            else:
                metric_for(sample.labels).untyped.value = sample.value
        if message.metric:
            yield delimited(message)


def render_protobuf(store: Store, registry: CollectorRegistry | None = None, *, now: float,
                    shown: Shown = EVERYTHING) -> bytes:
    records = list(store_records(store, now, shown))
    if registry is not None:
        records.extend(registry_records(registry))
    return b"".join(records)

