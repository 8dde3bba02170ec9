"""Line parsing beyond upstream's tables: aerostat's deviations and the
corners the tables do not reach."""

from __future__ import annotations

import pytest

from aerostat.events import Kind, Reason
from aerostat.parse import Dialects, parse_line, parse_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1", 1.0, id="integer"),
        pytest.param("+10", 10.0, id="plus-sign"),
        pytest.param("-.5", -0.5, id="leading-dot"),
        pytest.param("1e3", 1000.0, id="exponent"),
        pytest.param("0x1p-2", 0.25, id="hex-float-like-go"),
        pytest.param("NaN", Reason.NON_FINITE_VALUE, id="nan"),
        pytest.param("-infinity", Reason.NON_FINITE_VALUE, id="infinity"),
        pytest.param("1e400", Reason.NON_FINITE_VALUE, id="overflow"),
        pytest.param(" 1", Reason.MALFORMED_VALUE, id="space-go-refuses"),
        pytest.param("1_000", Reason.MALFORMED_VALUE, id="underscore-go-refuses"),
        pytest.param("0x10", Reason.MALFORMED_VALUE, id="hex-without-exponent"),
        pytest.param("", Reason.MALFORMED_VALUE, id="empty"),
    ],
)
def test_values_read_as_go_parses_floats(text: str, expected: float | Reason) -> None:
    assert parse_value(text) == expected


@pytest.mark.parametrize(
    ("line", "values", "errors"),
    [
        pytest.param("c:10|c|@0.5", [20.0], [], id="counter-rate"),
        pytest.param("c:10|c|@2", [10.0], [Reason.INVALID_SAMPLE_FACTOR], id="rate-above-one"),
        pytest.param("c:10|c|@-1", [10.0], [Reason.INVALID_SAMPLE_FACTOR], id="negative-rate"),
        pytest.param("t:10|ms|@2", [0.01], [Reason.INVALID_SAMPLE_FACTOR],
                     id="observer-rate-above-one-still-observed"),
        pytest.param("t:10|ms|@0.25", [0.01] * 4, [], id="observer-rate-repeats"),
        pytest.param("g:5|g|@0.1", [5.0], [], id="gauge-ignores-rate"),
    ],
)
def test_sample_rates(line: str, values: list[float], errors: list[Reason]) -> None:
    parsed = parse_line(line)
    observed = [event.value for event in parsed.events for _ in range(event.weight)]
    assert observed == pytest.approx(values)
    assert parsed.errors == errors


@pytest.mark.parametrize(
    ("line", "weight", "errors"),
    [
        pytest.param("t:10|ms|@0.25", 4, [], id="quarter"),
        pytest.param("t:10|ms|@0.000001", 1_000_000, [], id="one-in-a-million-is-one-event"),
        pytest.param("t:10|h|@1e-15", 999_999_999_999_999, [], id="smallest-rates-taken"),
        pytest.param("t:10|ms|@1e-17", None, [Reason.INVALID_SAMPLE_FACTOR], id="below-2-53"),
        pytest.param("q:1|c|@1e-320", None, [Reason.INVALID_SAMPLE_FACTOR], id="subnormal"),
        pytest.param("c:1e308|c|@0.5", None, [Reason.NON_FINITE_VALUE], id="overflows"),
    ],
)
def test_a_sample_rate_is_a_weight_never_a_repetition(
    line: str, weight: int | None, errors: list[Reason]
) -> None:
    parsed = parse_line(line)
    assert parsed.errors == errors
    if weight is None:
        assert parsed.events == []
    else:
        [event] = parsed.events
        assert event.weight == weight


def test_divisor_is_reported_for_the_line_cache() -> None:
    assert parse_line("c:10|c|@0.5").divisor == 0.5
    assert parse_line("t:10|ms").divisor == 1000.0
    assert parse_line("g:10|g").divisor == 1.0


def test_counts_for_telemetry() -> None:
    parsed = parse_line("a:1|c|#x:y,bad,:v:2")
    assert parsed.samples == 1 and parsed.tagged_samples == 1 and parsed.tag_errors == 2
    assert parsed.events[0].labels == {"x": "y"}


def test_relative_only_for_gauges() -> None:
    gauge, counter_line = parse_line("g:-1|g"), parse_line("t:-1|ms")
    assert gauge.events[0].relative and gauge.events[0].kind is Kind.GAUGE
    assert not counter_line.events[0].relative


def test_disabled_dialect_keeps_the_tags_in_the_name() -> None:
    parsed = parse_line("foo,a=b:1|c", Dialects(influxdb=False))
    assert parsed.events[0].name == "foo,a=b" and parsed.events[0].labels == {}
