#!/usr/bin/env python3
"""End-to-end UDP throughput benchmark: StatsD in over UDP, Prometheus out over HTTP.

Starts the exporter (aerostat by default) on free loopback ports, replays real Airflow
StatsD traffic at fixed offered rates with statsd-blast (one line per datagram, as
Airflow sends), and reads the exporter's own counters before and after each load to
report datagrams received, loss, kernel drops, CPU per line, RSS and the latency of
/metrics scrapes taken every 0.5 s while the load runs. Several exporters
(--exporter, repeatable) run side by side in one session: all started at once, their
runs interleaved (A, B, A, B, ...), so that a machine whose load changes meets both
alike. See benchmarks/README.md.

    ./run bench udp [--rates 100000,200000,300000] [--seconds 5]
        [--repeats 3] [--read-buffer N] [--exporter CMD] [--find-max]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    from prometheus_client.parser import text_string_to_metric_families
except ModuleNotFoundError:  # run outside the project's environment
    sys.exit("bench_udp needs the project's environment: run it as ./run bench udp [ARGS] "
             "(or .venv/bin/python benchmarks/bench_udp.py after ./run created .venv)")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BLAST_SRC = HERE / "statsd-blast.c"
BLAST_BIN = HERE / "bin" / "statsd-blast"
CAPTURE = ROOT / "src" / "aerostat" / "airflow" / "captures" / "airflow-3.3.2-plain.jsonl"
LINES_FILE = HERE / "bin" / "airflow-3.3.2-plain.lines"  # made from CAPTURE
OUT_DIR = HERE / "out"
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")
RMEM_DEFAULT = Path("/proc/sys/net/core/rmem_default")

HOST = "127.0.0.1"  # traffic never leaves loopback
SCRAPE_INTERVAL = 0.5  # default seconds between /metrics scrapes while the load runs
SETTLE_POLL = 0.25  # seconds between polls while waiting for the packet counter to stop
SETTLE_TIMEOUT = 20.0  # give up waiting for the exporter to drain its backlog
WARMUP_SECONDS = 1.0  # discarded load before the first measured run of each exporter
MAX_LOSS_PCT = 0.1  # --find-max: the highest rate with loss below this
GENERATOR_SLACK = 0.95  # below this fraction of the offered rate, statsd-blast fell short

PACKETS = "statsd_exporter_udp_packets_total"
LINES = "statsd_exporter_lines_total"
APP_DROPS = "statsd_exporter_udp_packet_drops_total"
KERNEL_DROPS = "aerostat_udp_kernel_drops_total"
CPU = "process_cpu_seconds_total"
RSS = "process_resident_memory_bytes"

AEROSTAT_CMD = f"{shlex.quote(sys.executable)} -m aerostat.cli serve"


# --------------------------------------------------------------------------- setup


def write_lines_file() -> Path:
    """statsd-blast replays plain lines: one per datagram of the capture."""
    if LINES_FILE.exists() and LINES_FILE.stat().st_mtime >= CAPTURE.stat().st_mtime:
        return LINES_FILE
    LINES_FILE.parent.mkdir(parents=True, exist_ok=True)
    records = (json.loads(line) for line in CAPTURE.read_text("utf-8").splitlines() if line)
    LINES_FILE.write_text("".join(record["data"] + "\n" for record in records), "utf-8")
    return LINES_FILE


def build_blast() -> Path:
    """Compile statsd-blast into benchmarks/bin/ unless an up-to-date binary is there."""
    if BLAST_BIN.exists() and BLAST_BIN.stat().st_mtime >= BLAST_SRC.stat().st_mtime:
        return BLAST_BIN
    BLAST_BIN.parent.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-O2", "-o", str(BLAST_BIN), str(BLAST_SRC)]
    print("building:", " ".join(cmd))
    subprocess.run(cmd, check=True)
    return BLAST_BIN


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def prepare_rmem(read_buffer: int | None) -> int | None:
    """Raise net.core.rmem_max when --read-buffer asks for more and we are root.

    Returns the value to restore afterwards, or None when nothing was changed."""
    current = read_int(RMEM_MAX)
    if not read_buffer:
        print("read buffer: not passed, each exporter asks its own (aerostat 8 MiB; "
              "statsd_exporter nothing, so net.core.rmem_default="
              f"{read_int(RMEM_DEFAULT)}), capped at net.core.rmem_max={current}; what each "
              "socket got is printed below as 'granted'")
        return None
    if current is None or read_buffer <= current:
        print(f"read buffer: {read_buffer} bytes, within net.core.rmem_max={current}; "
              "rmem_max left alone")
        return None
    if os.geteuid() != 0:
        print(f"read buffer: {read_buffer} bytes asked, but net.core.rmem_max={current} and "
              "not root: the kernel caps the buffer at rmem_max")
        return None
    RMEM_MAX.write_text(f"{read_buffer}\n")
    print(f"read buffer: raised net.core.rmem_max {current} -> {read_buffer} "
          "(restored when the benchmark ends)")
    return current


def restore_rmem(value: int | None) -> None:
    if value is not None:
        RMEM_MAX.write_text(f"{value}\n")
        print(f"restored net.core.rmem_max={value}")


def kernel_drops(port: int) -> int | None:
    """Drops the kernel counted for the unconnected UDP socket bound to ``port``."""
    hex_port = f":{port:04X}"
    total, found = 0, False
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as rows:
            next(rows, None)
            for row in rows:
                fields = row.split()
                if len(fields) >= 13 and fields[1].endswith(hex_port) and fields[2].endswith(
                        ":0000"):
                    total += int(fields[12])
                    found = True
    return total if found else None


def receive_buffer(port: int) -> int | None:
    """The socket's effective receive buffer (ss -m 'rb'), if ss is available."""
    if not shutil.which("ss"):
        return None
    try:
        out = subprocess.run(["ss", "-uamnH", "sport", "=", f":{port}"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\brb(\d+)", out)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- exporter


class Exporter:
    """One exporter process listening on free loopback ports."""

    def __init__(self, name: str, cmd: str, read_buffer: int | None) -> None:
        self.name = name
        self.cmd = cmd
        self.read_buffer = read_buffer
        self.udp_port = 0
        self.web_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        # The exporter's log, kept for error messages; lives as long as the process.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.web_port}/metrics"

    def argv(self) -> list[str]:
        argv = [*shlex.split(self.cmd),
                f"--statsd.listen-udp={HOST}:{self.udp_port}",
                "--statsd.listen-tcp=",
                f"--web.listen-address={HOST}:{self.web_port}"]
        if self.read_buffer:
            argv.append(f"--statsd.read-buffer={self.read_buffer}")
        return argv

    def start(self, timeout: float = 20.0) -> None:
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.web_port = free_port(socket.SOCK_STREAM)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
        argv = self.argv()
        print(f"[{self.name}] starting: {shlex.join(argv)}")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            try:
                self.scrape()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} not answering on {self.url}:\n" + self.log_tail())

    def log_tail(self, lines: int = 20) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])

    def fetch(self) -> tuple[str, float]:
        """GET /metrics; returns the body and the seconds it took to read it all."""
        t0 = time.perf_counter()
        with urllib.request.urlopen(self.url, timeout=10) as response:
            body: bytes = response.read()
        return body.decode(), time.perf_counter() - t0

    def scrape(self) -> dict[str, float]:
        """The unlabelled samples of /metrics, by sample name."""
        text, _ = self.fetch()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if not sample.labels:
                    values[sample.name] = sample.value
        return values

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def exporter_names(cmds: list[str]) -> list[str]:
    """A name per command: the program's, and where two share one, the
    arguments that tell them apart."""
    bases = [exporter_name(cmd) for cmd in cmds]
    names = []
    for cmd, base in zip(cmds, bases, strict=True):
        if bases.count(base) == 1:
            names.append(base)
            continue
        common = set.intersection(*[set(shlex.split(c)) for c, b in zip(cmds, bases, strict=True)
                                    if b == base])
        extra = [arg for arg in shlex.split(cmd) if arg not in common]
        name = " ".join([base, *extra])
        names.append(name if name not in names else f"{name}#{len(names) + 1}")
    return names


def exporter_name(cmd: str) -> str:
    argv = shlex.split(cmd)
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1].split(".")[0]
    return Path(argv[0]).name


# --------------------------------------------------------------------------- measuring


class Scraper(threading.Thread):
    """Scrapes /metrics every ``interval`` seconds until stopped; keeps the latencies."""

    def __init__(self, exporter: Exporter, interval: float) -> None:
        super().__init__(daemon=True)
        self.exporter = exporter
        self.interval = interval
        self.latencies: list[float] = []
        self.errors = 0
        self.done = threading.Event()

    def run(self) -> None:
        if self.interval <= 0:
            return
        next_at = time.monotonic() + self.interval
        while not self.done.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval
            try:
                _, seconds = self.exporter.fetch()
                self.latencies.append(seconds)
            except OSError:
                self.errors += 1


def wait_settled(exporter: Exporter) -> tuple[dict[str, float], float, bool]:
    """Poll until the packet counter has not moved for two polls in a row."""
    t0 = time.monotonic()
    last = exporter.scrape()
    still = 0
    while time.monotonic() - t0 < SETTLE_TIMEOUT:
        time.sleep(SETTLE_POLL)
        now = exporter.scrape()
        still = still + 1 if now.get(PACKETS) == last.get(PACKETS) else 0
        last = now
        if still >= 2:
            return last, time.monotonic() - t0, True
    return last, time.monotonic() - t0, False


SENDERS = 1  # statsd-blast processes sharing the offered rate (--senders)


def blast(blast_bin: Path, port: int, rate: float, seconds: float) -> dict[str, Any]:
    """Runs SENDERS generators at rate/SENDERS each; sums what they sent."""
    cmd = [str(blast_bin), HOST, str(port), str(write_lines_file()),
           "--rate", str(int(rate / SENDERS)), "--seconds", str(seconds), "--per-packet", "1"]
    processes = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
                 for _ in range(SENDERS)]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 30)
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, cmd)
        results.append(json.loads(out.strip().splitlines()[-1]))
    total: dict[str, Any] = dict(results[0])
    for key in ("datagrams_sent", "lines_per_s"):
        total[key] = sum(float(result[key]) for result in results)
    return total


def delta(after: dict[str, float], before: dict[str, float], name: str) -> float | None:
    if name in after and name in before:
        return after[name] - before[name]
    return None


def run_once(exporter: Exporter, blast_bin: Path, rate: float, seconds: float,
             scrape_interval: float) -> dict[str, Any]:
    before = exporter.scrape()
    kd_before = kernel_drops(exporter.udp_port)
    scraper = Scraper(exporter, scrape_interval)
    scraper.start()
    try:
        sent = blast(blast_bin, exporter.udp_port, rate, seconds)
    finally:
        scraper.done.set()
        scraper.join()
    after, settle_s, settled = wait_settled(exporter)
    kd_after = kernel_drops(exporter.udp_port)

    dgrams = int(sent["datagrams_sent"])
    received = delta(after, before, PACKETS)
    lines = delta(after, before, LINES)
    cpu = delta(after, before, CPU)
    if kd_before is not None and kd_after is not None:
        kdrops: float | None = kd_after - kd_before
    else:
        kdrops = delta(after, before, KERNEL_DROPS)
    lat_ms = [x * 1000 for x in scraper.latencies]
    return {
        "rate": rate,
        "sent_per_s": float(sent["lines_per_s"]),
        "sent": dgrams,
        "received": received,
        "loss_pct": (dgrams - received) / dgrams * 100 if received is not None and dgrams else None,
        "kernel_drops": kdrops,
        "app_drops": delta(after, before, APP_DROPS),
        "lines": lines,
        "cpu_s": cpu,
        "cpu_us_per_line": cpu / lines * 1e6 if cpu is not None and lines else None,
        "rss_mb": after[RSS] / 2**20 if RSS in after else None,
        "scrape_ms_median": statistics.median(lat_ms) if lat_ms else None,
        "scrape_ms_max": max(lat_ms) if lat_ms else None,
        "scrapes": len(lat_ms),
        "scrape_errors": scraper.errors,
        "settle_s": settle_s,
        "settled": settled,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each numeric field over the repeats (scrape max: median of the maxima)."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs if isinstance(r[key], int | float)
                  and not isinstance(r[key], bool)]
        out[key] = statistics.median(values) if values else None
    out["settled"] = all(r["settled"] for r in runs)
    return out


def find_max(exporter: Exporter, blast_bin: Path, table: list[dict[str, Any]],
             seconds: float, budget: float, scrape_interval: float) -> dict[str, Any]:
    """Bisect for the highest offered rate with loss below MAX_LOSS_PCT, one run per probe."""
    end = time.monotonic() + budget
    probes: list[dict[str, Any]] = []

    def passes(result: dict[str, Any]) -> bool:
        loss = result["loss_pct"]
        return loss is not None and loss < MAX_LOSS_PCT

    def probe(rate: float) -> bool | None:
        if time.monotonic() + seconds + 5 > end:
            return None
        result = run_once(exporter, blast_bin, rate, seconds, scrape_interval)
        probes.append(result)
        print(f"[{exporter.name}] find-max probe {rate:>10,.0f}/s: loss "
              f"{fmt(result['loss_pct'], '.3f')} %, sent {result['sent_per_s']:,.0f}/s")
        return passes(result)

    lo = max((m["rate"] for m in table if passes(m)), default=0.0)
    hi = min((m["rate"] for m in table if not passes(m) and m["rate"] > lo), default=None)
    generator_limited = False

    def step(rate: float) -> bool:
        """Probes ``rate`` and narrows [lo, hi]; False when out of time."""
        nonlocal lo, hi, generator_limited
        ok = probe(rate)
        if ok is None:
            return False
        if probes[-1]["sent_per_s"] < GENERATOR_SLACK * rate:
            generator_limited, hi = True, rate
        elif ok:
            lo = rate
        else:
            hi = rate
        return True

    while hi is None:  # every measured rate passed: double until one fails
        if not step((lo or 50_000) * 2):
            break
    while hi is not None and hi - lo > max(0.05 * hi, 5_000):
        if not step(round((lo + hi) / 2, -3)):
            break
    return {"max_rate": lo, "first_failing_rate": hi, "generator_limited": generator_limited,
            "budget_exhausted": time.monotonic() + seconds + 5 > end, "probes": probes}


# --------------------------------------------------------------------------- output


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS = [  # header, key, format
    ("rate/s", "rate", ",.0f"),
    ("sent/s", "sent_per_s", ",.0f"),
    ("sent", "sent", ",.0f"),
    ("received", "received", ",.0f"),
    ("loss %", "loss_pct", ".3f"),
    ("kern drops", "kernel_drops", ",.0f"),
    ("CPU us/line", "cpu_us_per_line", ".2f"),
    ("RSS MB", "rss_mb", ".1f"),
    ("scrape p50 ms", "scrape_ms_median", ".1f"),
    ("scrape max ms", "scrape_ms_max", ".1f"),
]


def print_table(name: str, rows: list[dict[str, Any]]) -> None:
    cells = [[h for h, _, _ in COLUMNS]]
    cells += [[fmt(r[k], f) for _, k, f in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    print(f"\n{name}")
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if not r["settled"]:
            print(f"  note: at {r['rate']:,.0f}/s the packet counter was still moving after "
                  f"{SETTLE_TIMEOUT:.0f} s")
        if r["sent_per_s"] < GENERATOR_SLACK * r["rate"]:
            print(f"  note: at {r['rate']:,.0f}/s statsd-blast only sent "
                  f"{r['sent_per_s']:,.0f}/s (generator-limited)")


def ratio(a: Any, b: Any) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def print_ratios(first: str, other: str, a: list[dict[str, Any]],
                 b: list[dict[str, Any]]) -> None:
    print(f"\n{first} / {other}")
    print(f"{'rate/s':>10}  {'CPU us/line':>11}  {'RSS':>6}  {'scrape p50':>10}  "
          f"{'loss % ' + first:>14}  {'loss % ' + other:>14}")
    for x, y in zip(a, b, strict=True):
        print(f"{x['rate']:>10,.0f}  {ratio(x['cpu_us_per_line'], y['cpu_us_per_line']):>11}  "
              f"{ratio(x['rss_mb'], y['rss_mb']):>6}  "
              f"{ratio(x['scrape_ms_median'], y['scrape_ms_median']):>10}  "
              f"{fmt(x['loss_pct'], '.3f'):>14}  {fmt(y['loss_pct'], '.3f'):>14}")


def git_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100000,200000,300000",
                        help="offered rates, lines (= datagrams) per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="load duration per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per rate; medians reported")
    parser.add_argument("--read-buffer", type=int, default=None,
                        help="pass --statsd.read-buffer=N (bytes); default: each exporter's own "
                        "(aerostat asks 8 MiB, statsd_exporter keeps the OS default)")
    parser.add_argument("--exporter", action="append", metavar="CMD",
                        help="exporter command, given the statsd_exporter flags; repeatable. "
                             "Default: aerostat, plus statsd_exporter if it is on the PATH")
    parser.add_argument("--scrape-interval", type=float, default=SCRAPE_INTERVAL,
                        help="seconds between /metrics scrapes during the load; 0: none")
    parser.add_argument("--find-max", action="store_true",
                        help=f"bisect for the highest rate with loss < {MAX_LOSS_PCT} %%")
    parser.add_argument("--find-max-budget", type=float, default=90.0,
                        help="seconds --find-max may spend per exporter")
    parser.add_argument("--senders", type=int, default=1,
                        help="load generators sharing each rate (one cannot offer much more "
                             "than 400k/s here); for overload runs")
    parser.add_argument("--out", type=Path, default=None, help="JSON result file")
    args = parser.parse_args(argv)
    args.rate_list = [float(r) for r in args.rates.split(",") if r.strip()]
    if not args.rate_list or min(args.rate_list) <= 0 or args.repeats < 1 or args.seconds <= 0:
        parser.error("need positive --rates, --seconds and --repeats")
    return args


def granted_buffer(exporter: Exporter) -> dict[str, Any]:
    """What the exporter's socket got: ``ss``'s rb, which is twice the size
    asked (the kernel's own bookkeeping), capped at twice rmem_max."""
    granted = receive_buffer(exporter.udp_port)
    asked = exporter.read_buffer
    print(f"[{exporter.name}] udp={HOST}:{exporter.udp_port} web={HOST}:{exporter.web_port}"
          f" pid={exporter.proc.pid if exporter.proc else '-'} receive buffer: "
          f"asked {fmt(asked, 'd') if asked else 'its own default'}, "
          f"granted {fmt(granted, 'd')} bytes (ss rb: twice the usable size)")
    return {"asked": asked, "granted": granted}


def bench_side_by_side(exporters: list[Exporter], blast_bin: Path,
                       args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every exporter already started; each rate's runs interleaved over
    them (A, B, A, B, ...), one load at a time."""
    results: list[dict[str, Any]] = []
    for exporter in exporters:
        buffer = granted_buffer(exporter)
        results.append({"name": exporter.name, "argv": exporter.argv(),
                        "receive_buffer_bytes": buffer["granted"],
                        "receive_buffer_asked": buffer["asked"], "rates": []})
        blast(blast_bin, exporter.udp_port, min(args.rate_list), WARMUP_SECONDS)
        wait_settled(exporter)
    for rate in args.rate_list:
        runs: list[list[dict[str, Any]]] = [[] for _ in exporters]
        for i in range(args.repeats):
            for exporter, own in zip(exporters, runs, strict=True):
                run = run_once(exporter, blast_bin, rate, args.seconds, args.scrape_interval)
                own.append(run)
                print(f"[{exporter.name}] {rate:>10,.0f}/s run {i + 1}/{args.repeats}: "
                      f"loss {fmt(run['loss_pct'], '.3f')} %, "
                      f"CPU {fmt(run['cpu_us_per_line'], '.2f')} us/line")
        for result, own in zip(results, runs, strict=True):
            result["rates"].append({"rate": rate, "median": medians(own), "runs": own})
    if args.find_max:
        for exporter, result in zip(exporters, results, strict=True):
            result["find_max"] = find_max(
                exporter, blast_bin, [r["median"] for r in result["rates"]], args.seconds,
                args.find_max_budget, args.scrape_interval)
    return results


def main(argv: list[str] | None = None) -> int:
    global SENDERS
    args = parse_args(argv)
    SENDERS = max(1, args.senders)
    started = time.monotonic()
    blast_bin = build_blast()
    cmds = list(args.exporter or [AEROSTAT_CMD])
    if not args.exporter and (reference := shutil.which("statsd_exporter")):
        print(f"found statsd_exporter at {reference}: running it too, for comparison")
        cmds.append(shlex.quote(reference))
    names = exporter_names(cmds)

    restore = prepare_rmem(args.read_buffer)
    exporters = [Exporter(name, cmd, args.read_buffer) for name, cmd in zip(names, cmds,
                                                                             strict=True)]
    try:
        with contextlib.ExitStack() as running:
            for exporter in exporters:
                exporter.start()
                running.callback(exporter.stop)
            results = bench_side_by_side(exporters, blast_bin, args)
    finally:
        restore_rmem(restore)

    for res in results:
        asked = res["receive_buffer_asked"]
        print_table(f"{res['name']} (medians of {args.repeats} x {args.seconds:g} s, "
                    f"{len(results)} exporter(s) interleaved, receive buffer asked "
                    f"{fmt(asked, 'd') if asked else 'its own default'}"
                    f", granted {fmt(res['receive_buffer_bytes'], 'd')} (ss rb), "
                    f"scrape every {args.scrape_interval:g} s)",
                    [r["median"] for r in res["rates"]])
        if "find_max" in res:
            fm = res["find_max"]
            note = " (generator-limited)" if fm["generator_limited"] else ""
            note += " (time budget ran out)" if fm["budget_exhausted"] else ""
            print(f"  highest rate with loss < {MAX_LOSS_PCT} %: {fm['max_rate']:,.0f}/s"
                  f"{note}")
    for res in results[1:]:
        print_ratios(results[0]["name"], res["name"], [r["median"] for r in results[0]["rates"]],
                     [r["median"] for r in res["rates"]])

    report = {
        "benchmark": "bench_udp",
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "config": {"rates": args.rate_list, "seconds": args.seconds, "repeats": args.repeats,
                   "read_buffer": args.read_buffer, "lines_per_datagram": 1,
                   "lines_file": str(LINES_FILE.relative_to(ROOT)),
                   "scrape_interval_s": args.scrape_interval},
        "environment": {"python": platform.python_version(), "kernel": platform.release(),
                        "cpus": os.cpu_count(), "git": git_revision(),
                        "rmem_max": read_int(RMEM_MAX), "rmem_default": read_int(RMEM_DEFAULT)},
        "exporters": results,
    }
    out = args.out or OUT_DIR / f"bench_udp-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out} ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
