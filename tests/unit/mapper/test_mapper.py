"""The Mapper end to end: a config and a name in, the Match out; the cache."""

from __future__ import annotations

import textwrap

import pytest

from aerostat.events import Kind
from aerostat.mapper import Action, Mapper, MappingConfig, parse_mapping_config

RULES = textwrap.dedent(
    r"""
    mappings:
    - match: '.'
      match_type: regex
      name: regex_catch_all
      action: drop
    - match: airflow.dag.*.*.duration
      name: airflow_task_duration
      labels:
        dag_id: $1
        task_id: ${2}
        job: airflow
    - match: airflow.pool.*.*
      name: airflow_pool_${2}
      labels: {pool: $1}
    - match: cnt.*
      name: only_counter
      match_metric_type: counter
    - match: cnt.*
      name: only_gauge
      match_metric_type: gauge
    - match: web.*
      name: ${1}
      labels: {site: $1}
    - match: empty.*
      name: $1_total
    - match: two.*.*
      name: t_${2}
      labels: {first: $1, second: $2}
    """
)

# (id, name, kind, expected (rule index, name, labels) or None)
CASES: list[tuple[str, str, Kind, tuple[int, str, dict[str, str]]]] = [
    (
        "glob-with-labels",
        "airflow.dag.etl.load.duration",
        Kind.OBSERVER,
        (1, "airflow_task_duration", {"dag_id": "etl", "task_id": "load", "job": "airflow"}),
    ),
    (
        "glob-in-name",
        "airflow.pool.default.open_slots",
        Kind.GAUGE,
        (2, "airflow_pool_open_slots", {"pool": "default"}),
    ),
    (
        "glob-beats-earlier-regex",
        "web.localhost",
        Kind.COUNTER,
        (5, "localhost", {"site": "localhost"}),
    ),
    ("regex-when-no-glob", "x.y", Kind.COUNTER, (0, "regex_catch_all", {})),
    ("match-metric-type-counter", "cnt.a", Kind.COUNTER, (3, "only_counter", {})),
    ("match-metric-type-gauge", "cnt.a", Kind.GAUGE, (4, "only_gauge", {})),
    ("match-metric-type-none-left", "cnt.a", Kind.OBSERVER, (0, "regex_catch_all", {})),
    ("more-components-than-any-glob", "web.a.b", Kind.COUNTER, (0, "regex_catch_all", {})),
    ("captured-name-escaped", "web.my-host", Kind.COUNTER, (5, "my_host", {"site": "my-host"})),
    (
        "captured-name-escaped-digit-dashes-colon",
        "web.1--a:b",
        Kind.COUNTER,
        (5, "_1_a_b", {"site": "1--a:b"}),
    ),
    ("label-value-not-escaped", "web.a b", Kind.COUNTER, (5, "a_b", {"site": "a b"})),
    ("empty-name-after-substitution", "empty.x", Kind.COUNTER, (6, "", {})),
    ("empty-component-capture", "web.", Kind.COUNTER, (5, "", {"site": ""})),
    # deviation: upstream does not capture a literal "*" and shifts $2 into $1.
    ("star-in-name-captured", "two.*.b", Kind.COUNTER, (7, "t_b", {"first": "*", "second": "b"})),
]


@pytest.mark.parametrize(
    ("name", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_map(name: str, kind: Kind, expected: tuple[int, str, dict[str, str]]) -> None:
    found = Mapper(parse_mapping_config(RULES)).map(name, kind)
    assert found is not None
    assert (found.rule.index, found.name, found.labels) == expected


REGEX_RULES = textwrap.dedent(
    r"""
    mappings:
    - match: 'op\.(\w+)_(?P<outcome>success|failure)'
      match_type: regex
      name: op_$1
      labels: {outcome: $outcome, whole: $0}
    - match: 'timer\.(.*)'
      match_type: regex
      name: t_${1}
      match_metric_type: observer
    - match: '^anchored$'
      match_type: regex
      name: anchored
    """
)

REGEX_CASES: list[tuple[str, str, Kind, tuple[int, str, dict[str, str]] | None]] = [
    (
        "unanchored-named-group",
        "airflow.op.bash_failure.x",
        Kind.COUNTER,
        (0, "op_bash", {"outcome": "failure", "whole": "op.bash_failure"}),
    ),
    ("kind-restricted-match", "timer.a.b", Kind.OBSERVER, (1, "t_a_b", {})),
    ("kind-restricted-skip", "timer.a.b", Kind.GAUGE, None),
    ("anchored-by-user", "anchored", Kind.GAUGE, (2, "anchored", {})),
    ("anchored-by-user-miss", "xanchored", Kind.GAUGE, None),
    ("no-match", "nothing", Kind.GAUGE, None),
]


@pytest.mark.parametrize(
    ("name", "kind", "expected"), [c[1:] for c in REGEX_CASES], ids=[c[0] for c in REGEX_CASES]
)
def test_map_regex(name: str, kind: Kind, expected: tuple[int, str, dict[str, str]] | None) -> None:
    found = Mapper(parse_mapping_config(REGEX_RULES)).map(name, kind)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found.rule.index, found.name, found.labels) == expected


def test_drop_is_returned_not_acted_on() -> None:
    found = Mapper(parse_mapping_config(RULES)).map("x", Kind.COUNTER)
    assert found is not None and found.rule.action is Action.DROP


def test_empty_config_maps_nothing() -> None:
    assert Mapper(MappingConfig.empty()).map("a.b", Kind.COUNTER) is None


def test_ordering_mode_from_defaults() -> None:
    text = (
        "defaults:\n  glob_disable_ordering: {}\n"
        "mappings:\n- match: a.*\n  name: first\n- match: a.b\n  name: literal\n"
    )
    ordered = Mapper(parse_mapping_config(text.format("false"))).map("a.b", Kind.COUNTER)
    literal = Mapper(parse_mapping_config(text.format("true"))).map("a.b", Kind.COUNTER)
    assert ordered is not None and ordered.name == "first"
    assert literal is not None and literal.name == "literal"


# -- cache ------------------------------------------------------------------


def test_cache_counts_gets_and_hits_and_keeps_misses() -> None:
    mapper = Mapper(parse_mapping_config("mappings:\n- match: a.*\n  name: x_$1\n"), cache_size=10)
    assert mapper.map("a.b", Kind.COUNTER) is mapper.map("a.b", Kind.COUNTER)
    assert mapper.map("zzz", Kind.COUNTER) is None
    assert mapper.map("zzz", Kind.COUNTER) is None
    assert (mapper.cache_gets, mapper.cache_hits, mapper.cache_length) == (4, 2, 2)


def test_cache_key_includes_kind() -> None:
    mapper = Mapper(
        parse_mapping_config("mappings:\n- match: a\n  name: c\n  match_metric_type: counter\n")
    )
    assert mapper.map("a", Kind.COUNTER) is not None
    assert mapper.map("a", Kind.GAUGE) is None
    assert mapper.cache_length == 2


def test_cache_evicts_least_recently_used() -> None:
    mapper = Mapper(parse_mapping_config("mappings:\n- match: '*'\n  name: n_$1\n"), cache_size=2)
    mapper.map("a", Kind.COUNTER)
    mapper.map("b", Kind.COUNTER)
    mapper.map("a", Kind.COUNTER)  # "b" is now the oldest
    mapper.map("c", Kind.COUNTER)
    assert mapper.cache_length == 2
    hits = mapper.cache_hits
    mapper.map("a", Kind.COUNTER)
    assert mapper.cache_hits == hits + 1
    mapper.map("b", Kind.COUNTER)
    assert mapper.cache_hits == hits + 1


def test_cache_size_zero_disables() -> None:
    mapper = Mapper(parse_mapping_config("mappings:\n- match: '*'\n  name: n_$1\n"), cache_size=0)
    first = mapper.map("a", Kind.COUNTER)
    assert first is not None and first.name == "n_a"
    assert (mapper.cache_gets, mapper.cache_hits, mapper.cache_length) == (0, 0, 0)


def test_cached_answers_are_per_name() -> None:
    # statsd_exporter #273: one rule, several names, each keeps its own expansion.
    mapper = Mapper(
        parse_mapping_config("mappings:\n- match: aa.bb.*.*\n  name: aa_bb_${1}_total\n")
    )
    for _ in range(3):
        for middle in ("aa", "bb", "cc"):
            found = mapper.map(f"aa.bb.{middle}.app", Kind.COUNTER)
            assert found is not None and found.name == f"aa_bb_{middle}_total"
