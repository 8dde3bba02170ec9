"""Lines that repeat byte for byte take a shorter path (their value parsed
once): they must land exactly as the line-cache path lands them, and be
forgotten whenever the line cache is."""

from __future__ import annotations

from aerostat.counters import Telemetry
from aerostat.mapper import Mapper, MappingConfig
from aerostat.mapper.config import parse_mapping_config
from aerostat.pipeline import Pipeline
from aerostat.store import Store


def pipeline(mapping: MappingConfig | None = None, **options: float) -> Pipeline:
    return Pipeline(Mapper(mapping or MappingConfig.empty()), Store(), Telemetry(),
                    **options)  # type: ignore[arg-type]


def value(lines: Pipeline, name: str) -> float | None:
    family = lines.store.families.get(name)
    if family is None or not family.series:
        return None
    (series,) = family.series.values()
    return float(series.value)  # type: ignore[union-attr]


def test_repeated_counter_lines_count_every_copy() -> None:
    lines = pipeline()
    lines.feed_batch([b"hits:1|c"] * 5 + [b"hits:2|c|@0.5"] * 3, 1.0)
    assert b"hits:1|c" in lines._exact
    assert value(lines, "hits") == 5 + 3 * 4
    assert lines.telemetry.lines == 8


def test_a_gauge_takes_the_last_value_and_relative_steps_are_never_remembered() -> None:
    lines = pipeline()
    lines.feed_batch([b"g:5|g", b"g:7|g", b"g:5|g"], 1.0)
    assert value(lines, "g") == 5
    lines.feed_batch([b"g:+1|g"] * 3, 1.0)
    assert value(lines, "g") == 8
    assert b"g:+1|g" not in lines._exact


def test_timers_are_not_remembered_whole() -> None:
    lines = pipeline()
    lines.feed_batch([b"t:320|ms"] * 3, 1.0)
    assert not lines._exact


def test_a_remembered_line_of_an_expired_series_makes_a_new_series() -> None:
    lines = pipeline(default_ttl=10.0)
    lines.feed_batch([b"hits:1|c"] * 2, 1.0)
    gone = lines.store.expire(100.0)
    assert gone
    lines.forget_series(gone)
    assert not lines._exact
    lines.feed_batch([b"hits:1|c"], 101.0)
    assert value(lines, "hits") == 1


def test_a_new_mapping_applies_to_remembered_lines() -> None:
    lines = pipeline()
    lines.feed_batch([b"a.b:1|c"] * 2, 1.0)
    assert value(lines, "a_b") == 2
    lines.set_mapper(Mapper(parse_mapping_config(
        "mappings:\n- match: a.b\n  name: renamed_total\n")))
    lines.feed_batch([b"a.b:1|c"], 2.0)
    assert value(lines, "renamed_total") == 1


def test_the_remembered_lines_are_bounded_and_off_with_the_line_cache() -> None:
    lines = pipeline(line_cache_size=100)
    lines.feed_batch([f"n{i}:1|c".encode() for i in range(1000)], 1.0)
    assert len(lines._exact) <= 100
    off = pipeline(line_cache_size=0)
    off.feed_batch([b"hits:1|c"] * 3, 1.0)
    assert not off._exact
    assert value(off, "hits") == 3

