"""Every line case of statsd_exporter's pkg/line tests, against upstream's
observed output (the Go test only checks a prefix of the events; the
observed events are what upstream really produces)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aerostat.events import Event
from aerostat.parse import parse_line
from conformance.cases import case_input, dialects, params

# case id → why aerostat's output differs from upstream's (docs/deviations.md)
DEVIATIONS: dict[str, str] = {}


def events_of(data: bytes, case: dict[str, Any]) -> list[Event]:
    """What the pipeline does with one line: invalid UTF-8 is refused whole."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    # a sampled observer is one event of weight n where upstream repeats it n times
    return [event for event in parse_line(text, dialects(case)).events
            for _ in range(event.weight)]


def as_observed(event: Event) -> dict[str, Any]:
    observed: dict[str, Any] = {
        "labels": event.labels,
        "name": event.name,
        "type": event.kind.label,
        "value": event.value,
    }
    if event.kind.label == "gauge":
        observed["relative"] = event.relative
    return observed


def assert_same_events(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(actual) == len(expected), (actual, expected)
    for mine, theirs in zip(actual, expected, strict=True):
        assert math.isclose(mine["value"], float(theirs["value"]), rel_tol=1e-12)
        assert {k: v for k, v in mine.items() if k != "value"} == {
            k: v for k, v in theirs.items() if k != "value"
        }


@pytest.mark.parametrize("case", params("line_cases"))
def test_line_case(case: dict[str, Any]) -> None:
    assert case["id"] not in DEVIATIONS, DEVIATIONS.get(case["id"])
    actual = [as_observed(event) for event in events_of(case_input(case), case)]
    assert_same_events(actual, case["observed_events"])
    # where the Go test states its expectation, it is a prefix of the output
    assert_same_events(actual[: len(case["expected_events"])], case["expected_events"])
