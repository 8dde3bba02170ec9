"""The pipeline's own bounds: the line cache's size and eviction, the cache
of refused lines, and the conflict counter's names."""

from __future__ import annotations

from aerostat.counters import Telemetry
from aerostat.events import Reason
from aerostat.mapper import Mapper, MappingConfig
from aerostat.pipeline import CONFLICT_NAMES, OTHER_CONFLICTS, Pipeline
from aerostat.store import Store


def pipeline(**options: int) -> Pipeline:
    return Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry(), **options)


def test_a_full_line_cache_drops_its_oldest_eighth_and_keeps_the_newest() -> None:
    lines = pipeline(line_cache_size=800)
    lines.feed_batch([f"n{i}:1|c".encode() for i in range(5000)], 1.0)
    assert 700 <= lines.cache_length <= 800
    lines.feed_batch([b"n4999:1|c"], 2.0)
    assert lines.telemetry.lines == 5001
    # the newest line is still known: its second sample took the cached path
    assert (b"n4999", b"c") in lines._cache and (b"n0", b"c") not in lines._cache


def test_long_keys_stay_out_of_the_line_cache() -> None:
    lines = pipeline()
    lines.feed(b"short:1|c", 1.0)
    lines.feed(b"l" * 1000 + b",tag=" + b"v" * 1100 + b":1|c", 1.0)
    assert lines.cache_length == 1
    assert sum(lines.telemetry.events) == 2  # both landed


def test_a_refused_line_is_remembered_and_counted_the_same() -> None:
    lines = pipeline()
    bad = b"x,k=" + b"v" * 5000 + b":1|c"  # a label value past the limit
    for _ in range(3):
        lines.feed(bad, 1.0)
    telemetry = lines.telemetry
    assert len(lines._refused) == 1
    assert telemetry.lines == telemetry.samples == 3
    assert telemetry.sample_errors == {Reason.LABEL_VALUE_TOO_LONG: 3}
    assert telemetry.events == [3, 0, 0] and telemetry.events_unmapped == 3
    lines.forget()  # a reload may change what the line means
    assert not lines._refused


def test_conflicts_are_counted_under_at_most_so_many_names() -> None:
    lines = pipeline()
    count = CONFLICT_NAMES + 50
    lines.feed_batch([f"c{i}:1|c".encode() for i in range(count)], 1.0)
    lines.feed_batch([f"c{i}:1|g".encode() for i in range(count)], 1.0)
    conflicts = lines.telemetry.conflicts
    assert len(conflicts) == CONFLICT_NAMES + 1
    assert conflicts[("gauge", OTHER_CONFLICTS)] == 50
    assert sum(conflicts.values()) == count


def test_an_overflow_that_depends_on_the_series_is_not_remembered() -> None:
    """``-1e308|g`` relative overflows at -1e308 but not at +1e308: the same
    bytes must be judged again (the fuzz tests found this)."""
    lines = pipeline()
    lines.feed_batch([b"a:-1e308|g", b"a:-1e308|g|@0.5", b"a:1e308|g", b"a:-1e308|g|@0.5"], 1.0)
    assert lines.telemetry.sample_errors == {Reason.NON_FINITE_VALUE: 1}
    series = lines.store.families["a"].series[()]
    assert series.value == 0.0  # type: ignore[union-attr]


def test_tags_and_tag_errors_count_on_the_cached_path_too() -> None:
    """statsd_exporter_tags_total and tag_errors_total counted only a line's
    first copy; the copies after it took the cached path uncounted."""
    lines = pipeline()
    lines.feed_batch([b"a:1|c|#k:v", b"a:2|c|#k:v", b"a:3|c|#k:v"], 1.0)
    lines.feed_batch([b"b,bad:1|c", b"b,bad:1|c"], 1.0)
    assert lines.telemetry.tags == 3
    assert lines.telemetry.tag_errors == 2
    assert lines.telemetry.lines == 5
