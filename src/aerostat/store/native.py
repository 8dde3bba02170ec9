"""Native histograms: exponential buckets that a protobuf scrape exposes
beside (or instead of) a histogram's classic buckets. Pure: no I/O.

The buckets follow Prometheus's standard schemas: at schema ``s`` the
boundaries are the powers of ``base = 2**(2**-s)``, bucket ``k`` holds the
values in ``(base**(k-1), base**k]`` (and its mirror for negative values),
and values whose magnitude is at most ``zero_threshold`` are counted in the
zero bucket. Valid schemas are -4 … 8.

Two ways in:

``NativeHistogram.observe(value, weight=1)``
    One observation (a StatsD timer or histogram value), counted as
    client_golang counts it: the schema comes from the mapping's
    ``native_histogram_bucket_factor`` (``schema_for_factor``), and when a
    new bucket would make more than ``max_buckets`` the resolution is halved
    (schema - 1, each pair of buckets merged) until it fits or the schema is
    -4. statsd_exporter sets neither a reset duration nor a maximal zero
    threshold, so client_golang's two other remedies never apply: nor here.

``NativeHistogram.add_exponential(scale, zero_threshold, zero_count,
positive_offset, positive_counts, negative_offset, negative_counts)``
    For the OTLP input: one exponential-histogram delta (OpenTelemetry's
    ``ExponentialHistogramDataPoint``: bucket ``offset + i`` of a side holds
    ``counts[i]`` values in ``(base**(offset+i), base**(offset+i+1)]``), its
    counts already made a delta from the sender's cumulative ones. OTLP
    index ``i`` is Prometheus bucket ``i + 1``. A scale finer than the
    histogram's schema (OTLP goes up to 20) is brought down exactly: index
    ``i`` at scale ``s`` is index ``i >> (s - t)`` at scale ``t``; a coarser
    scale brings the whole histogram down to it. Scales below -4 cannot be
    represented without splitting buckets: refused (False, nothing changed).
    The count and the sum are not kept here: they are the histogram
    series' own (``HistogramSeries.count``/``sum``), shared with its classic
    buckets, and ``NativeHistogramSeries.add_exponential`` updates both.

``schema``, ``zero_threshold``, ``zero_count`` and ``spans(side)`` are what
an exposition reads."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from math import frexp

MIN_SCHEMA = -4
MAX_SCHEMA = 8
# client_golang's DefNativeHistogramZeroThreshold: 2**-128
ZERO_THRESHOLD = 2.0 ** -128

# For schema s > 0: the boundaries within one power of two, as fractions in
# [0.5, 1) (what math.frexp returns), so that a bucket is a binary search
# and an exponent away, as client_golang finds it.
_FRACTIONS: dict[int, tuple[float, ...]] = {
    schema: tuple(2.0 ** (i / (1 << schema) - 1.0) for i in range(1 << schema))
    for schema in range(1, MAX_SCHEMA + 1)
}


def schema_for_factor(factor: float) -> int | None:
    """The schema client_golang picks for NativeHistogramBucketFactor: the
    largest whose growth from one bucket to the next is at most ``factor``
    (1.1 → 3, 2 → 0), within -4 … 8. None when ``factor`` is at most 1: no
    native histogram, as client_golang."""
    if not factor > 1.0:
        return None
    if math.isinf(factor):
        return MIN_SCHEMA
    floor = math.floor(math.log2(math.log2(factor)))
    return max(MIN_SCHEMA, min(MAX_SCHEMA, -floor))


def bucket_key(magnitude: float, schema: int) -> int:
    """The bucket of a positive value: the smallest k with value <= base**k."""
    fraction, exponent = math.frexp(magnitude)
    if schema > 0:
        bounds = _FRACTIONS[schema]
        return bisect_left(bounds, fraction) + (exponent - 1) * len(bounds)
    key = exponent - 1 if fraction == 0.5 else exponent
    if schema < 0:
        key = (key + (1 << -schema) - 1) >> -schema
    return key


def upper_bound(key: int, schema: int) -> float:
    """The upper bound of bucket ``key`` (inclusive) at ``schema``."""
    try:
        return float(2.0 ** math.ldexp(key, -schema))
    except OverflowError:
        return math.inf


class NativeHistogram:
    """Bucket counts by key, per side; sparse (a dict each)."""

    __slots__ = ("_bounds", "max_buckets", "negative", "positive", "schema", "zero_count",
                 "zero_threshold")

    def __init__(self, schema: int, max_buckets: int = 0,
                 zero_threshold: float = ZERO_THRESHOLD) -> None:
        self.schema = max(MIN_SCHEMA, min(MAX_SCHEMA, schema))
        self._bounds = _FRACTIONS.get(self.schema)  # the schema's, when above 0
        self.max_buckets = max_buckets  # 0: no limit
        self.zero_threshold = zero_threshold
        self.zero_count = 0
        self.positive: dict[int, int] = {}
        self.negative: dict[int, int] = {}

    def observe(self, value: float, weight: int = 1) -> None:
        """Counts ``weight`` observations of the finite ``value``."""
        if value > self.zero_threshold:
            side = self.positive
        elif value < -self.zero_threshold:
            side = self.negative
            value = -value
        else:
            self.zero_count += weight
            return
        # perf: bucket_key inlined: 480 → 300 ns an observation (timeit, schema
        # 3, log-normal values, on the 2-core machine under load)
        bounds = self._bounds
        if bounds is not None:
            fraction, exponent = frexp(value)
            key = bisect_left(bounds, fraction) + (exponent - 1) * len(bounds)
        else:
            key = bucket_key(value, self.schema)
        count = side.get(key)
        if count is not None:
            side[key] = count + weight
            return
        side[key] = weight
        if self.max_buckets and len(self.positive) + len(self.negative) > self.max_buckets:
            self._limit()

    def _limit(self) -> None:
        while (len(self.positive) + len(self.negative) > self.max_buckets
               and self.schema > MIN_SCHEMA):
            self.downscale(self.schema - 1)

    def downscale(self, schema: int) -> None:
        """Merges buckets down to the coarser ``schema`` (exactly: every
        bucket of the finer schema lies within one of the coarser)."""
        shift = self.schema - schema
        if shift <= 0:
            return
        self.positive = _shifted(self.positive, shift)
        self.negative = _shifted(self.negative, shift)
        self.schema = schema
        self._bounds = _FRACTIONS.get(schema)

    def add_exponential(
        self,
        scale: int,
        zero_threshold: float,
        zero_count: int,
        positive_offset: int,
        positive_counts: Sequence[int],
        negative_offset: int = 0,
        negative_counts: Sequence[int] = (),
    ) -> bool:
        """Adds an OTLP exponential-histogram delta (see the module's
        docstring). False, and nothing changed, for a scale below -4."""
        if scale < MIN_SCHEMA:
            return False
        target = min(scale, self.schema)
        if target < self.schema:
            self.downscale(target)
        shift = scale - target
        for side, offset, counts in ((self.positive, positive_offset, positive_counts),
                                     (self.negative, negative_offset, negative_counts)):
            for index, count in enumerate(counts, offset):
                if count:
                    key = (index >> shift) + 1
                    side[key] = side.get(key, 0) + count
        self.zero_count += zero_count
        if zero_threshold > self.zero_threshold:
            self.widen_zero_bucket(zero_threshold)
        else:
            self._settle_zero_bucket()
        if self.max_buckets and len(self.positive) + len(self.negative) > self.max_buckets:
            self._limit()
        return True

    def widen_zero_bucket(self, threshold: float) -> None:
        """Makes the zero bucket cover at least ``[-threshold, threshold]``;
        a bucket it reaches into is merged in whole, and the threshold grows
        to that bucket's upper bound (as Prometheus merges histograms)."""
        self.zero_threshold = max(self.zero_threshold, threshold)
        self._settle_zero_bucket()

    def _settle_zero_bucket(self) -> None:
        changed = True
        while changed:
            changed = False
            for side in (self.positive, self.negative):
                for key in sorted(side):
                    if upper_bound(key - 1, self.schema) >= self.zero_threshold:
                        break
                    self.zero_count += side.pop(key)
                    self.zero_threshold = max(self.zero_threshold,
                                              upper_bound(key, self.schema))
                    changed = True

    def bucket_count(self) -> int:
        return len(self.positive) + len(self.negative)

    def spans(self, negative: bool = False) -> tuple[list[tuple[int, int]], list[int]]:
        """A side as the exposition wants it: spans (offset from the end of
        the previous span, or the first key; length) and the counts' deltas
        (each count minus the previous one). Gaps of up to two empty
        buckets are filled with zeros rather than opening a span, as
        client_golang does: fewer bytes."""
        side = self.negative if negative else self.positive
        spans: list[tuple[int, int]] = []
        deltas: list[int] = []
        previous_key = 0
        previous_count = 0
        for key in sorted(side):
            count = side[key]
            if not count:
                continue
            gap = key - previous_key - 1
            if spans and gap <= 2:
                for _ in range(gap):
                    deltas.append(-previous_count)
                    previous_count = 0
                offset, length = spans[-1]
                spans[-1] = (offset, length + gap + 1)
            else:
                spans.append((key if not spans else gap, 1))
            deltas.append(count - previous_count)
            previous_key = key
            previous_count = count
        return spans, deltas

    def reset(self) -> None:
        """Empties the buckets, keeping the schema and threshold."""
        self.positive = {}
        self.negative = {}
        self.zero_count = 0


def _shifted(side: dict[int, int], shift: int) -> dict[int, int]:
    merged: dict[int, int] = {}
    for key, count in side.items():
        # bucket k covers (base**(k-1), base**k]: k-1 is OTLP's index, which
        # downscales by a shift
        new = ((key - 1) >> shift) + 1
        merged[new] = merged.get(new, 0) + count
    return merged
