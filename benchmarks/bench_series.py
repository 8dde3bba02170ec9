#!/usr/bin/env python3
"""Memory per series and /metrics latency at 10k and 100k series, measured
from outside the process, so that any exporter can be measured the same way.

    ./run bench series [--series 10000,100000] [--exporter CMD]

For each count it starts the exporter fresh, sends that many distinct gauge
series (Airflow-like names with a pool tag, paced so that nothing is
dropped), waits until every datagram is counted, then reports the resident
memory added per series (/proc/PID/status VmRSS, before and after) and the
median and max of 7 full scrapes, plain and gzip-compressed (as Prometheus
asks for them), with their sizes. statsd_exporter runs beside aerostat when
it is on the PATH.

At a million series, raise aerostat's limits:

    ./run bench series --series 1000000 --exporter \
        ".venv/bin/python -m aerostat.cli serve --statsd.max-series=0 --statsd.max-series-bytes=0"
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import socket
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_udp import AEROSTAT_CMD, HOST, PACKETS, Exporter, exporter_name


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def send_series(exporter: Exporter, count: int, rate: float = 50_000) -> None:
    """``count`` distinct gauges, about ``rate`` a second (50k: well below
    any loss on a quiet machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for number in range(count):
            line = b"airflow.pool.open_slots,pool=pool_%d,deployment=bench:%d|g" % (number, number)
            sock.sendto(line, (HOST, exporter.udp_port))
            if number % 500 == 499:
                time.sleep(500 / rate)


def fetch_gzip(exporter: Exporter) -> tuple[int, float]:
    """/metrics as Prometheus fetches it (Accept-Encoding: gzip): the bytes
    on the wire and the seconds to the last of them."""
    request = urllib.request.Request(exporter.url, headers={"Accept-Encoding": "gzip"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
        encoding = response.headers.get("Content-Encoding")
    seconds = time.perf_counter() - started
    assert encoding == "gzip", f"{exporter.name} answered {encoding!r}"
    return len(body), seconds


def wait_for_packets(exporter: Exporter, count: float, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while (received := exporter.scrape().get(PACKETS, 0.0)) < count:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return received


def measure(name: str, cmd: str, series: int, rate: float) -> dict[str, Any]:
    exporter = Exporter(name, cmd, None)
    exporter.start()
    try:
        assert exporter.proc is not None
        for _ in range(3):  # warm up: the first scrapes allocate buffers
            exporter.fetch()
        before = rss_bytes(exporter.proc.pid)
        send_series(exporter, series, rate)
        received = wait_for_packets(exporter, series)
        after = rss_bytes(exporter.proc.pid)
        timings, size = [], 0
        for _ in range(7):
            body, seconds = exporter.fetch()
            timings.append(seconds * 1000)
            size = len(body.encode())
        gzip_timings, gzip_size = [], 0
        for _ in range(7):
            gzip_size, seconds = fetch_gzip(exporter)
            gzip_timings.append(seconds * 1000)
        peak = rss_bytes(exporter.proc.pid)
        return {
            "exporter": name,
            "series": series,
            "received": int(received),
            # per series held: a datagram lost on a busy machine makes none
            "bytes_per_series": (after - before) / max(1.0, received),
            "rss_mb": after / 2**20,
            "scrape_ms_median": statistics.median(timings),
            "scrape_ms_max": max(timings),
            "scrape_kb": size / 1024,
            "gzip_ms_median": statistics.median(gzip_timings),
            "gzip_ms_max": max(gzip_timings),
            "gzip_kb": gzip_size / 1024,
            "rss_after_scrapes_mb": peak / 2**20,
        }
    finally:
        exporter.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="10000,100000")
    parser.add_argument("--exporter", action="append", metavar="CMD")
    parser.add_argument("--rate", type=float, default=50_000,
                        help="new series sent per second")
    args = parser.parse_args()
    commands = list(args.exporter or [AEROSTAT_CMD])
    if not args.exporter and (reference := shutil.which("statsd_exporter")):
        commands.append(shlex.quote(reference))
    rows = [measure(exporter_name(cmd), cmd, int(count), args.rate)
            for cmd in commands for count in args.series.split(",")]
    header = (f"{'exporter':<16} {'series':>8} {'received':>9} {'B/series':>9} {'RSS MB':>7} "
              f"{'scrape p50 ms':>13} {'scrape max ms':>13} {'scrape KB':>9} "
              f"{'gzip p50 ms':>11} {'gzip max ms':>11} {'gzip KB':>8} {'RSS after MB':>12}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['exporter']:<16} {row['series']:>8,} {row['received']:>9,} "
              f"{row['bytes_per_series']:>9,.0f} {row['rss_mb']:>7.1f} "
              f"{row['scrape_ms_median']:>13.1f} {row['scrape_ms_max']:>13.1f} "
              f"{row['scrape_kb']:>9,.0f} {row['gzip_ms_median']:>11.1f} "
              f"{row['gzip_ms_max']:>11.1f} {row['gzip_kb']:>8,.0f} "
              f"{row['rss_after_scrapes_mb']:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
