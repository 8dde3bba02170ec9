"""No first event lost, through a real server and HTTP: a new counter,
histogram or summary series reads zero to every scraper before its value
shows, so that increase() sees the first event. Two scrapers are told apart
as two Prometheus servers of an HA pair are: by the scrape timeout each
sends (its interval) and its user agent."""

from __future__ import annotations

import math
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from bridge import Bridge, running_bridge

HOLD = 2.0  # seconds: the longest wait, and how long a start learns the scrapers


def scrape(bridge: Bridge, who: str, openmetrics: bool = False) -> dict[tuple[str, str], float]:
    """One scrape as Prometheus ``who`` sends it: (sample name, rendered
    labels) → value."""
    headers = {"User-Agent": "Prometheus/2.42.0",
               "X-Prometheus-Scrape-Timeout-Seconds": who}
    if openmetrics:
        headers["Accept"] = "application/openmetrics-text;version=1.0.0"
    request = urllib.request.Request(bridge.url + "/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    return {(sample.name, ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))):
            sample.value for family in parse(text) for sample in family.samples}


def past_the_start(bridge: Bridge, *scrapers: str) -> None:
    """Each scraper scrapes twice (so it counts), then the start's learning
    time goes by."""
    for scraper in scrapers:
        scrape(bridge, scraper)
    time.sleep(0.2)
    for scraper in scrapers:
        scrape(bridge, scraper)
    time.sleep(HOLD)


def test_a_new_counter_reads_zero_to_both_scrapers_before_its_value() -> None:
    with running_bridge(new_series_hold=HOLD) as bridge:
        past_the_start(bridge, "1", "4")
        bridge.send_udp(b"task_failures_total:1|c")
        bridge.settle()
        assert scrape(bridge, "1")[("task_failures_total", "")] == 0
        # the fast one again: the slow one has not read it at zero yet
        assert scrape(bridge, "1")[("task_failures_total", "")] == 0
        assert scrape(bridge, "4")[("task_failures_total", "")] == 0
        assert scrape(bridge, "1")[("task_failures_total", "")] == 1
        assert scrape(bridge, "4")[("task_failures_total", "")] == 1


def test_after_a_start_new_series_wait_while_the_scrapers_make_themselves_known() -> None:
    with running_bridge(new_series_hold=HOLD) as bridge:
        bridge.send_udp(b"task_failures_total:1|c")
        bridge.settle()
        started = time.monotonic()
        seen = []
        while time.monotonic() - started < HOLD + 1.5:
            seen.append(scrape(bridge, "1")[("task_failures_total", "")])
            scrape(bridge, "4")
            time.sleep(0.1)
        assert seen[0] == 0 and seen[-1] == 1
        assert seen == sorted(seen)  # zero first, then the value, never back


def test_histograms_and_summaries_are_held_whole_and_gauges_never(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yml"
    mapping.write_text('mappings:\n- {match: parse_seconds, name: parse_seconds, '
                       'observer_type: histogram, histogram_options: {buckets: [0.1, 1]}}\n')
    with running_bridge(new_series_hold=HOLD, mapping_config=str(mapping)) as bridge:
        past_the_start(bridge, "1")
        bridge.send_udp(b"parse_seconds:0.3|h", b"loop_ms:12|ms", b"queued:7|g")
        bridge.settle()
        first = scrape(bridge, "1")
        assert first[("queued", "")] == 7
        assert first[("parse_seconds_count", "")] == 0
        assert first[("parse_seconds_sum", "")] == 0
        assert first[("parse_seconds_bucket", "le=+Inf")] == 0
        assert first[("loop_ms_count", "")] == 0
        assert math.isnan(first[("loop_ms", "quantile=0.5")])
        then = scrape(bridge, "1")
        assert then[("parse_seconds_count", "")] == 1
        assert then[("parse_seconds_bucket", "le=+Inf")] == 1
        assert then[("loop_ms_count", "")] == 1
        assert then[("loop_ms", "quantile=0.5")] == 0.012  # ms → s, as upstream


def test_a_held_series_outlives_its_ttl_until_its_value_was_shown() -> None:
    with running_bridge(new_series_hold=HOLD, ttl=0.5) as bridge:
        past_the_start(bridge, "1")
        # the scraper pauses: the series stays held past its TTL
        bridge.send_udp(b"killed_total:1|c")
        time.sleep(1.5)
        assert scrape(bridge, "1")[("killed_total", "")] == 0
        assert scrape(bridge, "1")[("killed_total", "")] == 1
        time.sleep(1.5)  # now shown: the TTL takes it
        assert ("killed_total", "") not in scrape(bridge, "1")


def test_created_timestamps_in_openmetrics_only_and_only_when_asked() -> None:
    with running_bridge(new_series_hold=0.0, created_timestamps=True) as bridge:
        before = time.time()
        bridge.send_udp(b"finished_total:2|c", b"duration:0.5|h", b"loop:3|ms", b"level:1|g",
                        b"plain_counter:1|c")
        bridge.settle()
        after = time.time()
        samples = scrape(bridge, "1", openmetrics=True)
        for created in ("finished_created", "duration_created", "loop_created"):
            assert before - 0.01 <= samples[(created, "")] <= after + 0.01
        assert samples[("finished_total", "")] == 2
        # a gauge has none; a counter not ending in _total is typed unknown
        assert not any(name in ("level_created", "plain_counter_created")
                       for name, _ in samples)
        assert not any(name.endswith("_created") and name.startswith(("finished", "duration"))
                       for name, _ in scrape(bridge, "1"))
    with running_bridge(new_series_hold=0.0) as bridge:
        bridge.send_udp(b"finished_total:2|c")
        bridge.settle()
        assert ("finished_created", "") not in scrape(bridge, "1", openmetrics=True)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_held_output_passes_promtool(openmetrics: bool, tmp_path: object) -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package (./run installs it)"
    with running_bridge(new_series_hold=HOLD, created_timestamps=True) as bridge:
        bridge.send_udp(b"a_total:1|c", b"b:0.3|h", b"c:12|ms", b"d:-4|h")
        bridge.settle()
        headers = {"Accept": "application/openmetrics-text;version=1.0.0"} if openmetrics else {}
        _, _, body = bridge.get("/metrics", headers)
    checked = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                             check=False)
    # promtool lints names and help too; what matters is that it parses
    assert b"error while linting" not in checked.stderr, checked.stderr
    assert b"parse" not in checked.stderr.lower(), checked.stderr
