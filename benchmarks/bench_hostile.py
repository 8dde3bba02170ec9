#!/usr/bin/env python3
"""Hostile input beside legitimate traffic: how much of the legitimate
traffic is still counted, how fast a scrape answers right after, and how
much the exporter grows.

Each scenario starts a fresh exporter (aerostat by default) on loopback,
sends 50,000 legitimate lines a second with statsd-blast (1,000 counters,
one line per datagram, as Airflow sends) and, beside it from Python, one
kind of attack from the hostile-input issue:

- ``tiny-rate``: ``p:1|ms|@0.000001`` twice a second (upstream repeats
  that observation a million times);
- ``overflow-rate``: ``q:1|c|@1e-320`` and ``c:1e308|c|@0.5`` ten times a second;
- ``huge-refused``: 20 datagrams a second of 60 KB, one line of 15,000
  refused samples, the same bytes each time;
- ``huge-valid``: the same with 15,000 valid samples of one counter;
- ``huge-distinct``: 20 a second of 60 KB refused lines, each different;
- ``long-labels``: 5,000 series with 50 KB label values, 1,000 a second;

and ``new-names``: 300,000 lines with a new name each at 50,000 a second,
alone. Counted legitimate lines are the sum of the legitimate counters (for
new-names, the exporter's lines counter). Reports medians over --repeats.

    ./run bench hostile [--seconds 6] [--repeats 3]
        [--scenarios tiny-rate,...] [--exporter CMD]
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prometheus_client.parser import text_string_to_metric_families

from bench_udp import (
    AEROSTAT_CMD,
    HOST,
    RMEM_MAX,
    Exporter,
    build_blast,
    read_int,
)

LEGIT_RATE = 50_000
LEGIT_NAMES = 1_000
NEW_NAMES = 300_000
LIMITS = {"long-labels": 5_000}  # datagrams sent in all, however long the run
SCENARIOS = ("tiny-rate", "overflow-rate", "huge-refused", "huge-valid", "huge-distinct",
             "long-labels", "new-names")


def lines_file(directory: Path, name: str, lines: Iterator[str]) -> Path:
    path = directory / name
    if not path.exists():
        path.write_text("".join(line + "\n" for line in lines))
    return path


def attacks(name: str) -> tuple[float, Callable[[int], list[bytes]]]:
    """Datagrams a second, and the datagrams of the n-th send."""
    huge_refused = b"x:" + b"1|q:" * 15_000 + b"1|q"
    huge_valid = b"bench.valid:" + b"1|c:" * 15_000 + b"1|c"
    label = "v" * 50_000
    table: dict[str, tuple[float, Callable[[int], list[bytes]]]] = {
        "tiny-rate": (2, lambda n: [b"p:1|ms|@0.000001"]),
        "overflow-rate": (10, lambda n: [b"q:1|c|@1e-320", b"c:1e308|c|@0.5"]),
        "huge-refused": (20, lambda n: [huge_refused]),
        "huge-valid": (20, lambda n: [huge_valid]),
        "huge-distinct": (20, lambda n: [b"x%d:" % n + b"1|q:" * 15_000 + b"1|q"]),
        # 5,000 in all: the run stops sending after that many (LIMITS)
        "long-labels": (1000, lambda n: [f"big,id={n},pad={label}:1|c".encode()]),
    }
    return table[name]


class Attacker(threading.Thread):
    def __init__(self, port: int, name: str, seconds: float) -> None:
        super().__init__(daemon=True)
        self.port, self.seconds = port, seconds
        self.rate, self.make = attacks(name)
        self.limit = LIMITS.get(name, 0)
        self.sent = 0

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < self.seconds and not (
                    self.limit and n >= self.limit):
                for datagram in self.make(n):
                    sock.sendto(datagram, (HOST, self.port))
                n += 1
                self.sent = n
                time.sleep(max(0.0, start + n / self.rate - time.monotonic()))


def blast(blast_bin: Path, port: int, path: Path, rate: int, seconds: float,
          count: int = 0) -> int:
    cmd = [str(blast_bin), HOST, str(port), str(path), "--rate", str(rate),
           "--seconds", str(seconds), "--per-packet", "1"]
    if count:
        cmd += ["--count", str(count)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    return int(json.loads(out.strip().splitlines()[-1])["lines_sent"])


def samples(exporter: Exporter) -> tuple[dict[str, float], float]:
    text, seconds = exporter.fetch()
    values: dict[str, float] = {}
    legit = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("bench_legit_"):
                legit += sample.value
            elif not sample.labels:
                values[sample.name] = sample.value
    values["legit"] = legit
    return values, seconds


def settle(exporter: Exporter) -> dict[str, float]:
    last: dict[str, float] = {}
    for _ in range(120):
        now, _ = samples(exporter)
        if now.get("statsd_exporter_lines_total") == last.get("statsd_exporter_lines_total"):
            return now
        last = now
        time.sleep(0.5)
    return last


def run(scenario: str, cmd: str, blast_bin: Path, work: Path, seconds: float) -> dict[str, Any]:
    exporter = Exporter(scenario, cmd, None)
    exporter.start()
    try:
        before, _ = samples(exporter)
        if scenario == "new-names":
            path = lines_file(work, "new.lines",
                              (f"bench.new.{i}:1|c" for i in range(NEW_NAMES)))
            sent = blast(blast_bin, exporter.udp_port, path, LEGIT_RATE,
                         NEW_NAMES / LEGIT_RATE + 5, count=NEW_NAMES)
            after = settle(exporter)
            counted = (after["statsd_exporter_lines_total"]
                       - before["statsd_exporter_lines_total"])
        else:
            path = lines_file(work, "legit.lines",
                              (f"bench.legit.{i}:1|c" for i in range(LEGIT_NAMES)))
            attacker = Attacker(exporter.udp_port, scenario, seconds)
            attacker.start()
            sent = blast(blast_bin, exporter.udp_port, path, LEGIT_RATE, seconds)
            attacker.join()
            after = settle(exporter)
            counted = after["legit"] - before["legit"]
        _, scrape_seconds = samples(exporter)
        return {
            "scenario": scenario,
            "legit_sent": sent,
            "legit_counted": counted,
            "legit_pct": 100.0 * counted / sent if sent else 0.0,
            "scrape_ms": 1000 * scrape_seconds,
            "rss_growth_mb": (after.get("process_resident_memory_bytes", 0)
                              - before.get("process_resident_memory_bytes", 0)) / 2**20,
            "cpu_s": (after.get("process_cpu_seconds_total", 0)
                      - before.get("process_cpu_seconds_total", 0)),
            "kernel_drops": (after.get("aerostat_udp_kernel_drops_total", 0)
                             - before.get("aerostat_udp_kernel_drops_total", 0)),
        }
    finally:
        exporter.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--exporter", default=AEROSTAT_CMD,
                        help="the exporter's command, without listen flags")
    args = parser.parse_args()
    blast_bin = build_blast()
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores; "
          f"net.core.rmem_max={read_int(RMEM_MAX)} (aerostat asks 8 MiB, the kernel grants "
          "up to this)")
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for repeat in range(args.repeats):
            for scenario in args.scenarios.split(","):
                result = run(scenario, args.exporter, blast_bin, Path(directory), args.seconds)
                results.setdefault(scenario, []).append(result)
                print(f"  run {repeat + 1} {scenario}: {result['legit_pct']:.2f} % counted, "
                      f"scrape {result['scrape_ms']:.0f} ms", flush=True)
    columns = ("legit_pct", "scrape_ms", "rss_growth_mb", "cpu_s", "kernel_drops")
    print(f"\n{'scenario':15} " + " ".join(f"{c:>14}" for c in columns))
    for scenario, runs in results.items():
        medians = [statistics.median(run[c] for run in runs) for c in columns]
        print(f"{scenario:15} " + " ".join(f"{m:14.2f}" for m in medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
