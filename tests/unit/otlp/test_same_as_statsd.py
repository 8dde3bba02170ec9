"""One schema for StatsD and OpenTelemetry: every Airflow 3 catalog metric,
sent as Airflow's OpenTelemetry mode sends it (the legacy name with the
tags it does not hold, and the tagged name with attributes; counters as
cumulative sums, gauges, timers as exponential histograms in ms), lands on
exactly the series, labels and values that the same event sent over
DogStatsD does."""

from __future__ import annotations

import math

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from prometheus_client.parser import text_string_to_metric_families

from aerostat.airflow import airflow_built_in
from aerostat.airflow.catalog import CatalogEntry, load_catalog
from aerostat.counters import Telemetry
from aerostat.expose.exposition import render_store
from aerostat.mapper import MappingConfig
from aerostat.otlp.decode import decode
from aerostat.otlp.streams import Streams
from aerostat.pipeline import Pipeline
from aerostat.store import Store
from airflow_wire import wire_lines

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SCALE = 8  # Airflow's SDK starts at 20 and lowers it as the range grows


def otlp_request(lines: list[str], start: int) -> bytes:
    """The OTLP request that carries the events of DogStatsD ``lines``."""
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    pair = resource.resource.attributes.add()
    pair.key, pair.value.string_value = "service.instance.id", "scheduler-1"
    scope = resource.scope_metrics.add()
    scope.scope.name = "airflow._shared.observability.metrics.otel_logger"
    for line in lines:
        name, _, rest = line.partition(":")
        value_text, kind, *tags = rest.split("|")
        attributes = dict(tag.split(":", 1) for tag in tags[0][1:].split(",")) if tags else {}
        value = float(value_text)
        metric = scope.metrics.add()
        metric.name = name
        if kind == "c":
            metric.sum.is_monotonic = True
            metric.sum.aggregation_temporality = 2
            point = metric.sum.data_points.add()
            point.as_double = value
        elif kind == "g":
            point = metric.gauge.data_points.add()
            point.as_double = value
        else:
            metric.unit = "ms"
            metric.exponential_histogram.aggregation_temporality = 2
            point = metric.exponential_histogram.data_points.add()
            point.scale, point.count, point.sum = SCALE, 1, value
            point.positive.offset = math.ceil(math.log2(value) * 2**SCALE) - 1
            point.positive.bucket_counts.append(1)
        point.start_time_unix_nano = start
        for key, text in attributes.items():
            attribute = point.attributes.add()
            attribute.key, attribute.value.string_value = key, text
    return request.SerializeToString()


class Both:
    """A StatsD pipeline and an OTLP one, each with the built-in mapping."""

    def __init__(self) -> None:
        self.statsd, self.otlp = self._pipeline(), self._pipeline()
        self.streams = Streams()
        self.now = 1000.0
        self.start = 1

    @staticmethod
    def _pipeline() -> Pipeline:
        built_in = airflow_built_in()
        return Pipeline(built_in.mapper(MappingConfig.empty()), Store(), Telemetry(),
                        frontend=built_in.frontend())

    def send(self, lines: list[str]) -> None:
        self.now += 0.01
        for line in lines:
            self.statsd.feed(line.encode(), self.now, "scheduler-1")
        self.start += 1  # each push from a new short-lived meter: its whole count
        request = ExportMetricsServiceRequest.FromString(otlp_request(lines, self.start))
        decoded = decode(request)
        assert not decoded.rejected
        for point in decoded.points:
            event = self.streams.events(point, self.now)
            assert event is not None
            self.otlp.apply(event, self.now, point.sender)

    def samples(self, pipeline: Pipeline) -> Samples:
        text = render_store(pipeline.store, openmetrics=False, now=self.now)
        return {(sample.name, frozenset(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples}


def entries() -> list[object]:
    return [pytest.param(entry, id=entry.name) for entry in load_catalog()
            if entry.line == "3.x"]


@pytest.mark.parametrize("entry", entries())
def test_an_event_over_otlp_lands_where_it_lands_over_statsd(entry: CatalogEntry) -> None:
    both = Both()
    executor = next(e for e in load_catalog() if e.line == "3.x"
                    and e.name == ("executor.queued_tasks" if entry.name.startswith(
                        "executor.open_slots") else "executor.open_slots"))
    for _ in range(3):  # a scheduler's loop first, as in test_catalog_modes
        both.send(wire_lines(executor, "dogstatsd"))
    both.send(wire_lines(entry, "dogstatsd"))
    statsd, otlp = both.samples(both.statsd), both.samples(both.otlp)
    assert otlp == statsd
    assert any(value for value in otlp.values())
