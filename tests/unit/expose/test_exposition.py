"""Rendering the store: number formatting as Go writes it, escaping, and
output that prometheus_client's parsers read back to the same values."""

from __future__ import annotations

import math

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aerostat.expose.exposition import format_value, render_store, tidy_values
from aerostat.store import FamilySpec, MetricType, Refusal, Store


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # expected texts are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints
        pytest.param(1.0, "1", id="integer"),
        pytest.param(-3.0, "-3", id="negative-integer"),
        pytest.param(0.0005, "0.0005", id="small"),
        pytest.param(1e-05, "1e-05", id="tiny"),
        pytest.param(123456.5, "123456.5", id="fraction"),
        pytest.param(1e6, "1e+06", id="million"),
        pytest.param(1234567.0, "1.234567e+06", id="large"),
        pytest.param(12345678.9, "1.23456789e+07", id="large-fraction"),
        pytest.param(1e21, "1e+21", id="huge"),
        pytest.param(math.inf, "+Inf", id="inf"),
        pytest.param(-math.inf, "-Inf", id="minus-inf"),
        pytest.param(math.nan, "NaN", id="nan"),
    ],
)
def test_format_value_like_go(value: float, text: str) -> None:
    assert format_value(value) == text


def filled_store() -> Store:
    store = Store()
    counter = store.series_for(FamilySpec("jobs_total", MetricType.COUNTER, "Jobs."),
                               (("queue", 'a"b\\c\nd'),))
    gauge = store.series_for(FamilySpec("temp", MetricType.GAUGE, "Help with \\ and\nnewline"), ())
    histogram = store.series_for(
        FamilySpec("lat_seconds", MetricType.HISTOGRAM, "Latency.", buckets=(0.1, 1.0)),
        (("op", "read"),),
    )
    summary = store.series_for(
        FamilySpec("size", MetricType.SUMMARY, "Sizes.", quantiles=(0.5, 0.99)), ()
    )
    assert not any(isinstance(cell, Refusal) for cell in (counter, gauge, histogram, summary))
    counter.value = 3.0  # type: ignore[union-attr]
    gauge.value = -1.5  # type: ignore[union-attr]
    for value in (0.05, 0.1, 0.5, 5.0):
        histogram.observe(value, 10.0)  # type: ignore[union-attr]
    for value in range(1, 101):
        summary.observe(float(value), 10.0)  # type: ignore[union-attr]
    return store


def test_text_format_reads_back() -> None:
    families = {f.name: f for f in parse_text(render_store(filled_store(), openmetrics=False,
                                                         now=10.0))}
    jobs = families["jobs"].samples[0]  # the parser strips _total from counter families
    assert jobs.labels == {"queue": 'a"b\\c\nd'} and jobs.value == 3
    assert families["temp"].documentation == "Help with \\ and\nnewline"
    buckets = {s.labels["le"]: s.value for s in families["lat_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 2, "1": 3, "+Inf": 4}  # cumulative, le inclusive
    quantiles = {s.labels["quantile"]: s.value for s in families["size"].samples
                 if "quantile" in s.labels}
    assert quantiles == {"0.5": 50, "0.99": 99}  # nearest rank over 1..100


def test_openmetrics_reads_back() -> None:
    text = render_store(filled_store(), openmetrics=True, now=10.0) + "# EOF\n"
    families = {f.name: f for f in parse_openmetrics(text)}
    assert families["jobs"].type == "counter"
    assert families["lat_seconds"].type == "histogram"
    assert [s.labels["le"] for s in families["lat_seconds"].samples
            if s.name.endswith("_bucket")] == ["0.1", "1.0", "+Inf"]


def test_empty_summary_window_reports_nan() -> None:
    store = Store()
    summary = store.series_for(
        FamilySpec("size", MetricType.SUMMARY, "Sizes.", quantiles=(0.5,), max_age=10,
                   age_buckets=2), ()
    )
    assert not isinstance(summary, Refusal)
    summary.observe(1.0, 100.0)  # type: ignore[union-attr]
    text = render_store(store, openmetrics=False, now=200.0)  # long after max_age
    assert 'size{quantile="0.5"} NaN' in text
    assert "size_count 1" in text  # count and sum are cumulative, as in Prometheus


def test_own_values_written_as_the_stores() -> None:
    own = ("# HELP x_total x\n# TYPE x_total counter\nx_total 2185.0\n"
           'b{v="1.0"} 1.0\ns 1.7964974939e+09\nh 0.25\nn NaN\n# EOF\n')
    assert tidy_values(own) == ("# HELP x_total x\n# TYPE x_total counter\nx_total 2185\n"
                                'b{v="1.0"} 1\ns 1.7964974939e+09\nh 0.25\nn NaN\n# EOF\n')
