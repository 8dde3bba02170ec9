"""No first event lost, as an HA pair of real Prometheus servers sees it:
one scraping every second, one every four, both asked what a dashboard
asks (increase()) after series were born at aerostat's start, while it ran,
and after it restarted. Without the first-value hold a series born at 1
stores no 0 before it, and increase() misses each series' first event."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import Bridge, running_bridge
from stack.prometheus_process import Prometheus, free_port, running_prometheus

HOLD = 12.0  # seconds; the 4 s scraper reads twice within it after a start
INTERVALS = ("1s", "4s")


@contextlib.contextmanager
def aerostat(udp_port: int, web_port: int) -> Iterator[Bridge]:
    with running_bridge(new_series_hold=HOLD, listen_udp=f"127.0.0.1:{udp_port}",
                        listen_tcp="", web_listen_address=f"127.0.0.1:{web_port}") as bridge:
        yield bridge


def send(bridge: Bridge, series: str, count: int = 1) -> None:
    for _ in range(count):
        bridge.send_udp(f"outcomes_total:1|c|#series:{series}".encode())
    bridge.settle()


def raw_samples(prometheus: Prometheus, series: str) -> list[float]:
    [found] = prometheus.series(f'outcomes_total{{series="{series}"}}[10m]')
    return [float(value) for _, value in found["values"]]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Prometheus]]:
    udp_port = free_port((socket.SOCK_DGRAM,))
    web_port = free_port()
    with contextlib.ExitStack() as stack:
        servers = []
        for interval in INTERVALS:
            workdir = tmp_path_factory.mktemp(f"ha-{interval}")
            config = Path(workdir / "prometheus.yml")
            config.write_text(
                f"global: {{scrape_interval: {interval}, scrape_timeout: {interval}}}\n"
                "scrape_configs:\n"
                "- job_name: aerostat\n"
                f"  static_configs: [{{targets: ['127.0.0.1:{web_port}']}}]\n")
            servers.append(stack.enter_context(running_prometheus(config, workdir)))
        # the pair was there first, as when aerostat restarts under it
        with aerostat(udp_port, web_port) as bridge:
            send(bridge, "born-at-start")  # before any scraper is known
            time.sleep(HOLD + 1)
            send(bridge, "born-while-running")
            send(bridge, "three-events", 3)
            time.sleep(6)
            send(bridge, "across-restart")
            # both have read it at zero, then at one (events not yet scraped
            # when an exporter stops are lost, held or not)
            time.sleep(10)
        with aerostat(udp_port, web_port) as bridge:  # a restart: every series is new
            send(bridge, "across-restart")
            send(bridge, "born-after-restart", 2)
            time.sleep(HOLD + 6)  # past the hold, then read by both
        yield servers


SENT = {"born-at-start": 1, "born-while-running": 1, "three-events": 3,
        "across-restart": 2, "born-after-restart": 2}


@pytest.mark.parametrize("index", range(len(INTERVALS)), ids=INTERVALS)
def test_every_series_is_stored_at_zero_before_its_first_event(
    pair: list[Prometheus], index: int
) -> None:
    prometheus = pair[index]
    for series in SENT:
        samples = raw_samples(prometheus, series)
        assert samples[0] == 0, f"{series}: first stored sample {samples[:3]}"
    # after the restart the series starts at zero again before its event
    across = raw_samples(prometheus, "across-restart")
    assert across[-1] == 1 and 0 in across[across.index(1):]


@pytest.mark.parametrize("index", range(len(INTERVALS)), ids=INTERVALS)
def test_increase_counts_every_event_sent(pair: list[Prometheus], index: int) -> None:
    prometheus = pair[index]
    answer = prometheus.series("sum by (series) (increase(outcomes_total[10m]))")
    counted = {found["metric"]["series"]: float(found["value"][1]) for found in answer}
    for series, sent in SENT.items():
        # increase() extrapolates towards the window's end (by up to half an
        # interval of a short series' few samples at 4 s): more, never less
        assert sent <= counted[series] <= sent * 1.5, (series, counted)

