#!/usr/bin/env python3
"""Per-stage benchmark: what one line costs in each stage, in process, and
what a scrape costs at 10k and 100k series.

    ./run bench stages [--repeats 7]

Each figure is the median of --repeats timed passes over the real Airflow
capture (11,596 lines). Rendering is compared side by side with the same
store rendered through prometheus_client's own text exposition, the
library-built alternative."""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from aerostat.counters import Telemetry  # noqa: E402
from aerostat.events import Kind  # noqa: E402
from aerostat.expose.exposition import Shown, format_value, render_store  # noqa: E402
from aerostat.expose.protobuf import render_protobuf  # noqa: E402
from aerostat.mapper import (  # noqa: E402
    Mapper,
    MappingConfig,
    load_mapping_config,
    parse_mapping_config,
)
from aerostat.parse import parse_line  # noqa: E402
from aerostat.pipeline import Pipeline  # noqa: E402
from aerostat.store import (  # noqa: E402
    FamilySpec,
    HistogramSeries,
    MetricType,
    ScalarSeries,
    Store,
)

CAPTURE = ROOT / "src/aerostat/airflow/captures/airflow-3.3.2-plain.jsonl"
EXAMPLE_MAPPING = ROOT / "examples/mapping.yml"


def capture_lines() -> list[bytes]:
    return [json.loads(line)["data"].encode() for line in CAPTURE.read_text().splitlines()]


def median_ns(work: Callable[[], int], repeats: int) -> float:
    """Median over ``repeats`` passes of nanoseconds per item (work returns
    how many items it handled)."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        timings.append((time.perf_counter() - start) / items * 1e9)
    return statistics.median(timings)


def median_ms(work: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        timings.append((time.perf_counter() - start) * 1e3)
    return statistics.median(timings)


def store_with(series: int, metric_type: MetricType = MetricType.GAUGE) -> Store:
    """``series`` gauges (or counters) spread over 100 families, labelled
    like Airflow's."""
    store = Store()
    suffix = "_total" if metric_type is MetricType.COUNTER else ""
    for index in range(series):
        spec = FamilySpec(f"airflow_metric_{index % 100}{suffix}", metric_type, "help")
        labels = (("dag_id", f"dag_{index // 1000}"), ("task_id", f"task_{index}"))
        cell = store.series_for(spec, labels)
        assert isinstance(cell, ScalarSeries)
        cell.value = index * 1.5
    return store


class StoreCollector:
    """The same store as prometheus_client Metric objects, for comparison."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        for name, family in sorted(self.store.families.items()):
            metric = Metric(name, family.spec.help, family.spec.type.value)
            for cell in family.series.values():
                assert isinstance(cell, ScalarSeries)
                metric.add_sample(name, dict(cell.labels), cell.value)
            yield metric


def bytes_per_series(lines: list[bytes], mapping: MappingConfig) -> float:
    """Memory the store and the line cache hold per series, fed through the
    real hot loop (tracemalloc: Python allocations only)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pipeline = Pipeline(Mapper(mapping, cache_size=0), Store(), Telemetry(),
                        line_cache_size=len(lines))
    pipeline.feed_batch(lines, 1.0)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert pipeline.store.series_count == len(lines)
    return used / len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    repeats = args.repeats
    lines = capture_lines()
    texts = [line.decode() for line in lines]
    names = [(text.partition(":")[0], Kind.GAUGE) for text in texts]
    results: dict[str, float] = {}

    results["parse_line ns/line"] = median_ns(
        lambda: sum(1 for text in texts if parse_line(text)), repeats)
    for label, config in (("no mapping", MappingConfig.empty()),
                          ("example mapping", load_mapping_config(EXAMPLE_MAPPING))):
        uncached = Mapper(config, cache_size=0)
        cached = Mapper(config, cache_size=10_000)
        results[f"map ns/name, {label}, uncached"] = median_ns(
            lambda m=uncached: sum(1 for name, kind in names if m.map(name, kind) or True),
            repeats)
        results[f"map ns/name, {label}, cached"] = median_ns(
            lambda m=cached: sum(1 for name, kind in names if m.map(name, kind) or True),
            repeats)
    pipeline = Pipeline(Mapper(load_mapping_config(EXAMPLE_MAPPING)), Store(), Telemetry())
    pipeline.feed_batch(lines, 1.0)  # every distinct line now known

    def feed() -> int:
        pipeline.feed_batch(lines, 2.0)
        return len(lines)

    results["pipeline ns/line, known lines (cache hit)"] = median_ns(feed, repeats)
    cold = lines[:2000]

    def feed_cold() -> int:
        Pipeline(Mapper(MappingConfig.empty()), Store(), Telemetry()).feed_batch(cold, 1.0)
        return len(cold)

    results["pipeline ns/line, fresh pipeline (mostly misses)"] = median_ns(feed_cold, repeats)
    # timers under a histogram rule, known lines: classic buckets only
    # (a factor of 1 turns native histograms off) and with a native
    # histogram beside them (factor 1.1, schema 3), 1,000 series
    rng = random.Random(1)
    timers = [b"job.t%d.duration:%.3f|ms" % (i % 1000, rng.lognormvariate(5, 1))
              for i in range(20_000)]
    for label, factor in (("classic only", 1.0), ("classic + native", 1.1)):
        config = parse_mapping_config(
            "defaults:\n  observer_type: histogram\n  histogram_options:\n"
            f"    native_histogram_bucket_factor: {factor}\n")
        timer_pipeline = Pipeline(Mapper(config), Store(), Telemetry())
        timer_pipeline.feed_batch(timers, 1.0)

        def feed_timers(p: Pipeline = timer_pipeline) -> int:
            p.feed_batch(timers, 2.0)
            return len(timers)

        results[f"pipeline ns/line, known timer lines, histogram {label}"] = median_ns(
            feed_timers, repeats)
    results["format_value ns"] = median_ns(
        lambda: sum(1 for value in range(10_000) if format_value(value * 0.37)), repeats)

    for series in (10_000, 100_000):
        store = store_with(series)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(store))  # type: ignore[arg-type]
        mine = median_ms(lambda s=store: render_store(s, openmetrics=False, now=0.0), repeats)
        theirs = median_ms(lambda r=registry: generate_latest(r), repeats)
        results[f"render ms, {series:,} series, aerostat"] = mine
        results[f"render ms, {series:,} series, via prometheus_client"] = theirs
        results[f"render ratio, {series:,} series (prometheus_client / aerostat)"] = theirs / mine
        results[f"render ms, {series:,} series, protobuf"] = median_ms(
            lambda s=store: render_protobuf(s, now=0.0), repeats)
    # histograms of 11 classic buckets with 40 observations each, classic
    # only and with a native histogram (schema 3) beside: text, protobuf
    for native_schema in (None, 3):
        histograms = Store()
        rng = random.Random(2)
        for index in range(10_000):
            spec = FamilySpec(f"airflow_duration_{index % 100}", MetricType.HISTOGRAM, "help",
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                       10.0),
                              native_schema=native_schema, native_max_buckets=256)
            cell = histograms.series_for(spec, (("task_id", f"task_{index}"),))
            assert isinstance(cell, HistogramSeries)
            for _ in range(40):
                cell.observe(rng.lognormvariate(-1, 1), 0.0)
        label = "classic" if native_schema is None else "classic + native"
        results[f"render ms, 10,000 histograms ({label}), text"] = median_ms(
            lambda h=histograms: render_store(h, openmetrics=False, now=0.0), repeats)
        results[f"render ms, 10,000 histograms ({label}), protobuf"] = median_ms(
            lambda h=histograms: render_protobuf(h, now=0.0), repeats)
    # the first-value hold, side by side on 100,000 counters: off, every
    # series shown, every series held, and OpenMetrics with and without _created
    store = store_with(100_000, MetricType.COUNTER)
    results["render ms, 100,000 counters, hold off"] = median_ms(
        lambda: render_store(store, openmetrics=False, now=0.0), repeats)
    results["render ms, 100,000 counters, hold on, all shown"] = median_ms(
        lambda: render_store(store, openmetrics=False, now=0.0, shown=Shown(1.0)), repeats)
    results["render ms, 100,000 counters, hold on, all held"] = median_ms(
        lambda: render_store(store, openmetrics=False, now=0.0, shown=Shown(-1.0)), repeats)
    results["render ms, 100,000 counters, OpenMetrics"] = median_ms(
        lambda: render_store(store, openmetrics=True, now=0.0), repeats)
    results["render ms, 100,000 counters, OpenMetrics with _created"] = median_ms(
        lambda: render_store(store, openmetrics=True, now=0.0, shown=Shown(math.inf, 1.7e9)),
        repeats)

    histogram_mapping = parse_mapping_config("defaults:\n  observer_type: histogram\n")
    count = 100_000
    for kind, line in (("gauge", b"airflow.pool.open_slots,pool=p%d:1|g"),
                       ("counter", b"airflow.ti.finish,dag_id=d%d,task_id=t,state=ok:1|c"),
                       ("histogram", b"airflow.dag.d%d.t.duration:1|ms"),
                       ("summary", b"airflow.dag.d%d.t.duration:1|ms")):
        mapping = histogram_mapping if kind == "histogram" else MappingConfig.empty()
        lines_for = [line % number for number in range(count)]
        results[f"memory bytes/series, {kind}, with its cached line"] = bytes_per_series(
            lines_for, mapping)

    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
