"""What the hostile-input work changed, as a user sees it: PromQL answers in
a real Prometheus, not only the exposition. A sampled timer counts its
weight in rate() and increase(); the first refused line of a kind moves
increase(), since every reason exists at zero before it happens; a value
refused for overflowing leaves the series Prometheus stores unharmed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bridge import Bridge, running_bridge
from stack.prometheus_process import Prometheus, running_prometheus


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bridge, Prometheus]]:
    workdir = tmp_path_factory.mktemp("hostile-promql")
    with running_bridge() as bridge:
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "- job_name: aerostat\n"
            f"  static_configs: [{{targets: ['127.0.0.1:{bridge.server.http_port}']}}]\n")
        with running_prometheus(config, workdir) as prometheus:
            yield bridge, prometheus


def value(prometheus: Prometheus, expr: str) -> float:
    [found] = prometheus.wait_for_series(expr)
    return float(found["value"][1])


def scrapes(seconds: float = 3.0) -> None:
    time.sleep(seconds)  # at 1 s, a few scrapes see the state before the next step


def test_the_first_refusal_moves_increase(scraped: tuple[Bridge, Prometheus]) -> None:
    bridge, prometheus = scraped
    errors = 'statsd_exporter_sample_errors_total{reason="non_finite_value"}'
    assert value(prometheus, errors) == 0  # there before anything was refused
    scrapes()
    bridge.send_udp(b"c:1e308|c|@0.5")  # the first of its kind
    scrapes()
    assert value(prometheus, errors) == 1
    # Prometheus extrapolates increase() to the window's edges: about 1, never 0
    assert value(prometheus, f"increase({errors}[1m])") >= 1


def test_a_sampled_timer_counts_its_weight_in_promql(scraped: tuple[Bridge, Prometheus]) -> None:
    bridge, prometheus = scraped
    bridge.send_udp(b"sampled:100|ms|@0.01")  # 100 observations of 0.1 s
    prometheus.wait_for_series("sampled_count")
    scrapes()
    bridge.send_udp(b"sampled:100|ms|@0.01")
    scrapes()
    assert value(prometheus, "sampled_count") == 200
    assert value(prometheus, "sampled_sum") == pytest.approx(20.0)
    # the second datagram's 100 observations, extrapolated over the window
    assert 90 <= value(prometheus, "increase(sampled_count[1m])") <= 130


def test_an_overflow_leaves_the_stored_series_unharmed(
    scraped: tuple[Bridge, Prometheus],
) -> None:
    bridge, prometheus = scraped
    bridge.send_udp(b"big:1e308|c")
    scrapes()
    bridge.send_udp(b"big:1e308|c", b"big:5|c")  # the first refused, the second kept
    scrapes()
    stored = value(prometheus, "big")
    assert stored == pytest.approx(1e308)
    assert value(prometheus, "rate(big[1m])") < 1e300  # finite, no +Inf

