"""The status page as pure functions: the ring of rates, the processes the
heartbeat series tell, and the page and its JSON twin rendered from a
model, with everything a sender chose escaped."""

from __future__ import annotations

import dataclasses
import json
from html.parser import HTMLParser

import pytest

from aerostat.counters import Telemetry, TopNames
from aerostat.expose.status import (
    Deployment,
    Limits,
    MappingState,
    NameRow,
    Names,
    Process,
    Rates,
    Status,
    gather_flows,
    gather_names,
    gather_processes,
    render_html,
    render_json,
    role_of,
    traffic_counts,
)
from aerostat.store import FamilySpec, Liveness, MetricType, Store

HOSTILE = '<script>alert("x")</script>'


def a_status(**changes: object) -> Status:
    status = Status(
        version="0.1.0",
        generated_at=1_700_000_000.0,
        uptime=125.0,
        telemetry_path="/metrics",
        senders_known=True,
        deployments=(Deployment("etl", (
            Process("scheduler", "10.0.0.5:41000", 1_699_999_999.0, 1.0, True),
            Process("triggerer", "10.0.0.6:41000", 1_699_999_900.0, 100.0, False),
        )),),
        traffic=gather_flows({"lines": 1234, "events": 1200, "mapped": 1000, "unmapped": 150,
                              "dropped": 50}, {"lines": {"10s": 12.5, "60s": 10.0,
                                                         "300s": None}})[0],
        losses=gather_flows({"sample_error:malformed_line": 34}, {})[1],
        unmapped=Names(150, 3, 64, (NameRow(f"my.{HOSTILE}", 3, 0, "", 1_699_999_000.0),)),
        dropped=Names(50, 2, 64, (NameRow("airflow.ti.finish", 2, 1,
                                          "airflow.ti.finish (mapping 5, line 28)",
                                          1_699_999_000.0),)),
        twins=Names(None, 1, 64, (NameRow("airflow.pool.open_slots", 1, 0, "pool.open_slots",
                                          1_699_999_000.0),)),
        limits=Limits(900, 1000, 5000, 0, 7, 0),
        mapping=MappingState("/etc/aerostat/mapping.yml", 1_699_999_000.0, 240, 6, 2, 1,
                             "mapping.yml:3:5: unknown key 'matc'", 1_699_999_500.0),
        links=(("Prometheus", "http://127.0.0.1:9090"),),
    )
    return dataclasses.replace(status, **changes)  # type: ignore[arg-type]


class _Text(HTMLParser):
    """The page's text and its tags, as a browser parses them."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        pytest.param({}, ["10.0.0.5:41000", "alive", "silent", "1 of 2 alive", "1,234", "12.5",
                          "refused sample: malformed_line", "airflow.ti.finish (mapping 5, "
                          "line 28)", "(≤1 too many)", "90.0 % of 1,000", "no limit",
                          "airflow.pool.open_slots", "17 min ago",
                          "the last reload failed", "unknown key 'matc'"], id="full"),
        pytest.param({"deployments": (Deployment("", ()),), "senders_known": False},
                     ["All traffic", "--airflow"], id="no-senders"),
        pytest.param({"deployments": (Deployment("", ()),)},
                     ["No process has sent a heartbeat yet."], id="no-heartbeat-yet"),
        pytest.param({"losses": ()}, ["Nothing refused or lost so far."], id="no-losses"),
        pytest.param({"mapping": MappingState(None, 0.0, 0, 0, 0, 0, None, None)},
                     ["none (every name unmapped", "no reload has failed"], id="no-mapping"),
    ],
)
def test_page_shows(changes: dict[str, object], shown: list[str]) -> None:
    text = " ".join(parsed(render_html(a_status(**changes))).text)
    for piece in shown:
        assert piece in text, piece


def test_page_escapes_what_senders_chose() -> None:
    page = render_html(a_status(deployments=(Deployment(HOSTILE, (
        Process(HOSTILE, HOSTILE, 0.0, 0.0, True),)),)))
    found = parsed(page)
    assert "script" not in found.tags
    assert HOSTILE in " ".join(found.text)  # shown, as text


def test_page_has_no_script_and_links_back() -> None:
    page = render_html(a_status())
    assert "<script" not in page
    assert 'href="/metrics"' in page and 'href="/api/status"' in page
    assert 'href="http://127.0.0.1:9090"' in page


def test_json_twin_holds_the_model() -> None:
    status = a_status()
    loaded = json.loads(render_json(status))
    assert loaded["limits"] == {"series": 900, "max_series": 1000, "bytes": 5000,
                                "max_bytes": 0, "refused_series": 7, "refused_bytes": 0}
    assert loaded["deployments"][0]["processes"][1]["alive"] is False
    assert loaded["traffic"][0] == {"key": "lines", "label": "lines received",
                                    "metric": "statsd_exporter_lines_total", "total": 1234,
                                    "per_second": {"10s": 12.5, "60s": 10.0, "300s": None}}
    assert loaded["dropped"]["rows"][0]["overcount"] == 1


@pytest.mark.parametrize(
    ("ticks", "lines_now", "expected"),
    [
        pytest.param([], 40.0, {"10s": None, "60s": None}, id="no-snapshot-yet"),
        # up for a second: the shortest window says what there is, the
        # longer one waits until the ring covers it
        pytest.param([(99.0, 0.0)], 40.0, {"10s": 40.0, "60s": None}, id="one-second"),
        # at t=100, 10s reaches back to t=90 (value 100); 60s to t=40
        pytest.param([(40.0, 0.0), (90.0, 100.0), (99.0, 120.0)], 150.0,
                     {"10s": 5.0, "60s": 2.5}, id="windows"),
        pytest.param([(30.0, 50.0), (99.0, 50.0)], 40.0, {"10s": 0.0, "60s": 0.0},
                     id="never-negative"),
    ],
)
def test_rates(ticks: list[tuple[float, float]], lines_now: float,
               expected: dict[str, float | None]) -> None:
    rates = Rates(60)
    for when, lines in ticks:
        rates.tick(when, {"lines": lines})
    assert rates.per_second(100.0, {"lines": lines_now}, windows=(10, 60))["lines"] == expected


def test_the_ring_is_bounded() -> None:
    rates = Rates(5)
    for second in range(100):
        rates.tick(float(second), {"lines": float(second)})
    assert len(rates._ring) == 6


@pytest.mark.parametrize(
    ("alive_name", "role"),
    [
        pytest.param("airflow_scheduler_alive", "scheduler", id="scheduler"),
        pytest.param("airflow_dag_processor_alive", "dag_processor", id="two-words"),
        pytest.param("worker_alive", "worker", id="no-namespace"),
    ],
)
def test_role_of(alive_name: str, role: str) -> None:
    assert role_of(alive_name) == role


def test_processes_from_heartbeat_series() -> None:
    store = Store()
    spec = FamilySpec("airflow_scheduler_heartbeat", MetricType.COUNTER, "",
                      liveness=Liveness("airflow_scheduler_alive",
                                        "airflow_scheduler_last_heartbeat_timestamp_seconds",
                                        30.0))
    for deployment, sender, updated in [("etl", "10.0.0.5:1", 95.0), ("etl", "10.0.0.6:1", 10.0),
                                        ("ml", "10.0.1.5:1", 99.0)]:
        series = store.series_for(spec, (("deployment", deployment), ("sender", sender)))
        assert not isinstance(series, type(None))
        series.updated = updated  # type: ignore[union-attr]
    store.series_for(FamilySpec("other", MetricType.COUNTER, ""), ())
    deployments = gather_processes(store, now=100.0, wall_offset=1000.0)
    assert [(d.name, [(p.role, p.sender, p.last_seen, p.alive) for p in d.processes])
            for d in deployments] == [
        ("etl", [("scheduler", "10.0.0.5:1", 1095.0, True),
                 ("scheduler", "10.0.0.6:1", 1010.0, False)]),
        ("ml", [("scheduler", "10.0.1.5:1", 1099.0, True)]),
    ]


def test_counts_and_names_from_the_telemetry() -> None:
    telemetry = Telemetry()
    telemetry.lines = 10
    telemetry.sample_errors["malformed_line"] = 2
    telemetry.series_refused["series"] = 1
    telemetry.actions["drop"] = 4
    counts = traffic_counts(telemetry)
    traffic, losses = gather_flows(counts, {})
    assert [(flow.key, flow.total) for flow in traffic][:1] == [("lines", 10)]
    assert [(flow.key, flow.total) for flow in losses] == [
        ("sample_error:malformed_line", 2), ("series_refused:series", 1)]
    sketch = TopNames(4)
    sketch.add("x.y", "rule", now=5.0)
    names = gather_names(sketch.top(10), counts["dropped"], sketch.total, sketch.slots, 100.0)
    assert names == Names(4, 1, 4, (NameRow("x.y", 1, 0, "rule", 105.0),))
