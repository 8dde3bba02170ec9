"""The store's byte budget: what it estimates a series costs, against what
tracemalloc sees one take, and the refusal past the budget."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from aerostat.store import FamilySpec, MetricType, Refusal, Store
from aerostat.store.registry import series_bytes

SPECS = {
    "counter": FamilySpec("m", MetricType.COUNTER, "h"),
    "gauge": FamilySpec("m", MetricType.GAUGE, "h"),
    "histogram": FamilySpec("m", MetricType.HISTOGRAM, "h",
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)),
    "summary": FamilySpec("m", MetricType.SUMMARY, "h", quantiles=(0.5, 0.9, 0.99)),
    "sender gauge": FamilySpec("m", MetricType.GAUGE, "h", senders="sum"),
}


def measured_bytes(spec: FamilySpec, labels: int, length: int, count: int = 2000) -> float:
    """Memory per series, labels included, as the pipeline makes them: new
    strings for every series."""
    store = Store()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            pairs = tuple((f"label{j}", f"{i:08d}".ljust(length, "x")) for j in range(labels))
            store.series_for(spec, pairs)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert store.series_count == count
    return (after - before) / count


@pytest.mark.parametrize("kind", SPECS)
@pytest.mark.parametrize(("labels", "length"), [(2, 10), (3, 100), (2, 4000)])
def test_the_estimate_is_within_a_fifth_of_what_a_series_takes(
    kind: str, labels: int, length: int
) -> None:
    spec = SPECS[kind]
    pairs = tuple((f"label{j}", "x" * max(length, 8)) for j in range(labels))
    ratio = series_bytes(spec, pairs) / measured_bytes(spec, labels, length)
    assert 0.8 <= ratio <= 1.25, ratio


def test_past_the_budget_new_series_are_refused_and_old_ones_update() -> None:
    spec = SPECS["counter"]
    one = series_bytes(spec, (("k", "0"),))
    store = Store(max_bytes=3 * one)
    held = [store.series_for(spec, (("k", str(i)),)) for i in range(3)]
    assert store.series_for(spec, (("k", "3"),)) is Refusal.BYTES
    assert store.series_for(spec, (("k", "0"),)) is held[0]
    assert store.bytes == 3 * one


def test_expiry_gives_the_bytes_back() -> None:
    spec = SPECS["gauge"]
    store = Store(max_bytes=10_000)
    series = store.series_for(spec, (("k", "v"),), ttl=1.0)
    assert not isinstance(series, Refusal) and store.bytes > 0
    series.updated = 0.0
    store.expire(now=5.0)
    assert store.bytes == 0 and store.series_count == 0
