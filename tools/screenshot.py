"""Takes docs/images/prometheus-demo.png: runs ``aerostat up --demo`` on free
ports with a throw-away state directory, lets the demo traffic fill
Prometheus for a few minutes, and has a headless Chromium photograph a
Prometheus graph of it. Not part of the tests (it takes minutes and needs
Debian's chromium package: apt-get install chromium).

    .venv/bin/python tools/screenshot.py [--minutes 4] [--speed 4] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tasks finishing per second, by DAG: the demo's DAGs succeed, retry and fail
EXPRESSION = "sum by (dag_id, state) (rate(airflow_ti_finish_total[1m]))"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1400,900",
    # the page draws the graph from its own queries after loading: give its
    # scripts the time to finish before the picture is taken
    "--virtual-time-budget=15000",
)
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def series(prometheus: str, expr: str) -> int:
    """How many series ``expr`` returns now; 0 while Prometheus is not up."""
    url = f"{prometheus}/api/v1/query?query={urllib.parse.quote(expr)}"
    try:
        with _LOCAL.open(url, timeout=5) as response:
            return len(json.load(response)["data"]["result"])
    except OSError:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0,
                        help="how long the demo fills Prometheus before the picture")
    parser.add_argument("--speed", type=float, default=4.0, help="the demo's --demo-speed")
    parser.add_argument("--range", default="5m", help="the graph's time range")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/prometheus-demo.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("no chromium on the PATH: sudo apt-get install chromium", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="aerostat-screenshot-") as scratch:
        ports = {"statsd": free_port(socket.SOCK_DGRAM), "web": free_port(),
                 "prometheus": free_port(), "grafana": free_port()}
        up = subprocess.Popen(
            [sys.executable, "-m", "aerostat.cli", "up", "--demo", "--demo-speed",
             str(args.speed), "--state-dir", f"{scratch}/state",
             *(f"--{name}-port={port}" for name, port in ports.items())],
            stdin=subprocess.DEVNULL,
        )
        prometheus = f"http://127.0.0.1:{ports['prometheus']}"
        try:
            started = time.monotonic()
            while time.monotonic() - started < args.minutes * 60 or not series(
                    prometheus, EXPRESSION):
                if up.poll() is not None:
                    print(f"aerostat up exited with {up.returncode}", file=sys.stderr)
                    return 1
                time.sleep(5)
            query = urllib.parse.urlencode(
                {"g0.expr": EXPRESSION, "g0.tab": "0", "g0.range_input": args.range})
            args.out.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={scratch}/chromium",
                 f"--screenshot={args.out}", f"{prometheus}/graph?{query}"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
            )
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(60)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
