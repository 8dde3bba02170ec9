"""Native histograms (store/native.py): the schema client_golang picks, the
bucket of a value, the bucket limit, and OTLP exponential deltas brought
down to Prometheus's schemas, each against a brute-force reference."""

from __future__ import annotations

import math
import random

import pytest

from aerostat.events import Buckets
from aerostat.store import NativeHistogramSeries, fold
from aerostat.store.native import (
    MAX_SCHEMA,
    MIN_SCHEMA,
    NativeHistogram,
    bucket_key,
    schema_for_factor,
    upper_bound,
)


# the table of the native-histogram specification's instrumentation section
@pytest.mark.parametrize(
    ("factor", "schema"),
    [(65536, -4), (256, -3), (16, -2), (4, -1), (2, 0), (1.5, 1), (1.2, 2), (1.1, 3),
     (1.05, 4), (1.03, 5), (1.02, 6), (1.01, 7), (1.005, 8), (1.0001, 8), (1e9, -4),
     (math.inf, -4)],
)
def test_schema_for_factor(factor: float, schema: int) -> None:
    assert schema_for_factor(factor) == schema


@pytest.mark.parametrize("factor", [1.0, 0.5, 0.0, -2.0, math.nan])
def test_no_native_histogram_at_or_below_one(factor: float) -> None:
    assert schema_for_factor(factor) is None


def _reference_key(value: float, schema: int) -> int:
    """The smallest k with value <= 2**(k * 2**-schema), searched from a
    float estimate with exact comparisons."""
    guess = math.floor(math.log2(value) * 2.0 ** schema) - 2
    while not value <= upper_bound(guess, schema):
        guess += 1
    return guess


@pytest.mark.parametrize("schema", range(MIN_SCHEMA, MAX_SCHEMA + 1))
def test_bucket_key_against_reference(schema: int) -> None:
    rng = random.Random(schema)
    values = [rng.lognormvariate(0, 8) for _ in range(2000)]
    values += [2.0 ** e for e in range(-40, 40)]  # powers of two are boundaries
    values += [upper_bound(k, schema) for k in range(-50, 50)]  # so are these
    for value in values:
        key = bucket_key(value, schema)
        assert key == _reference_key(value, schema), (value, schema)


def test_powers_of_two_close_their_bucket() -> None:
    assert bucket_key(1.0, 3) == 0
    assert bucket_key(2.0, 3) == 8
    assert bucket_key(1.0000001, 3) == 1
    assert bucket_key(4.0, -1) == 1
    assert bucket_key(4.000001, -1) == 2


def test_observe_sides_and_zero_bucket() -> None:
    native = NativeHistogram(3)
    for value in (1.0, 1.0, -1.0, 0.0, 1e-40, 3.0):
        native.observe(value)
    native.observe(3.0, weight=5)
    assert native.zero_count == 2  # 0 and 1e-40 are within 2**-128
    assert native.positive == {0: 2, bucket_key(3.0, 3): 6}
    assert native.negative == {0: 1}


def test_max_buckets_halve_the_resolution_until_they_fit() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(0, 4) for _ in range(5000)]
    native = NativeHistogram(8, max_buckets=40)
    for value in values:
        native.observe(value)
    assert native.bucket_count() <= 40
    assert native.schema < 8
    # exactly what counting at the final schema from the start gives
    reference: dict[int, int] = {}
    for value in values:
        key = bucket_key(value, native.schema)
        reference[key] = reference.get(key, 0) + 1
    assert native.positive == reference


def test_the_limit_stops_at_schema_minus_four() -> None:
    native = NativeHistogram(0, max_buckets=1)
    for exponent in range(-300, 300, 10):
        native.observe(2.0 ** exponent)
    assert native.schema == MIN_SCHEMA
    assert native.zero_count == 18  # 2**-300 … 2**-130 are within 2**-128
    assert sum(native.positive.values()) == 42


def _otlp_reference(scale: int, offset: int, counts: list[int], schema: int) -> dict[int, int]:
    """Each OTLP bucket's count put where a value strictly inside it (its
    geometric middle) falls at ``schema``."""
    found: dict[int, int] = {}
    for i, count in enumerate(counts):
        if count:
            middle = 2.0 ** ((offset + i + 0.5) * 2.0 ** -scale)
            key = bucket_key(middle, schema)
            found[key] = found.get(key, 0) + count
    return found


def test_exponential_delta_from_scale_20_downscaled_to_8() -> None:
    rng = random.Random(20)
    native = NativeHistogram(MAX_SCHEMA)
    expected_positive: dict[int, int] = {}
    expected_negative: dict[int, int] = {}
    for _ in range(20):
        # scale 20: a bucket is 2**(2**-20) wide; ~3,000 buckets span a
        # few schema-8 buckets, with offsets negative and positive
        positive_offset = rng.randrange(-400_000, 400_000)
        negative_offset = rng.randrange(-400_000, 400_000)
        positive = [rng.choice((0, 0, 1, 2, 7)) for _ in range(3000)]
        negative = [rng.choice((0, 3)) for _ in range(500)]
        assert native.add_exponential(20, 0.0, 4, positive_offset, positive,
                                      negative_offset, negative)
        for side, found in ((expected_positive,
                             _otlp_reference(20, positive_offset, positive, MAX_SCHEMA)),
                            (expected_negative,
                             _otlp_reference(20, negative_offset, negative, MAX_SCHEMA))):
            for key, count in found.items():
                side[key] = side.get(key, 0) + count
    assert native.schema == MAX_SCHEMA
    assert native.positive == expected_positive
    assert native.negative == expected_negative
    assert native.zero_count == 80


def test_a_coarser_delta_brings_the_histogram_down() -> None:
    native = NativeHistogram(8)
    values = [1.3, 2.7, 5.5, 0.4, 0.9]
    for value in values:
        native.observe(value)
    assert native.add_exponential(2, 0.0, 0, 0, [1, 1], 0, [])
    assert native.schema == 2
    reference: dict[int, int] = {}
    for value in values:
        key = bucket_key(value, 2)
        reference[key] = reference.get(key, 0) + 1
    for key, count in _otlp_reference(2, 0, [1, 1], 2).items():
        reference[key] = reference.get(key, 0) + count
    assert native.positive == reference


def test_scales_below_minus_four_are_refused() -> None:
    native = NativeHistogram(3)
    native.observe(1.5)
    assert not native.add_exponential(-5, 0.0, 1, 0, [1], 0, [])
    assert native.positive == {bucket_key(1.5, 3): 1}
    assert native.zero_count == 0
    assert native.schema == 3


def test_a_wider_zero_bucket_takes_the_buckets_it_reaches() -> None:
    native = NativeHistogram(0)
    for value in (0.3, 0.6, 3.0, -0.3):
        native.observe(value)
    assert native.add_exponential(0, 0.5, 2, 0, [], 0, [])
    # 0.3 and -0.3 lie in (0.25, 0.5]: merged; 0.6 lies in (0.5, 1]: kept
    assert native.zero_count == 4
    assert native.zero_threshold == 0.5
    assert native.positive == {0: 1, 2: 1}
    assert native.negative == {}


def _decode(spans: list[tuple[int, int]], deltas: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    key = 0
    count = 0
    index = 0
    for number, (offset, length) in enumerate(spans):
        key = offset if number == 0 else key + offset
        for _ in range(length):
            count += deltas[index]
            index += 1
            if count:
                found[key] = count
            key += 1
    assert index == len(deltas)
    return found


def test_spans_and_deltas_round_trip() -> None:
    rng = random.Random(3)
    for _ in range(200):
        native = NativeHistogram(2)
        for _ in range(rng.randrange(0, 40)):
            native.observe(rng.choice((1, -1)) * rng.lognormvariate(0, 3))
        for negative, side in ((False, native.positive), (True, native.negative)):
            spans, deltas = native.spans(negative)
            assert _decode(spans, deltas) == side
            # gaps of up to two empty buckets are filled, not spanned
            assert all(offset > 2 for offset, _ in spans[1:])


def _native_total(native: NativeHistogram) -> int:
    return native.zero_count + sum(native.positive.values()) + sum(native.negative.values())


def _native_series() -> NativeHistogramSeries:
    return NativeHistogramSeries((), "", 0.0, (0.1, 1.0, 10.0), NativeHistogram(MAX_SCHEMA))


def test_fold_gives_a_native_histogram_the_exponential_buckets_as_they_are() -> None:
    """OTLP's delta (store/buckets.py's fold) reaches the native buckets
    schema for schema, beside the classic ones."""
    series = _native_series()
    counts = (3, 0, 5, 1)
    buckets = Buckets(counts, scale=20, offset=-1_500_000, zero_count=2,
                      negative_offset=10, negative=(4,))
    assert fold(series, buckets, total=1.0, count=15, now=0.0)
    reference = NativeHistogram(MAX_SCHEMA)
    reference.add_exponential(20, 0.0, 2, -1_500_000, counts, 10, (4,))
    assert series.native is not None
    assert (series.native.positive, series.native.negative, series.native.zero_count) == (
        reference.positive, reference.negative, reference.zero_count)
    assert series.count == 15 == _native_total(series.native)


@pytest.mark.parametrize(
    "buckets",
    [
        pytest.param(Buckets((1, 2, 3), bounds=(5.0, 50.0)), id="explicit-with-overflow"),
        pytest.param(Buckets((1, 2, 3), scale=3, offset=40, factor=0.001), id="milliseconds"),
    ],
)
def test_fold_keeps_the_native_count_whatever_the_buckets(buckets: Buckets) -> None:
    series = _native_series()
    assert fold(series, buckets, total=0.5, count=6, now=0.0)
    assert series.native is not None
    assert _native_total(series.native) == series.count == 6


def test_series_add_exponential_counts_and_sums_with_the_buckets() -> None:
    """For a source with no classic buckets to fill (fold() fills those):
    the native buckets, the count and the sum in one call, or nothing."""
    series = _native_series()
    assert series.add_exponential(10, 0.0, 1, 0, (2, 3), 0, (), count=6, total=4.5)
    assert (series.count, series.sum) == (6, 4.5)
    assert series.native is not None and _native_total(series.native) == 6
    assert series.counts == [0, 0, 0, 0]  # classic buckets untouched
    assert not series.add_exponential(-5, 0.0, 1, 0, (1,), 0, (), count=2, total=1.0)
    assert not series.add_exponential(3, 0.0, 1, 0, (1,), 0, (), count=2, total=math.inf)
    assert (series.count, series.sum, _native_total(series.native)) == (6, 4.5, 6)
