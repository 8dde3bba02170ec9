"""Mapping YAML into rules: what each key becomes, and how each mistake is
reported (message, key path, line and column)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from aerostat.errors import AerostatError
from aerostat.events import Kind
from aerostat.mapper import (
    Action,
    HistogramOptions,
    MappingConfig,
    MatchType,
    ObserverType,
    Quantile,
    SummaryOptions,
    load_mapping_config,
    parse_duration,
    parse_mapping_config,
)
from aerostat.mapper.rules import DEFAULT_HISTOGRAM, DEFAULT_SUMMARY

# The start of a file with one rule; cases append that rule's other keys.
R = "mappings:\n- match: a\n  name: x\n"


def parse(text: str) -> MappingConfig:
    return parse_mapping_config(textwrap.dedent(text), "m.yaml")


# (id, yaml, attribute of the first rule or "defaults.<attr>", expected value)
VALID: list[tuple[str, str, str, Any]] = [
    (
        "match-type-default-glob",
        "mappings:\n- match: a.*\n  name: x\n",
        "match_type",
        MatchType.GLOB,
    ),
    (
        "match-type-from-defaults",
        "defaults:\n  match_type: regex\nmappings:\n- match: a\n  name: x\n",
        "match_type",
        MatchType.REGEX,
    ),
    ("action-default-map", R, "action", Action.MAP),
    ("action-drop", R + "  action: drop\n", "action", Action.DROP),
    ("line", "\n\nmappings:\n- match: a\n  name: x\n", "line", 4),
    ("index", R, "index", 0),
    ("help-unset", R, "help", None),
    ("help", R + "  help: Some text.\n", "help", "Some text."),
    ("honor-labels", R + "  honor_labels: true\n", "honor_labels", True),
    ("scale-unset", R, "scale", None),
    ("scale-exponent-without-dot", R + "  scale: 1e-6\n", "scale", 1e-6),
    ("scale-int", R + "  scale: 1000\n", "scale", 1000.0),
    ("scale-null", R + "  scale: ~\n", "scale", None),
    (
        "metric-type-observer",
        R + "  match_metric_type: observer\n",
        "match_metric_type",
        Kind.OBSERVER,
    ),
    ("metric-type-any", R, "match_metric_type", None),
    (
        "labels-in-file-order",
        "mappings:\n- match: a.*\n  name: x\n  labels:\n    z: $1\n    a: lit\n    b: 200\n",
        "labels",
        (("z", "$1"), ("a", "lit"), ("b", "200")),
    ),
    (
        "single-character-label-name",  # deviation: upstream wants 2+ characters
        R + "  labels:\n    x: y\n",
        "labels",
        (("x", "y"),),
    ),
    ("label-value-null-is-empty", R + "  labels:\n    ab: ~\n", "labels", (("ab", ""),)),
    ("ttl-go-duration", R + "  ttl: 1m30s\n", "ttl", 90.0),
    ("ttl-bare-number-is-seconds", R + "  ttl: 45\n", "ttl", 45.0),
    (
        "ttl-from-defaults",
        "defaults:\n  ttl: 1h\nmappings:\n- match: a\n  name: x\n",
        "ttl",
        3600.0,
    ),
    (
        "ttl-zero-takes-default",
        "defaults:\n  ttl: 1h\nmappings:\n- match: a\n  name: x\n  ttl: 0s\n",
        "ttl",
        3600.0,
    ),
    ("observer-default-summary", R, "observer_type", ObserverType.SUMMARY),
    (
        "observer-from-defaults",
        "defaults:\n  observer_type: histogram\nmappings:\n- match: a\n  name: x\n",
        "observer_type",
        ObserverType.HISTOGRAM,
    ),
    (
        "observer-rule-beats-defaults",
        "defaults:\n  observer_type: histogram\n" + R + "  observer_type: summary\n",
        "observer_type",
        ObserverType.SUMMARY,
    ),
    ("summary-defaults", R, "summary", DEFAULT_SUMMARY),
    (
        "summary-merged-field-by-field",
        """\
        defaults:
          summary_options:
            quantiles: [{quantile: 0.9, error: 0.1}]
            max_age: 15m
            age_buckets: 3
        mappings:
        - match: a
          name: x
          summary_options:
            max_age: 5m
            buf_cap: 0
        """,
        "summary",
        SummaryOptions((Quantile(0.9, 0.1),), 300.0, 3, 500),
    ),
    (
        "summary-empty-quantiles-take-default",
        R + "  summary_options:\n    quantiles: []\n",
        "summary",
        DEFAULT_SUMMARY,
    ),
    ("histogram-defaults", R, "histogram", DEFAULT_HISTOGRAM),
    (
        "histogram-buckets-and-native-fields",
        """\
        mappings:
        - match: a
          name: x
          observer_type: histogram
          histogram_options:
            buckets: [0.1, 1, 10]
            native_histogram_bucket_factor: 1.5
            native_histogram_max_buckets: 100
        """,
        "histogram",
        HistogramOptions((0.1, 1.0, 10.0), 1.5, 100),
    ),
    (
        "histogram-trailing-inf-dropped",
        R + "  histogram_options:\n    buckets: [1, 2, .inf]\n",
        "histogram",
        HistogramOptions((1.0, 2.0), 1.1, 256),
    ),
    (
        "histogram-options-without-any-observer-type",  # upstream accepts it too
        R + "  histogram_options:\n    buckets: [1]\n",
        "observer_type",
        ObserverType.SUMMARY,
    ),
    (
        "defaults.glob_disable_ordering",
        "defaults:\n  glob_disable_ordering: yes\n",
        "defaults.glob_disable_ordering",
        True,
    ),
    ("defaults.ttl", "defaults:\n  ttl: 500ms\n", "defaults.ttl", 0.5),
    ("defaults.empty-document", "", "defaults.observer_type", ObserverType.SUMMARY),
    ("defaults.null-sections", "defaults:\nmappings:\n", "defaults.match_type", MatchType.GLOB),
]


@pytest.mark.parametrize(
    ("yaml_text", "attribute", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID]
)
def test_valid(yaml_text: str, attribute: str, expected: Any) -> None:
    config = parse(yaml_text)
    if attribute.startswith("defaults."):
        assert getattr(config.defaults, attribute.removeprefix("defaults.")) == expected
    else:
        assert getattr(config.rules[0], attribute) == expected


def test_merge_key_inside_mappings() -> None:
    config = parse(
        """\
        mappings:
        - &first
          match: a.*
          name: x
          labels: {ab: $1}
        - <<: *first
          match: b.*
        """
    )
    assert [(r.match, r.name, r.labels) for r in config.rules] == [
        ("a.*", "x", (("ab", "$1"),)),
        ("b.*", "x", (("ab", "$1"),)),
    ]


def test_empty_config() -> None:
    empty = MappingConfig.empty()
    assert empty.rules == ()
    assert empty.source == "<none>"
    assert parse("").defaults == empty.defaults


# (id, yaml, field, line, column, words the message must contain);
# a field "N.key" stands for "mappings[N].key".
INVALID: list[tuple[str, str, str | None, int, int, str]] = [
    ("yaml-syntax", "mappings:\n- match: *.foo\n", None, 2, 11, "must be quoted"),
    ("yaml-bad-escape", 'mappings:\n- match: "a\\.b"\n', None, 2, 13, "unknown escape"),
    ("top-level-not-mapping", "- a\n", None, 1, 1, "expected a mapping"),
    ("unknown-top-key", "mapping:\n- match: a\n", "mapping", 1, 1, "did you mean 'mappings'"),
    ("unknown-rule-key", R + "  nmae: y\n", "0.nmae", 4, 3, "unknown key"),
    ("duplicate-key", R + "  name: y\n", "0.name", 4, 3, "repeated"),
    ("mappings-not-list", "mappings:\n  match: a\n", "mappings", 2, 3, "expected a list"),
    (
        "removed-timer-type",
        R + "  timer_type: histogram\n",
        "0.timer_type",
        4,
        3,
        "renamed to 'observer_type'",
    ),
    ("removed-buckets", R + "  buckets: [1]\n", "0.buckets", 4, 3, "histogram_options.buckets"),
    (
        "removed-quantiles",
        R + "  quantiles: []\n",
        "0.quantiles",
        4,
        3,
        "summary_options.quantiles",
    ),
    (
        "removed-in-defaults",
        "defaults:\n  timer_type: summary\n",
        "defaults.timer_type",
        2,
        3,
        "renamed",
    ),
    ("missing-match", "mappings:\n- name: x\n", "0.match", 2, 3, "missing"),
    ("missing-name", "mappings:\n- match: a\n", "0.name", 2, 3, "missing"),
    ("empty-name", "mappings:\n- match: a\n  name: ''\n", "0.name", 3, 9, "missing"),
    (
        "name-starts-with-digit",
        "mappings:\n- match: a\n  name: 0foo\n",
        "0.name",
        3,
        9,
        "invalid name",
    ),
    ("name-with-colon", "mappings:\n- match: a\n  name: a:b\n", "0.name", 3, 9, "invalid name"),
    (
        "name-named-reference",
        "mappings:\n- match: a\n  name: ${x}\n",
        "0.name",
        3,
        9,
        "invalid name",
    ),
    (
        "glob-partial-star",
        "mappings:\n- match: a.b_*\n  name: x\n",
        "0.match",
        2,
        10,
        "invalid glob",
    ),
    (
        "glob-first-starts-with-digit",
        "mappings:\n- match: 1a.b\n  name: x\n",
        "0.match",
        2,
        10,
        "invalid glob",
    ),
    (
        "glob-empty-component",
        "mappings:\n- match: a..b\n  name: x\n",
        "0.match",
        2,
        10,
        "invalid glob",
    ),
    (
        "glob-bang",
        "mappings:\n- match: bad!!metric.*\n  name: x\n",
        "0.match",
        2,
        10,
        "invalid glob",
    ),
    (
        "regex-does-not-compile",
        "mappings:\n- match: '(a'\n  match_type: regex\n  name: x\n",
        "0.match",
        2,
        10,
        "'(a'",
    ),
    (
        "regex-posix-class",
        "mappings:\n- match: '[[:alpha:]]'\n  match_type: regex\n  name: x\n",
        "0.match",
        2,
        10,
        "ambiguous",
    ),
    (
        "regex-re2-only",
        "mappings:\n- match: 'a\\z'\n  match_type: regex\n  name: x\n",
        "0.match",
        2,
        10,
        "invalid regular expression",
    ),
    ("label-name-invalid", R + "  labels:\n    1a: v\n", "0.labels.1a", 5, 5, "invalid label name"),
    (
        "label-name-reserved",
        R + "  labels:\n    __name__: v\n",
        "0.labels.__name__",
        5,
        5,
        "reserved",
    ),
    (
        "label-value-not-scalar",
        R + "  labels:\n    ab: [v]\n",
        "0.labels.ab",
        5,
        9,
        "expected a string",
    ),
    (
        "bad-observer-type",
        R + "  observer_type: timer\n",
        "0.observer_type",
        4,
        18,
        "histogram or summary",
    ),
    ("bad-match-type", R + "  match_type: exact\n", "0.match_type", 4, 15, "glob or regex"),
    ("bad-action", R + "  action: keep\n", "0.action", 4, 11, "map or drop"),
    (
        "bad-metric-type",
        R + "  match_metric_type: timer\n",
        "0.match_metric_type",
        4,
        22,
        "counter, gauge or observer",
    ),
    (
        "histogram-with-summary-options",
        R + "  observer_type: histogram\n  summary_options: {}\n",
        "0.summary_options",
        5,
        20,
        "observer_type is histogram",
    ),
    (
        "summary-with-histogram-options",
        R + "  observer_type: summary\n  histogram_options: {}\n",
        "0.histogram_options",
        5,
        22,
        "observer_type is summary",
    ),
    (
        "default-observer-conflicts",
        "defaults:\n  observer_type: histogram\n" + R + "  summary_options: {}\n",
        "0.summary_options",
        6,
        20,
        "observer_type is histogram",
    ),
    (
        "quantile-unknown-key",
        R + "  summary_options:\n    quantiles: [{q: 0.5}]\n",
        "0.summary_options.quantiles[0].q",
        5,
        18,
        "unknown key",
    ),
    (
        "quantile-out-of-range",
        R + "  summary_options:\n    quantiles: [{quantile: 2}]\n",
        "0.summary_options.quantiles[0].quantile",
        5,
        28,
        "between 0 and 1",
    ),
    (
        "buckets-not-increasing",
        R + "  histogram_options:\n    buckets: [1, 1]\n",
        "0.histogram_options.buckets[1]",
        5,
        18,
        "increasing",
    ),
    (
        "buckets-not-numbers",
        R + "  histogram_options:\n    buckets: ['1']\n",
        "0.histogram_options.buckets[0]",
        5,
        15,
        "expected a number",
    ),
    (
        "age-buckets-negative",
        R + "  summary_options:\n    age_buckets: -1\n",
        "0.summary_options.age_buckets",
        5,
        18,
        "negative",
    ),
    ("ttl-no-unit", R + "  ttl: '10'\n", "0.ttl", 4, 8, "with a unit"),
    ("ttl-negative", "defaults:\n  ttl: -1s\n", "defaults.ttl", 2, 8, "zero or more"),
    ("ttl-bad-unit", "defaults:\n  ttl: 1d\n", "defaults.ttl", 2, 8, "invalid duration"),
    (
        "bool-not-bool",
        "defaults:\n  glob_disable_ordering: 1\n",
        "defaults.glob_disable_ordering",
        2,
        26,
        "true or false",
    ),
    (
        "ordering-in-a-rule",
        R + "  glob_disable_ordering: true\n",
        "0.glob_disable_ordering",
        4,
        3,
        "unknown key",
    ),
    ("scale-not-finite", R + "  scale: .nan\n", "0.scale", 4, 10, "finite"),
    ("second-rule-named", R + "- match: b\n  name: '-'\n", "1.name", 5, 9, "invalid name"),
]


@pytest.mark.parametrize(
    ("yaml_text", "field", "line", "column", "words"),
    [c[1:] for c in INVALID],
    ids=[c[0] for c in INVALID],
)
def test_invalid(yaml_text: str, field: str | None, line: int, column: int, words: str) -> None:
    if field is not None and field[0].isdigit():
        field = "mappings[{}].{}".format(*field.split(".", 1))
    with pytest.raises(AerostatError) as caught:
        parse_mapping_config(yaml_text, "m.yaml")
    error = caught.value
    assert (error.source, error.field, error.line, error.column) == ("m.yaml", field, line, column)
    assert words in error.message
    assert str(error).startswith(f"m.yaml:{line}:{column}: ")


def test_merge_key_unknown_top_level_key_is_refused() -> None:
    with pytest.raises(AerostatError, match="unknown key 'base'"):
        parse("base: &b\n  name: x\nmappings:\n- <<: *b\n  match: a\n")


DURATIONS = [
    ("zero", "0", 0.0),
    ("seconds", "10s", 10.0),
    ("compound", "1m2s", 62.0),
    ("fraction", "1.5h", 5400.0),
    ("leading-dot", ".5s", 0.5),
    ("trailing-dot", "5.s", 5.0),
    ("millis", "500ms", 0.5),
    ("micro-sign", "2\u00b5s", 2e-6),
    ("micro-ascii", "2us", 2e-6),
    ("nanos", "3ns", 3e-9),
    ("signed", "-1m", -60.0),
    ("no-unit", "10", None),
    ("empty", "", None),
    ("dot-only", ".s", None),
    ("unknown-unit", "1d", None),
    ("space", "1 s", None),
    ("sign-only", "-", None),
]


@pytest.mark.parametrize(
    ("text", "seconds"), [c[1:] for c in DURATIONS], ids=[c[0] for c in DURATIONS]
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_load_mapping_config_reads_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yml"
    path.write_text("mappings:\n- match: a.*\n  name: x\n")
    config = load_mapping_config(path)
    assert config.source == str(path)
    assert config.rules[0].match == "a.*"


def test_load_mapping_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"
    with pytest.raises(AerostatError) as caught:
        load_mapping_config(path)
    assert caught.value.source == str(path)
    assert "cannot read" in caught.value.message


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("mappings:\n- match: a\n")
    with pytest.raises(AerostatError) as caught:
        load_mapping_config(path)
    assert (caught.value.source, caught.value.line) == (str(path), 2)
