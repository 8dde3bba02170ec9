"""statsd_exporter's TestConflictingMetrics: events of clashing types under
one name. The first type registered wins; the later events are dropped and
counted; the scrape stays valid."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aerostat.counters import Telemetry
from aerostat.events import Event, Kind
from aerostat.expose.exposition import render_store
from aerostat.mapper import Mapper, parse_mapping_config
from aerostat.pipeline import Pipeline
from aerostat.store import Store
from conformance.cases import params


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize("case", params("conflict_cases"))
def test_conflict_case(case: dict[str, Any]) -> None:
    config = parse_mapping_config(case["config_yaml"], "conflict.yml")
    telemetry = Telemetry()
    store = Store()
    pipeline = Pipeline(Mapper(config), store, telemetry)
    for raw in case["input_events"]:
        event = Event(
            Kind.from_label(raw["type"]),
            raw["name"],
            float(raw["value"]),
            dict(raw["labels"]),
            bool(raw.get("relative", False)),
        )
        pipeline.apply(event, now=1.0)
    exposition = render_store(store, openmetrics=False, now=1.0)
    mine, theirs = samples(exposition), samples(case["observed_exposition"])
    assert mine.keys() == theirs.keys()
    for key, value in theirs.items():
        assert math.isclose(mine[key], value), key
    for raw, expected in zip(case["input_events"], case["expected_values"], strict=False):
        # prometheus_client's parser reads a counter sample foo as foo_total
        # (and the Go test reads an observer's value as its sum)
        labels = frozenset(raw["labels"].items())
        name = raw["name"].replace(".", "_")
        candidates = [name + "_sum"] if raw["type"] == "observer" else [name, name + "_total"]
        value = next((mine[(n, labels)] for n in candidates if (n, labels) in mine), None)
        assert value == pytest.approx(expected)
    refused = len(case["input_events"]) - _landed(case)
    assert sum(telemetry.conflicts.values()) == refused


def _landed(case: dict[str, Any]) -> int:
    """Events whose name shows in upstream's exposition with their own type."""
    types = {
        family.name: family.type
        for family in text_string_to_metric_families(case["observed_exposition"])
    }
    wanted = {"counter": "counter", "gauge": "gauge", "observer": "summary"}
    return sum(
        types.get(raw["name"].replace(".", "_")) == wanted[raw["type"]]
        for raw in case["input_events"]
    )
