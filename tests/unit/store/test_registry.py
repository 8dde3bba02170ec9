"""The store's rules: one type per name, no colliding sample names, TTL."""

from __future__ import annotations

import pytest

from aerostat.store import FamilySpec, MetricType, Refusal, Store


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
    assert not isinstance(store.series_for(spec(*first), ()), Refusal)
    assert (store.series_for(spec(*second), ()) is not Refusal.CONFLICT) is admitted


def test_reserved_names_are_refused() -> None:
    store = Store(reserved=frozenset({"statsd_exporter_lines_total"}))
    refused = store.series_for(spec("statsd_exporter_lines_total", MetricType.GAUGE), ())
    assert refused is Refusal.CONFLICT


def test_ttl_expires_idle_series_only() -> None:
    store = Store()
    idle = store.series_for(spec("a", MetricType.GAUGE), (("k", "1"),), ttl=5.0)
    busy = store.series_for(spec("a", MetricType.GAUGE), (("k", "2"),), ttl=5.0)
    forever = store.series_for(spec("b", MetricType.GAUGE), (), ttl=0.0)
    assert not isinstance(idle, Refusal) and not isinstance(busy, Refusal)
    assert not isinstance(forever, Refusal)
    idle.updated, busy.updated, forever.updated = 100.0, 104.0, 0.0
    assert store.expire(106.0) == [idle]
    assert list(store.families["a"].series) == [(("k", "2"),)]
    assert store.expire(110.0) == [busy]
    assert "a" not in store.families and "b" in store.families
    assert store.series_count == 1


def test_series_limit_refuses_new_series_only() -> None:
    store = Store(max_series=2)
    first = store.series_for(spec("a", MetricType.GAUGE), (("k", "1"),))
    assert not isinstance(first, Refusal)
    assert not isinstance(store.series_for(spec("b", MetricType.COUNTER), ()), Refusal)
    assert store.series_for(spec("a", MetricType.GAUGE), (("k", "2"),)) is Refusal.LIMIT
    assert store.series_for(spec("c", MetricType.GAUGE), ()) is Refusal.LIMIT
    assert store.series_for(spec("a", MetricType.GAUGE), (("k", "1"),)) is first
    assert store.series_count == 2 and "c" not in store.families
