"""Observations that arrive already counted by bucket (an OpenTelemetry
histogram's delta, see aerostat.events.Buckets) folded into the series a
mapping chose for them: a classic histogram, or a summary.

Classic histograms get each bucket's count in the smallest classic bucket
whose bound is at least that bucket's upper bound: an observation is never
counted below its own classic bucket, and only those within one source
bucket of a classic bound (an exponential bucket straddling it) can be
counted one classic bucket up. The sum and the count are exact.

A histogram with a native histogram beside its classic buckets
(store/native.py) gets the exponential buckets there schema for schema
(``_fold_native``): ``fold`` is the one place that decides."""

from __future__ import annotations

import math
from bisect import bisect_left

from aerostat.events import Buckets
from aerostat.store.native import NativeHistogram
from aerostat.store.series import HistogramSeries, SummarySeries

# an upper bound computed as 2**x times a unit factor may land a rounding
# error above a classic bound it equals (1000 ms → 1.0000000000000002 s)
_ROUNDING = 1e-12


def upper_bounds(buckets: Buckets) -> list[tuple[float, int]]:
    """Each non-empty bucket as (its upper bound in base units, its count),
    in ascending order of bound."""
    found: list[tuple[float, int]] = []
    factor = buckets.factor
    if buckets.scale is None:
        bounds = buckets.bounds
        for index, count in enumerate(buckets.counts):
            if count:
                bound = bounds[index] * factor if index < len(bounds) else math.inf
                found.append((bound, count))
        return found
    step = 2.0 ** -buckets.scale  # log2 of the base
    # values in [-base**(i+1), -base**i): the highest is -base**i
    for index in range(len(buckets.negative) - 1, -1, -1):
        count = buckets.negative[index]
        if count:
            found.append((-_power(buckets.negative_offset + index, step) * factor, count))
    if buckets.zero_count:
        found.append((0.0, buckets.zero_count))
    for index, count in enumerate(buckets.counts):
        if count:
            found.append((_power(buckets.offset + index + 1, step) * factor, count))
    return found


def _power(index: int, step: float) -> float:
    try:
        return float(2.0 ** (index * step))
    except OverflowError:
        return math.inf


def fold(series: HistogramSeries | SummarySeries, buckets: Buckets, total: float,
         count: int, now: float) -> bool:
    """Adds ``count`` observations summing to ``total`` (base units), counted
    by ``buckets``. False, and nothing changed, when the sum would not be
    finite or the buckets hold a count other than ``count``."""
    found = upper_bounds(buckets)
    new_sum = series.sum + total
    if new_sum - new_sum != 0.0 or sum(c for _, c in found) != count:
        return False
    if isinstance(series, HistogramSeries):
        counts, bounds = series.counts, series.bounds
        for bound, amount in found:
            # (an infinite bound stays one: inf - inf would be NaN)
            nudged = bound * (1 - _ROUNDING) if bound > 0 else bound * (1 + _ROUNDING)
            counts[bisect_left(bounds, nudged)] += amount
        if series.native is not None:
            _fold_native(series.native, buckets, found)
        series.sum = new_sum
        series.count += count
        return True
    # a summary keeps observations: each bucket's stand in at its upper
    # bound (the quantiles err upwards by at most a bucket), the sum exact
    for bound, amount in found:
        if math.isinf(bound) or not series.observe(bound, now, amount):
            return _settle(series, new_sum)
    return _settle(series, new_sum)


def _fold_native(native: NativeHistogram, buckets: Buckets,
                 found: list[tuple[float, int]]) -> None:
    """The same buckets into a histogram's native histogram: exponential
    ones in the sender's own unit schema for schema (exactly; a scale above
    8 merged down); any other (explicit bounds, or a unit factor, which
    moves exponential boundaries off the schema's) each at its upper bound,
    as the classic buckets take them, and the overflow bucket at the last
    finite bound, where histogram_quantile puts it for classic buckets too:
    the native buckets always hold the series' count."""
    if (buckets.scale is not None and buckets.factor == 1.0
            and native.add_exponential(buckets.scale, 0.0, buckets.zero_count, buckets.offset,
                                       buckets.counts, buckets.negative_offset,
                                       buckets.negative)):
        return
    finite = [bound for bound, _ in found if not math.isinf(bound)]
    for bound, amount in found:
        if math.isinf(bound):
            bound = math.copysign(max(map(abs, finite), default=0.0), bound)
        native.observe(bound, amount)


def _settle(series: SummarySeries, new_sum: float) -> bool:
    series.sum = new_sum
    return True
