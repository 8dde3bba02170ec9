"""Outcomes from Airflow's REST API merged with StatsD's into one counter
(Pipeline.top_up behind ApiSource): the counter reads the larger of the
two counts, an event both sources saw counts once, and the series is the
very one StatsD's lines make, in plain and tagged modes."""

from __future__ import annotations

from collections import Counter

import pytest

from aerostat.airflow import airflow_built_in
from aerostat.airflow.api import Target
from aerostat.airflow.api.source import ApiSource, PollResult
from aerostat.airflow.api.state import Snapshot
from aerostat.counters import Telemetry
from aerostat.events import Event, Kind
from aerostat.pipeline import Pipeline
from aerostat.store import ScalarSeries, Store

LEGACY = b"airflow.ti.finish.d.sensor.deferred:1|c"
TAGGED = b"airflow.ti.finish:1|c|#dag_id:d,task_id:sensor,state:success"


def airflow_pipeline() -> Pipeline:
    built_in = airflow_built_in()
    return Pipeline(built_in.mapper(built_in.config.empty()), Store(), Telemetry(),
                    frontend=built_in.frontend())


def finishes(pipeline: Pipeline) -> dict[frozenset[tuple[str, str]], float]:
    family = pipeline.store.families["airflow_ti_finish_total"]
    return {frozenset(labels): series.value for labels, series in family.series.items()
            if isinstance(series, ScalarSeries)}


def key(state: str, task: str = "sensor") -> frozenset[tuple[str, str]]:
    return frozenset({"deployment": "default", "dag_id": "d", "task_id": task,
                      "state": state}.items())


def source_over(pipeline: Pipeline) -> ApiSource:
    return ApiSource(Target("default", "http://127.0.0.1:1"), pipeline.top_up)


def deliver(source: ApiSource, outcomes: dict[tuple[str, str, str], int], now: float) -> None:
    source._take(PollResult(Snapshot(taken=now), Counter(outcomes)), now)


def test_an_outcome_statsd_never_carried_is_added_to_statsds_series() -> None:
    pipeline = airflow_pipeline()
    pipeline.feed(LEGACY, 1.0)  # the worker's run ended deferred; the triggerer ended it
    source = source_over(pipeline)
    deliver(source, {("d", "sensor", "success"): 1}, 2.0)
    assert finishes(pipeline) == {key("deferred"): 1.0, key("success"): 1.0}
    assert source.added_outcomes == 1


def test_an_outcome_both_sources_saw_counts_once_in_either_order() -> None:
    pipeline = airflow_pipeline()
    line = b"airflow.ti.finish.d.sensor.success:1|c"
    pipeline.feed(line, 1.0)
    source = source_over(pipeline)
    deliver(source, {("d", "sensor", "success"): 1}, 2.0)
    assert finishes(pipeline) == {key("success"): 1.0}
    # the API's count runs ahead (a lost datagram), then StatsD goes on
    deliver(source, {("d", "sensor", "success"): 2}, 3.0)
    assert finishes(pipeline) == {key("success"): 3.0}
    pipeline.feed(line, 4.0)
    deliver(source, {("d", "sensor", "success"): 1}, 5.0)
    assert finishes(pipeline) == {key("success"): 4.0}
    assert source.added_outcomes == 2


def test_a_top_up_and_the_tagged_lines_share_one_series() -> None:
    pipeline = airflow_pipeline()
    pipeline.feed(TAGGED, 1.0)
    source = source_over(pipeline)
    deliver(source, {("d", "sensor", "success"): 3}, 2.0)
    assert finishes(pipeline) == {key("success"): 3.0}


def test_a_series_let_go_and_made_again_is_not_topped_up_from_before() -> None:
    pipeline = airflow_pipeline()
    source = source_over(pipeline)
    deliver(source, {("d", "sensor", "success"): 5}, 1.0)
    family = pipeline.store.families["airflow_ti_finish_total"]
    family.series.clear()  # as a TTL expiry would
    pipeline.forget()
    pipeline.feed(b"airflow.ti.finish.d.sensor.success:1|c", 2.0)
    deliver(source, {("d", "sensor", "success"): 1}, 3.0)
    assert finishes(pipeline) == {key("success"): 1.0}
    deliver(source, {("d", "sensor", "success"): 2}, 4.0)
    assert finishes(pipeline) == {key("success"): 3.0}


@pytest.mark.parametrize(("name", "kind"), [
    ("airflow.dagrun.duration.success.d", Kind.OBSERVER),  # not a counter
    ("airflow.executor.open_slots", Kind.GAUGE),
])
def test_a_total_that_maps_to_no_counter_changes_nothing(name: str, kind: Kind) -> None:
    pipeline = airflow_pipeline()
    assert pipeline.top_up(Event(kind, name, 5.0, {"deployment": "default"}), 1.0) is None
