"""The store's rules: one type per name, no colliding sample names, TTL."""

from __future__ import annotations

import pytest

from aerostat.store import FamilySpec, MetricType, Store


def spec(name: str, metric_type: MetricType) -> FamilySpec:
    return FamilySpec(name, metric_type, "help")


@pytest.mark.parametrize(
    ("first", "second", "admitted"),
    [
        pytest.param(("x", MetricType.COUNTER), ("x", MetricType.GAUGE), False, id="same-name"),
        pytest.param(("x", MetricType.HISTOGRAM), ("x_bucket", MetricType.COUNTER), False,
                     id="bucket-of-histogram"),
        pytest.param(("x", MetricType.SUMMARY), ("x_count", MetricType.GAUGE), False,
                     id="count-of-summary"),
        pytest.param(("x_sum", MetricType.GAUGE), ("x", MetricType.SUMMARY), False,
                     id="summary-over-existing-sum"),
        pytest.param(("x_bucket", MetricType.COUNTER), ("x", MetricType.SUMMARY), True,
                     id="summaries-have-no-buckets"),
        pytest.param(("x", MetricType.COUNTER), ("x_count", MetricType.COUNTER), True,
                     id="counters-may-share-a-stem"),
    ],
)
def test_name_clashes(first: tuple[str, MetricType], second: tuple[str, MetricType],
                      admitted: bool) -> None:
    store = Store()
    assert store.series_for(spec(*first), ()) is not None
    assert (store.series_for(spec(*second), ()) is not None) is admitted


def test_reserved_names_are_refused() -> None:
    store = Store(reserved=frozenset({"statsd_exporter_lines_total"}))
    assert store.series_for(spec("statsd_exporter_lines_total", MetricType.GAUGE), ()) is None


def test_ttl_expires_idle_series_only() -> None:
    store = Store()
    idle = store.series_for(spec("a", MetricType.GAUGE), (("k", "1"),), ttl=5.0)
    busy = store.series_for(spec("a", MetricType.GAUGE), (("k", "2"),), ttl=5.0)
    forever = store.series_for(spec("b", MetricType.GAUGE), (), ttl=0.0)
    assert idle and busy and forever
    idle.updated, busy.updated, forever.updated = 100.0, 104.0, 0.0
    assert store.expire(106.0) == 1
    assert list(store.families["a"].series) == [(("k", "2"),)]
    assert store.expire(110.0) == 1
    assert "a" not in store.families and "b" in store.families
    assert store.series_count == 1
