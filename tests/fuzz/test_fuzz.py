"""Property-based tests: random bytes, random valid-looking lines and random
mapping files. No exception escapes, every refused input is counted under a
reason, and a line written back from a parsed sample parses the same."""

from __future__ import annotations

import math
import os
import random
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerostat.counters import Telemetry
from aerostat.errors import AerostatError
from aerostat.events import Kind
from aerostat.mapper import Mapper, MappingConfig, parse_mapping_config
from aerostat.parse import parse_line
from aerostat.pipeline import Pipeline
from aerostat.store import Store

# AEROSTAT_FUZZ_EXAMPLES=4000 for a longer hunt than the suite's
FUZZ = settings(max_examples=int(os.environ.get("AEROSTAT_FUZZ_EXAMPLES", "400")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow])

STATSD_ALPHABET = string.ascii_letters + string.digits + ".:|#,=[]@_-+ \t\r\n\\\"'" + "é😱"


def accounted(telemetry: Telemetry) -> int:
    """Everything a line can end as: an event, or a refusal by reason."""
    return (
        sum(telemetry.events)
        + sum(telemetry.sample_errors.values())
        + sum(telemetry.events_error.values())
        + sum(telemetry.conflicts.values())
        + sum(telemetry.series_refused.values())
    )


def feed_and_check(pipeline: Pipeline, datagram: bytes) -> None:
    telemetry = pipeline.telemetry
    lines = [line.rstrip(b"\r") for line in datagram.split(b"\n")]
    for line in lines:
        before_lines, before_accounted = telemetry.lines, accounted(telemetry)
        pipeline.feed(line, 1.0)
        if line.strip(b"\r"):
            # a non-empty line is counted and ends somewhere, never silently
            assert telemetry.lines == before_lines + 1
            assert accounted(telemetry) > before_accounted, line


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(datagram: bytes) -> None:
    pipeline = Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry())
    feed_and_check(pipeline, datagram)


@FUZZ
@given(st.text(alphabet=STATSD_ALPHABET, max_size=80))
def test_random_text(line: str) -> None:
    pipeline = Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry())
    feed_and_check(pipeline, line.encode("utf-8"))


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z0-9_]{1,8}){0,3}", fullmatch=True)
TAG_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
TAG_VALUES = st.text(alphabet=string.ascii_letters + string.digits + "._-/ ", min_size=1,
                     max_size=10).filter(lambda text: text.strip() == text)
VALUES = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
TYPES = st.sampled_from(["c", "g", "ms", "h", "d"])


def write_line(name: str, value: float, stat_type: str, tags: dict[str, str],
               dialect: str) -> str:
    """A StatsD line in one of the four tag dialects."""
    value_text = repr(value)
    if not tags:
        return f"{name}:{value_text}|{stat_type}"
    pairs_eq = ",".join(f"{k}={v}" for k, v in tags.items())
    if dialect == "dogstatsd":
        pairs = ",".join(f"{k}:{v}" for k, v in tags.items())
        return f"{name}:{value_text}|{stat_type}|#{pairs}"
    if dialect == "influxdb":
        return f"{name},{pairs_eq}:{value_text}|{stat_type}"
    if dialect == "librato":
        return f"{name}#{pairs_eq}:{value_text}|{stat_type}"
    return f"{name}[{pairs_eq}]:{value_text}|{stat_type}"


@FUZZ
@given(NAMES, VALUES, TYPES, st.dictionaries(TAG_KEYS, TAG_VALUES, max_size=3),
       st.sampled_from(["dogstatsd", "influxdb", "librato", "signalfx"]))
def test_written_lines_parse_back(name: str, value: float, stat_type: str,
                                  tags: dict[str, str], dialect: str) -> None:
    parsed = parse_line(write_line(name, value, stat_type, tags, dialect))
    assert parsed.errors == [] and parsed.tag_errors == 0
    [event] = parsed.events
    expected_kind = {"c": Kind.COUNTER, "g": Kind.GAUGE}.get(stat_type, Kind.OBSERVER)
    assert event.kind is expected_kind
    assert event.name == name
    assert event.labels == tags
    expected = value / 1000 if stat_type == "ms" else value
    assert math.isclose(event.value, expected, rel_tol=1e-15, abs_tol=0.0)


@FUZZ
@given(NAMES, st.lists(VALUES, min_size=2, max_size=5), TYPES)
def test_known_lines_take_the_cached_path_to_the_same_result(
    name: str, values: list[float], stat_type: str
) -> None:
    """Feeding lines one by one through fresh pipelines (no cache) and all
    together through one (cached after the first) gives the same store."""
    lines = [write_line(name, v, stat_type, {}, "dogstatsd").encode() for v in values]
    cached = Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry())
    cached.feed_batch(lines, 1.0)
    uncached = Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry(), line_cache_size=0)
    uncached.feed_batch(lines, 1.0)
    assert cached.cache_length == 1 and uncached.cache_length == 0
    from aerostat.expose.exposition import render_store

    assert render_store(cached.store, openmetrics=False, now=1.0) == render_store(
        uncached.store, openmetrics=False, now=1.0
    )


KEYS = st.sampled_from([
    "mappings", "defaults", "match", "name", "labels", "match_type", "action", "ttl",
    "observer_type", "histogram_options", "summary_options", "buckets", "quantiles",
    "quantile", "error", "max_age", "scale", "honor_labels", "help", "match_metric_type",
    "glob_disable_ordering", "bogus",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
    st.text(alphabet="ab.*$1{}()[]-_:;glob regex histogram summary drop map 0s1m", max_size=12),
)
YAML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)


@FUZZ
@given(st.dictionaries(KEYS, YAML_VALUES, max_size=3))
def test_random_mapping_files_load_or_say_why(document: dict[str, object]) -> None:
    text = yaml.safe_dump(document)
    try:
        config = parse_mapping_config(text, "fuzz.yml")
    except AerostatError as error:
        assert str(error).startswith("fuzz.yml")
        return
    mapper = Mapper(config)
    for name in ("a.b", "ab", "a.b.c", ""):
        for kind in Kind:
            mapper.map(name, kind)


@FUZZ
@given(st.text(max_size=120))
def test_random_mapping_text_loads_or_says_why(text: str) -> None:
    try:
        parse_mapping_config(text, "fuzz.yml")
    except AerostatError as error:
        assert str(error).startswith("fuzz.yml")


# -- hostile values: float limits, sample rates, label sizes -------------------------

EXTREME_VALUES = st.sampled_from([
    "1e308", "-1e308", "1.7976931348623157e308", "+1e308", "-1.7976931348623157e308",
    "4.9e-324", "1e-320", "0", "-0", "+5", "-5", "1e300", "0x1p1023", "1e-5",
])
RATES = st.sampled_from(["", "|@0.5", "|@1e-9", "|@1e-17", "|@1e-320", "|@0", "|@1",
                         "|@0.000001", "|@2", "|@-1", "|@nan"])
LABEL_VALUES = st.sampled_from(["v", "w" * 1024, "x" * 4096, "y" * 4097, "z" * 20_000])


@st.composite
def hostile_lines(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(["a", "b", "a_sum", "a_count", "a_bucket"]))
    stat_type = draw(st.sampled_from(["c", "g", "ms", "h", "d"]))
    samples = draw(st.lists(st.tuples(EXTREME_VALUES, RATES), min_size=1, max_size=3))
    tag = draw(st.one_of(st.none(), LABEL_VALUES))
    head = name if tag is None else f"{name},k={tag}"
    body = ":".join(f"{value}|{stat_type}{rate}" for value, rate in samples)
    return f"{head}:{body}".encode()


def assert_both_formats_parse(pipeline: Pipeline) -> None:
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as parse_openmetrics,
    )
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    from aerostat.expose.exposition import render_store

    text = render_store(pipeline.store, openmetrics=False, now=2.0)
    for family in parse_text(text):
        for sample in family.samples:
            assert "quantile" in sample.labels or math.isfinite(sample.value), sample
    list(parse_openmetrics(render_store(pipeline.store, openmetrics=True, now=2.0) + "# EOF\n"))


@FUZZ
@given(st.lists(hostile_lines(), min_size=1, max_size=12))
def test_hostile_values_are_refused_or_kept_finite_and_both_formats_parse(
    lines: list[bytes],
) -> None:
    """Every line is accounted for, nothing escapes, no value that is not
    finite lands, and both exposition formats parse after the batch."""
    import logging

    pipeline = Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry())
    logging.getLogger("aerostat").disabled = True  # internal errors are asserted below
    try:
        for line in lines:
            feed_and_check(pipeline, line)
        pipeline.feed_batch(lines, 1.5)  # again, through the cache
    finally:
        logging.getLogger("aerostat").disabled = False
    assert pipeline.telemetry.internal_errors == 0
    assert_both_formats_parse(pipeline)


@FUZZ
@given(st.lists(hostile_lines(), min_size=1, max_size=8))
def test_a_line_sample_by_sample_counts_as_the_line_parsed_whole(lines: list[bytes]) -> None:
    """The shortcut that feeds a multi-sample line one sample at a time gives
    the same store and the same counters as parsing the line whole."""
    from aerostat.expose.exposition import render_store

    split = Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry())
    whole = Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry(), line_cache_size=0)
    whole._samples_alone = lambda line, text: None  # type: ignore[method-assign]
    for pipeline in (split, whole):
        random.seed(0)  # a full summary window samples at random: the same draws
        for line in lines:
            pipeline.feed(line, 1.0)
    assert render_store(split.store, openmetrics=False, now=1.0) == render_store(
        whole.store, openmetrics=False, now=1.0)
    a, b = split.telemetry, whole.telemetry
    assert (a.lines, a.samples, a.events, a.tag_errors) == (b.lines, b.samples, b.events,
                                                            b.tag_errors)
    assert dict(a.sample_errors) == dict(b.sample_errors)
    assert dict(a.conflicts) == dict(b.conflicts)
