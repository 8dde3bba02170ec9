"""Cumulative streams → increments, and bucket counts → classic buckets:
the arithmetic, case by case."""

from __future__ import annotations

import pytest

from aerostat.events import Buckets, Kind
from aerostat.otlp.decode import Point
from aerostat.otlp.streams import Streams, rise_of
from aerostat.store import HistogramSeries, SummarySeries, fold
from aerostat.store.buckets import upper_bounds


def total(value: float, stream: str = "s", monotonic: bool = True) -> Point:
    return Point("sum", "n", {}, "p", stream, 1, monotonic, True, value)


@pytest.mark.parametrize(
    ("values", "increments"),
    [
        ((3, 3, 5), [3, 5 - 3]),  # a repeat adds nothing
        ((10, 4, 12, 4, 12), [10, 2]),  # a frozen copy below adds nothing
        ((0, 0, 1), [0, 1]),  # the first total makes the series, at 0
    ],
    ids=["repeat", "frozen-copy", "from-zero"],
)
def test_a_counter_stream_adds_its_rise(values: tuple[float, ...], increments: list[float]
                                        ) -> None:
    streams = Streams()
    events = [streams.events(total(value), 0.0) for value in values]
    assert [event.value for event in events if event is not None] == increments
    assert all(event.kind is Kind.COUNTER for event in events if event is not None)


def test_an_up_down_counter_moves_a_gauge_by_its_change() -> None:
    streams = Streams()
    events = [streams.events(total(value, monotonic=False), 0.0) for value in (3, 1, 4)]
    assert [(e.kind, e.value, e.relative) for e in events if e is not None] == [
        (Kind.GAUGE, 3, True), (Kind.GAUGE, -2, True), (Kind.GAUGE, 3, True)]


def test_silent_streams_expire_and_the_live_ones_stay() -> None:
    streams = Streams(ttl=10.0)
    streams.events(total(1, "old"), 0.0)
    streams.events(total(1, "live"), 0.0)
    streams.events(total(2, "live"), 8.0)
    assert streams.expire(12.0) == 1
    assert len(streams) == 1


def test_past_the_cap_new_streams_are_refused() -> None:
    streams = Streams(max_streams=1)
    assert streams.events(total(1, "a"), 0.0) is not None
    assert streams.events(total(1, "b"), 0.0) is None
    assert streams.refused == 1


def exponential(scale: int, offset: int, counts: tuple[int, ...], zero: int = 0) -> Buckets:
    return Buckets(counts, (), scale, offset, zero)


@pytest.mark.parametrize(
    ("before", "now", "rise"),
    [
        (exponential(2, 4, (1, 2)), exponential(2, 4, (1, 3, 1)),
         exponential(2, 4, (0, 1, 1))),
        # the SDK went from scale 2 to 1: buckets 4,5 → 2 and 6,7 → 3
        (exponential(2, 4, (1, 2, 1)), exponential(1, 2, (3, 2)),
         exponential(1, 2, (0, 1))),
        (exponential(1, 0, (1,), zero=2), exponential(1, 0, (1,), zero=3),
         exponential(1, 0, (0,), zero=1)),
        (Buckets((1, 2), (1.0,)), Buckets((1, 5), (1.0,)), Buckets((0, 3), (1.0,))),
        (Buckets((1, 2), (1.0,)), Buckets((1, 5, 0), (1.0, 2.0)), None),
        (exponential(1, 0, (1,)), exponential(2, 0, (1,)), None),
    ],
    ids=["same-scale", "downscaled", "zeros", "explicit", "other-bounds", "finer-scale"],
)
def test_the_rise_of_a_cumulative_histogram(before: Buckets, now: Buckets,
                                            rise: Buckets | None) -> None:
    assert rise_of(now, before) == rise


def test_a_histogram_stream_behind_its_count_is_a_copy() -> None:
    streams = Streams()

    def point(count: int, counts: tuple[int, ...]) -> Point:
        return Point("histogram", "h", {}, "p", "s", 1, False, True, float(count), count,
                     exponential(0, 0, counts))

    first = streams.events(point(2, (2,)), 0.0)
    assert first is not None and first.weight == 2
    assert streams.events(point(1, (1,)), 0.0) is None
    later = streams.events(point(3, (2, 1)), 0.0)
    assert later is not None and later.weight == 1 and later.buckets == exponential(0, 0, (0, 1))


def test_upper_bounds_of_exponential_buckets_in_base_units() -> None:
    # scale 0: bucket i holds (2**i, 2**(i+1)]; ms → s
    buckets = Buckets((1, 0, 2), (), 0, 3, 1, 0, (1,), 0.001)
    assert upper_bounds(buckets) == [(-0.001, 1), (0.0, 1), (0.016, 1), (0.064, 2)]


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        # (8, 16] ms → le 0.025 s; (32, 64] ms → 0.1; (64, 128] → 0.25
        (Buckets((1, 0, 2, 1), (), 0, 3, factor=0.001), [0, 1, 3, 4, 4]),
        # a bucket whose upper bound equals a classic bound lands on it
        (Buckets((2,), (), 0, -1, factor=1.0), [0, 0, 0, 2, 2]),
        (Buckets((1, 1, 1), (0.02, 0.2)), [0, 1, 1, 2, 3]),
    ],
    ids=["exponential-ms", "on-a-bound", "explicit"],
)
def test_buckets_fold_conservatively_into_classic_ones(buckets: Buckets,
                                                       expected: list[int]) -> None:
    series = HistogramSeries((), "", 0.0, (0.005, 0.025, 0.1, 1.0))
    count = sum(buckets.counts)
    assert fold(series, buckets, 0.5, count, 0.0)
    cumulative, running = [], 0
    for bucket_count in series.counts:
        running += bucket_count
        cumulative.append(running)
    assert cumulative == expected
    assert series.count == count and series.sum == 0.5


def test_a_fold_whose_counts_disagree_changes_nothing() -> None:
    series = HistogramSeries((), "", 0.0, (1.0,))
    assert not fold(series, Buckets((1, 1), (1.0,)), 1.0, 3, 0.0)
    assert series.count == 0 and series.counts == [0, 0]


def test_a_summary_takes_each_bucket_at_its_upper_bound_and_the_exact_sum() -> None:
    series = SummarySeries((), "", 0.0, (0.5,), 600.0, 5)
    assert fold(series, Buckets((1, 3), (), 0, 0), 5.0, 4, 0.0)
    assert series.count == 4 and series.sum == 5.0
