"""The status page and its JSON twin on a real server: every figure it shows
is the one /metrics shows, the names that fell through the mapping or were
dropped are listed with the rule that dropped them, a failed reload says
why, and no credential gets through."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from aerostat.airflow import airflow_built_in
from bridge import Bridge, Sender, running_bridge

MAPPING = """\
mappings:
- match: "app.*.hits"
  name: "app_hits_total"
  labels:
    service: "$1"
- match: "noise.*"
  name: "unused"
  action: drop
"""

TRAFFIC = [
    b"app.web.hits:1|c",  # mapped
    b"app.web.hits:2|c",  # mapped, the same line: from the line cache
    b"app.api.hits:1|c",  # mapped
    b"myteam.rows_loaded:5|c",  # unmapped
    b"myteam.rows_loaded:6|c",  # unmapped, from the line cache
    b"myteam.lag:3|g",  # unmapped
    b"noise.a:1|c",  # dropped by rule 2
    b"noise.a:1|c",
    b"noise.b:1|ms",
    b"no value here",  # malformed
    b"x:1|s",  # illegal event (sets)
    b"neg:-1|c",  # refused event
]


def scrape(bridge: Bridge) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(bridge.scrape_text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def status(bridge: Bridge) -> dict[str, Any]:
    code, headers, body = bridge.get("/api/status")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_the_json_twin_says_what_metrics_says(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(MAPPING)
    with running_bridge(mapping_config=str(mapping), enable_lifecycle=True) as bridge:
        time.sleep(1.1)  # one tick before the traffic: a base for the rates
        bridge.send_udp(*TRAFFIC)
        bridge.settle()
        time.sleep(1.1)  # and one after
        found, samples = status(bridge), scrape(bridge)

        traffic = {flow["key"]: flow for flow in found["traffic"]}
        assert traffic["lines"]["total"] == metric(samples, "statsd_exporter_lines_total") == 12
        assert traffic["events"]["total"] == sum(
            metric(samples, "statsd_exporter_events_total", type=kind)
            for kind in ("counter", "gauge", "observer")) == 10
        assert traffic["mapped"]["total"] == metric(
            samples, "statsd_exporter_events_actions_total", action="map") == 3
        assert traffic["dropped"]["total"] == metric(
            samples, "statsd_exporter_events_actions_total", action="drop") == 3
        assert traffic["unmapped"]["total"] == metric(
            samples, "statsd_exporter_events_unmapped_total") == 4
        assert 0 < traffic["lines"]["per_second"]["10s"] <= 12
        losses = {flow["key"]: flow["total"] for flow in found["losses"]}
        assert losses == {
            "sample_error:malformed_line": metric(
                samples, "statsd_exporter_sample_errors_total", reason="malformed_line"),
            "sample_error:illegal_event": metric(
                samples, "statsd_exporter_sample_errors_total", reason="illegal_event"),
            "event_error:illegal_negative_counter": metric(
                samples, "statsd_exporter_events_error_total", reason="illegal_negative_counter"),
        } == {"sample_error:malformed_line": 1, "sample_error:illegal_event": 1,
              "event_error:illegal_negative_counter": 1}

        # each distinct line is resolved once: the cached copies are not
        # here; neg matched no rule before it was refused
        assert [(row["name"], row["count"]) for row in found["unmapped"]["rows"]] == [
            ("myteam.lag", 1), ("myteam.rows_loaded", 1), ("neg", 1)]
        assert found["unmapped"]["events"] == 4
        assert [(row["name"], row["count"], row["detail"]) for row in found["dropped"]["rows"]
                ] == [("noise.a", 1, "noise.* (mapping 2, line 6)"),
                      ("noise.b", 1, "noise.* (mapping 2, line 6)")]

        assert found["limits"]["series"] == metric(samples, "aerostat_series") == 4
        assert found["limits"]["bytes"] == metric(samples, "aerostat_series_bytes") > 0
        assert found["limits"]["max_series"] == 500_000
        assert found["mapping"]["rules"] == metric(samples, "statsd_exporter_loaded_mappings") == 2
        assert found["mapping"]["path"] == str(mapping)
        assert found["mapping"]["last_failure"] is None

        mapping.write_text("mappings:\n- matc: x\n")
        assert bridge.post("/-/reload")[0] == 500
        found, samples = status(bridge), scrape(bridge)
        assert found["mapping"]["reload_failures"] == metric(
            samples, "statsd_exporter_config_reloads_total", outcome="failure") == 1
        assert "matc" in found["mapping"]["last_failure"]
        code, _, page = bridge.get("/")
        assert code == 200 and b"the last reload failed" in page


def test_heartbeat_senders_are_the_processes_metrics_shows() -> None:
    with running_bridge(built_in=airflow_built_in()) as bridge:
        scheduler, triggerer = Sender(bridge), Sender(bridge)
        scheduler.send(b"airflow.scheduler_heartbeat:1|c", b"airflow.etl.scheduler_heartbeat:1|c")
        triggerer.send(b"airflow.triggerer_heartbeat:1|c")
        found, samples = status(bridge), scrape(bridge)

    processes = {(deployment["name"], process["role"], process["sender"], process["alive"])
                 for deployment in found["deployments"] for process in deployment["processes"]}
    assert processes == {
        ("default", "scheduler", scheduler.name, True),
        ("etl", "scheduler", scheduler.name, True),
        ("default", "triggerer", triggerer.name, True),
    }
    alive = {(dict(labels)["deployment"], name.removeprefix("airflow_").removesuffix("_alive"),
              dict(labels)["sender"], value == 1)
             for (name, labels), value in samples.items()
             if name in ("airflow_scheduler_alive", "airflow_triggerer_alive")}
    assert alive == processes


def test_links_lose_their_credentials() -> None:
    with running_bridge() as bridge:
        bridge.server.set_links({"Prometheus": "http://127.0.0.1:9090",
                                 "Grafana": "http://admin:hunter2@127.0.0.1:3000/"})
        found = status(bridge)
        _, _, page = bridge.get("/")
    assert found["links"] == [["Prometheus", "http://127.0.0.1:9090"],
                              ["Grafana", "http://***@127.0.0.1:3000/"]]
    assert b"hunter2" not in page and b'href="http://***@127.0.0.1:3000/"' in page
    # without any traffic the page still renders, with one section for everything
    assert found["deployments"] == [{"name": "", "processes": []}]
