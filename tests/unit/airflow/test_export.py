"""The built-in mapping in others' forms: a statsd_exporter mapping file and
the documented metric list."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerostat.airflow.export import metrics_markdown, statsd_exporter_mapping
from aerostat.events import Kind
from aerostat.mapper import Mapper, parse_mapping_config
from aerostat.offline import read_datagrams
from aerostat.parse import Dialects, parse_line
from aerostat.pipeline import resolve

ROOT = Path(__file__).resolve().parents[3]
CAPTURE = ROOT / "src/aerostat/airflow/captures/airflow-3.3.2-plain.jsonl"


def test_the_metric_list_in_the_docs_is_current() -> None:
    documented = (ROOT / "docs/airflow-metrics.md").read_text()
    assert documented == metrics_markdown(), (
        "docs/airflow-metrics.md is stale: ./run aerostat airflow metrics > docs/airflow-metrics.md"
    )


@pytest.mark.parametrize("mode", ["plain", "tagged"])
def test_the_export_is_a_valid_statsd_exporter_file(mode: str) -> None:
    """aerostat's mapping parser is held to statsd_exporter's own test tables
    (tests/conformance): what it accepts, upstream loads."""
    config = parse_mapping_config(statsd_exporter_mapping(mode), "export.yml")
    assert len(config.rules) > 150
    assert not any(rule.senders or rule.built_in for rule in config.rules)


def test_the_plain_export_maps_real_traffic_as_aerostat_does() -> None:
    """Each dotted line of the capture lands on the same name and labels
    through the exported file as through --airflow; the untagged twins drop."""
    exported = Mapper(parse_mapping_config(statsd_exporter_mapping("plain"), "export.yml"))
    from aerostat.airflow import airflow_built_in
    from aerostat.mapper import MappingConfig

    built_in = airflow_built_in()
    ours = built_in.mapper(MappingConfig.empty())
    frontend = built_in.frontend()
    compared = 0
    for _, datagram in read_datagrams(CAPTURE.read_text()):
        (event,) = parse_line(datagram.decode(), Dialects()).events
        theirs = resolve(event, exported)
        mine = resolve(frontend.prepare(event), ours)
        assert mine.rule is not None, event.name
        if not frontend.admit(mine).keep:
            # the one drop the file cannot express: 3.3's repeated line
            assert theirs.dropped or "first_task_scheduling_delay" in event.name, event.name
            continue
        assert theirs.spec is not None and mine.spec is not None, event.name
        expected = mine.spec.name
        if event.name.endswith("dag_processing.processes"):
            expected += "_total"  # statsd_exporter refuses gauge updates from a counter
        # aerostat's own: the sender, and the default deployment (the file has none)
        labels = tuple(pair for pair in mine.labels
                       if pair[0] != "sender" and pair != ("deployment", "default"))
        assert (theirs.spec.name, theirs.labels) == (expected, labels), event.name
        if event.kind is Kind.OBSERVER:
            assert theirs.value == pytest.approx(mine.value)
        compared += 1
    assert compared > 5000
