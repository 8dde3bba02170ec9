"""Native histograms as a real Prometheus reads them: Debian's Prometheus
2.42 with --enable-feature=native-histograms asks aerostat for the protobuf
format, stores the native histogram of a timer whose mapping sets
native_histogram_bucket_factor: 1.1 (schema 3), and histogram_quantile()
over it agrees with the exact quantiles of the observations within the
schema's bound; a Prometheus without the flag scrapes the text format and
still reads the classic buckets."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import Bridge, running_bridge
from stack.prometheus_process import Prometheus, free_port, running_prometheus

MAPPING = """\
mappings:
- match: job.duration
  name: job_duration_seconds
  observer_type: histogram
  histogram_options:
    buckets: [0.05, 0.1, 0.5, 1, 5]
    native_histogram_bucket_factor: 1.1
"""
SCHEMA = 3  # the schema client_golang picks for a factor of 1.1
# both the exact quantile and Prometheus's estimate lie in one bucket,
# (base**(k-1), base**k]: they differ by less than a factor of base
BOUND = 2.0 ** (2.0 ** -SCHEMA) - 1.0
COUNT = 3000


def observations() -> list[float]:
    """Milliseconds, log-normal around 200 ms: a timer's spread."""
    rng = random.Random(16)
    return [round(rng.lognormvariate(5.3, 0.8), 3) for _ in range(COUNT)]


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(-(-q * len(ordered) // 1)) - 1)]  # nearest rank


def send(bridge: Bridge, values: list[float]) -> None:
    for start in range(0, len(values), 20):  # 20 lines a datagram
        lines = "\n".join(f"job.duration:{v}|ms" for v in values[start:start + 20])
        bridge.send_udp(lines.encode())
    bridge.settle()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Prometheus, Prometheus, list[float]]]:
    workdir = tmp_path_factory.mktemp("native")
    mapping = workdir / "mapping.yml"
    mapping.write_text(MAPPING)
    web_port = free_port()
    values = observations()
    with contextlib.ExitStack() as stack:
        servers = []
        for name, flags in (("native", ("--enable-feature=native-histograms",)),
                            ("classic", ())):
            folder = workdir / name
            folder.mkdir()
            config = folder / "prometheus.yml"
            config.write_text(
                "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                "scrape_configs:\n"
                "- job_name: aerostat\n"
                f"  static_configs: [{{targets: ['127.0.0.1:{web_port}']}}]\n")
            servers.append(stack.enter_context(running_prometheus(config, folder, flags)))
        native, classic = servers
        bridge = stack.enter_context(running_bridge(
            mapping_config=str(mapping), listen_tcp="",
            web_listen_address=f"127.0.0.1:{web_port}"))
        # the series is born with a first observation and scraped with it,
        # so that rate() over the window sees every later one
        send(bridge, values[:1])
        native.wait_for_series("job_duration_seconds")
        classic.wait_for_series("job_duration_seconds_count")
        time.sleep(2.5)
        send(bridge, values[1:])
        time.sleep(3.5)  # scraped at least twice by both
        yield native, classic, values[1:]


@pytest.mark.slow
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_quantiles_from_the_native_histogram_are_within_the_schema_bound(
        scraped: tuple[Prometheus, Prometheus, list[float]], q: float) -> None:
    native, _, values = scraped
    [found] = native.series(f"histogram_quantile({q}, rate(job_duration_seconds[1m]))")
    estimate = float(found["value"][1])
    exact = exact_quantile(values, q) / 1000  # ms → s, as aerostat scales timers
    assert abs(estimate - exact) / exact <= BOUND, (q, estimate, exact)


@pytest.mark.slow
def test_prometheus_stored_a_native_histogram(
        scraped: tuple[Prometheus, Prometheus, list[float]]) -> None:
    native, _, _ = scraped
    everything = observations()
    [found] = native.series("job_duration_seconds")
    point: dict[str, Any] = found["histogram"][1]  # a native sample, not a float
    assert int(point["count"]) == len(everything)
    assert float(point["sum"]) == pytest.approx(sum(everything) / 1000)
    # Prometheus 2.42 keeps the native histogram alone when a scrape has
    # one (scrape_classic_histograms, which keeps both, came with 2.45)
    assert not native.series("job_duration_seconds_bucket")
    # the buckets are schema 3's: each is a factor of 2**(1/8) wide
    for _, lower, upper, _count in point["buckets"]:
        if float(lower) > 0:
            assert float(upper) / float(lower) == pytest.approx(2 ** (1 / 8))


@pytest.mark.slow
def test_the_classic_buckets_stay_queryable(
        scraped: tuple[Prometheus, Prometheus, list[float]]) -> None:
    _, classic, _ = scraped
    found = {row["metric"]["le"]: float(row["value"][1])
             for row in classic.series("job_duration_seconds_bucket")}
    everything = observations()
    assert found["+Inf"] == len(everything)
    assert found["0.5"] == sum(1 for v in everything if v / 1000 <= 0.5)
    [estimate] = classic.series("histogram_quantile(0.5, rate(job_duration_seconds_bucket[1m]))")
    assert float(estimate["value"][1]) > 0

