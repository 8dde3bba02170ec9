"""Every catalog metric, in every emission mode of its release line, through
the built-in mapping: one Prometheus metric per Airflow metric, identifiers
in labels only, each event counted once, no unlabelled twin beside the
labelled series."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aerostat.airflow import airflow_built_in
from aerostat.airflow.catalog import CatalogEntry, load_catalog
from aerostat.counters import Telemetry
from aerostat.expose.exposition import render_store
from aerostat.mapper import MappingConfig
from aerostat.pipeline import Pipeline
from aerostat.store import Store
from airflow_wire import IDENTIFIERS, MODES_2, MODES_3, VALUES, fill, wire_lines

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# the canonical label of each identifier, as docs/airflow-metrics.md states
CANONICAL = {
    "pool_name": "pool", "executor_class_name": "executor", "name": "executor",
    "operator_name": "operator", "task_type": "operator", "file_name": "file",
    "dag_file": "file", "bundle_name": "bundle",
}
# a run's final state was part of the name in every release
FIXED = {"dagrun.duration.success": {"state": "success"},
         "dagrun.duration.failed": {"state": "failed"}}


class Airflow:
    """One pipeline with the built-in mapping, warmed up the way a scheduler
    starts: executor gauges every loop, before any task event."""

    def __init__(self) -> None:
        built_in = airflow_built_in()
        self.store = Store()
        self.pipeline = Pipeline(
            built_in.mapper(MappingConfig.empty()), self.store, Telemetry(),
            frontend=built_in.frontend(),
        )
        self.now = 1000.0

    def warm_up(self, mode: str, line: str, unless: str = "") -> Airflow:
        name = ("executor.queued_tasks" if unless.startswith("executor.open_slots")
                else "executor.open_slots")
        executor = next(e for e in load_catalog() if e.line == line and e.name == name)
        for _ in range(3):
            self.send(wire_lines(executor, mode))
        return self

    def send(self, lines: list[str]) -> None:
        self.now += 0.01
        for line in lines:
            self.pipeline.feed(line.encode(), self.now)

    def samples(self) -> Samples:
        text = render_store(self.store, openmetrics=False, now=self.now)
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@dataclass(frozen=True)
class Case:
    entry: CatalogEntry
    mode: str


def cases() -> list[object]:
    return [
        pytest.param(Case(entry, mode), id=f"{entry.line}:{entry.name}:{mode}")
        for entry in load_catalog()
        for mode in (MODES_3 if entry.line == "3.x" else MODES_2)
    ]


def changed(before: Samples, after: Samples) -> Samples:
    # a series that appeared at zero was created, not touched: a deployment's
    # rare counters exist at zero once its release line is known
    return {key: value for key, value in after.items() if before.get(key, 0.0) != value}


def expected_labels(entry: CatalogEntry, mode: str) -> dict[str, str]:
    """The identifiers the mode carries, under their canonical labels."""
    if mode == "plain" or entry.variables:
        variables = entry.variables or entry.legacy_variables
        if mode != "plain" and entry.variables:
            variables = entry.variables
        labels = {}
        for variable in variables:
            value = VALUES[variable]
            if entry.line == "3.x":
                value = value.replace(".", "__")
            labels[CANONICAL.get(variable, variable)] = value
        if mode == "plain":
            return labels if entry.legacy_name or entry.variables else {}
        tags = {CANONICAL.get(t, t): VALUES[t] for t in entry.tags}
        return {**tags, **labels}
    labels = {}
    for tag in entry.tags:
        label = CANONICAL.get(tag, tag)
        if tag == "file_path":  # the file, unless the metric also has file_name
            label = "file_path" if "file_name" in entry.tags else "file"
        if tag == "name" and "executor" not in entry.name:
            label = tag
        labels[label] = VALUES[tag]
    return labels


@pytest.mark.parametrize("case", cases())
def test_one_event_lands_once_in_one_labelled_metric(case: Case) -> None:
    entry, mode = case.entry, case.mode
    airflow = Airflow().warm_up(mode, entry.line, unless=entry.name)
    before = airflow.samples()
    airflow.send(wire_lines(entry, mode))
    after = airflow.samples()
    new = changed(before, after)
    families = {re.sub(r"_(bucket|count|sum|total|by_sender)$", "", name) for name, _ in new}
    families = {f.removesuffix("_by_sender") for f in families}
    # a heartbeat also says, in gauges derived from it, that its process lives
    derived = {f for f in families if f.endswith(("_alive", "_last_heartbeat_timestamp_seconds"))}
    assert not derived or entry.name.endswith("heartbeat"), derived
    families -= derived
    assert len(families) == 1, f"one event touched {sorted(families)}"
    (family,) = families
    assert family.startswith("airflow_")
    for identifier in IDENTIFIERS:
        assert identifier.lower() not in family.lower(), family
    # the value: once, in base units
    main = {key: value for key, value in new.items()
            if "_by_sender" not in key[0] and key[0] not in derived}
    if entry.type == "counter" and not entry.name.startswith("dag_processing.processes"):
        (value,) = [v - before.get(k, 0.0) for k, v in main.items()]
        assert value == 1.0
    elif entry.type == "gauge" or entry.name == "dag_processing.processes":
        assert set(main.values()) == {7.0 if entry.type == "gauge" else 1.0}
    else:
        counts = [v - before.get(k, 0.0) for k, v in main.items() if k[0].endswith("_count")]
        sums = [v - before.get(k, 0.0) for k, v in main.items() if k[0].endswith("_sum")]
        assert counts == [1.0], "the event must be observed exactly once"
        assert sums == [pytest.approx(1.5)], "durations are in seconds"
    # the labels: every identifier the mode carries, under its canonical name
    label_sets = {frozenset(kv for kv in k[1] if kv[0] not in ("le", "sender")) for k in main}
    assert len(label_sets) == 1, label_sets  # "sender": per-process series (heartbeats)
    labels = dict(next(iter(label_sets)))
    # traffic without a deployment prefix belongs to the default deployment
    assert labels == (expected_labels(entry, mode) | _job_label(entry)
                      | FIXED.get(entry.name, {}) | {"deployment": "default"})


def _job_label(entry: CatalogEntry) -> dict[str, str]:
    return {"job_name": "job"} if "{job_name}" in entry.name else {}


@pytest.mark.parametrize("mode", MODES_3)
def test_no_unlabelled_series_beside_labelled_ones(mode: str) -> None:
    airflow = Airflow().warm_up(mode, "3.x")
    for entry in load_catalog():
        if entry.line == "3.x":
            for _ in range(2):
                airflow.send(wire_lines(entry, mode))
    by_family: dict[str, set[frozenset[tuple[str, str]]]] = {}
    for name, labels in airflow.samples():
        if name.endswith("_by_sender"):
            continue
        by_family.setdefault(name, set()).add(frozenset(k for k in labels if k[0] != "le"))
    mixed = {name for name, sets in by_family.items() if frozenset() in sets and len(sets) > 1}
    assert not mixed


def test_3_3_sends_first_task_scheduling_delay_twice_and_it_counts_once() -> None:
    airflow = Airflow().warm_up("plain", "3.x")
    line = f"airflow.dagrun.{VALUES['dag_id']}.first_task_scheduling_delay:867.5|ms"
    for _ in range(3):  # three observations, each sent twice plus the untagged twin
        airflow.send([line, line, "airflow.dagrun.first_task_scheduling_delay:867.5|ms"])
    count = airflow.samples()[(
        "airflow_dagrun_first_task_scheduling_delay_seconds_count",
        frozenset({("dag_id", "etl_daily"), ("deployment", "default")}),
    )]
    assert count == 3.0


def test_dotted_ids_of_2_x_keep_the_task_group_in_the_label() -> None:
    airflow = Airflow().warm_up("plain", "2.x")
    airflow.send([f"airflow.ti.finish.etl_daily.{VALUES['task_id']}.failed:1|c"])
    samples = airflow.samples()
    key = ("airflow_ti_finish_total",
           frozenset({("dag_id", "etl_daily"), ("task_id", "load_group.write"),
                      ("state", "failed"), ("deployment", "default")}))
    assert samples[key] == 1.0


def test_the_names_users_query() -> None:
    """The documented names of the metrics dashboards use most."""
    airflow = Airflow().warm_up("plain", "3.x")
    entries = {(e.line, e.name): e for e in load_catalog()}
    for name in ("ti.finish", "task.duration", "dagrun.duration.success", "pool.open_slots",
                 "dagbag_size", "scheduler_heartbeat", "dag_processing.total_parse_time",
                 "{job_name}_start", "operator_failures", "dag_processing.processes"):
        airflow.send(wire_lines(entries[("3.x", name)], "plain"))
    names = {name for name, _ in airflow.samples()}
    assert {
        "airflow_ti_finish_total", "airflow_task_duration_seconds_bucket",
        "airflow_dagrun_duration_seconds_count", "airflow_pool_open_slots",
        "airflow_dagbag_size", "airflow_scheduler_heartbeat_total",
        "airflow_dag_processing_total_parse_time_seconds", "airflow_job_start_total",
        "airflow_operator_failures_total", "airflow_dag_processing_processes",
    } <= names


def test_fill_writes_3_3_identifiers_with_double_underscores() -> None:
    assert fill("ti.start.{dag_id}.{task_id}", True) == "ti.start.etl_daily.load_group__write"
    assert fill("ti.start.{dag_id}.{task_id}", False) == "ti.start.etl_daily.load_group.write"


def _twinned_events() -> list[object]:
    return [
        pytest.param(entry, mode, id=f"{entry.name}:{mode}")
        for entry in load_catalog()
        if entry.line == "3.x" and entry.legacy_name and not entry.variables
        and entry.type != "gauge"
        for mode in ("influx", "dogstatsd")
    ]


@pytest.mark.parametrize(("entry", "mode"), _twinned_events())
def test_the_very_first_event_counts_once_too(entry: CatalogEntry, mode: str) -> None:
    """Right after aerostat starts, before the deployment has shown a single
    tag: the legacy line comes first and is kept; its tagged twin, which
    brings the proof, must not count the event again."""
    # team_name is sent only in multi-team mode: without it, 3.3's legacy
    # lines of most metrics carry no tag at all
    entry = dataclasses.replace(entry, tags=tuple(t for t in entry.tags if t != "team_name"))
    airflow = Airflow()
    airflow.send(wire_lines(entry, mode))
    main = {k: v for k, v in airflow.samples().items()
            if not k[0].endswith("_by_sender") and not k[0].endswith("_bucket")}
    if entry.type == "counter":
        # beside the deployment's rare counters, created at zero
        assert [value for value in main.values() if value] == [1.0], main
    else:
        counts = [v for k, v in main.items() if k[0].endswith("_count")]
        assert counts == [1.0], main
    # and the next event, with the deployment proven, counts once as well
    airflow.send(wire_lines(entry, mode))
    total = sum(v for k, v in airflow.samples().items()
                if k[0].endswith(("_total", "_count")) and "_by_sender" not in k[0])
    assert total == 2.0


def test_mapped_events_are_counted_on_the_first_and_the_cached_path() -> None:
    """statsd_exporter_events_actions_total{action="map"}: once per event,
    whether the line was resolved afresh or came from the line cache."""
    airflow = Airflow()
    for _ in range(3):
        airflow.send(["airflow.ti.finish.etl.load.success:1|c"])
    assert airflow.pipeline.telemetry.actions["map"] == 3
