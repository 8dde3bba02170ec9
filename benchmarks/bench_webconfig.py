#!/usr/bin/env python3
"""What --web.config.file costs a scrape: /metrics over plain HTTP, over TLS,
and over TLS with basic auth (bcrypt cost 10, as htpasswd -B makes), each
scrape on a new connection (aerostat answers HTTP/1.0, so Prometheus opens
one per scrape), measured from outside the process.

    ./run bench webconfig [--series 1000] [--scrapes 50] [--cost 10]

It starts `aerostat serve` once per mode on free loopback ports, sends
``--series`` distinct gauges, then times ``--scrapes`` scrapes (connect to
last byte). The first scrape with credentials pays the bcrypt check; the
rest find it remembered. Printed: median and 90th percentile per mode, the
first authenticated scrape, and one bcrypt check in process for scale."""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bcrypt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pki import make_pki  # noqa: E402 - the tests' throwaway CA (openssl)

HOST = "127.0.0.1"
PASSWORD = "bench password"


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Aerostat:
    def __init__(self, web_config: Path | None) -> None:
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.web_port = free_port(socket.SOCK_STREAM)
        argv = [sys.executable, "-m", "aerostat.cli", "serve",
                f"--statsd.listen-udp={HOST}:{self.udp_port}", "--statsd.listen-tcp=",
                f"--web.listen-address={HOST}:{self.web_port}", "--web.new-series-hold=0"]
        if web_config is not None:
            argv.append(f"--web.config.file={web_config}")
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((HOST, self.web_port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("aerostat did not start") from None
                time.sleep(0.1)

    def send_series(self, count: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for number in range(count):
                sock.sendto(b"airflow.pool.open_slots,pool=pool_%d:%d|g" % (number, number),
                            (HOST, self.udp_port))
                if number % 500 == 499:
                    time.sleep(0.01)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def scrape(port: int, context: ssl.SSLContext | None, auth: str | None) -> tuple[float, int]:
    """Seconds from connect to the last byte, and the status."""
    start = time.perf_counter()
    if context is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(HOST, port,
                                                                            timeout=10)
    else:
        connection = http.client.HTTPSConnection(HOST, port, timeout=10, context=context)
    connection.request("GET", "/metrics", headers={"Authorization": auth} if auth else {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return time.perf_counter() - start, response.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--cost", type=int, default=10, help="bcrypt cost of the hash")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        pki = make_pki(directory / "pki")
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(args.cost)).decode()
        tls = f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        (directory / "tls.yml").write_text(tls)
        (directory / "auth.yml").write_text(tls + f"basic_auth_users:\n  bench: {hashed}\n")
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        auth = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
        modes = [("plain HTTP", None, None, None), ("TLS", directory / "tls.yml", context, None),
                 ("TLS + basic auth", directory / "auth.yml", context, auth)]
        print(f"{args.series} series, {args.scrapes} scrapes per mode, each on a new "
              f"connection; bcrypt cost {args.cost}")
        print(f"{'mode':<20} {'median ms':>10} {'p90 ms':>8} {'first ms':>9}")
        for name, web_config, mode_context, mode_auth in modes:
            aerostat = Aerostat(web_config)
            try:
                aerostat.send_series(args.series)
                time.sleep(1.0)
                first, status = scrape(aerostat.web_port, mode_context, mode_auth)
                assert status == 200, status
                times = []
                for _ in range(args.scrapes):
                    seconds, status = scrape(aerostat.web_port, mode_context, mode_auth)
                    assert status == 200, status
                    times.append(seconds)
            finally:
                aerostat.stop()
            times.sort()
            p90 = times[int(0.9 * (len(times) - 1))]
            print(f"{name:<20} {statistics.median(times) * 1e3:>10.2f} {p90 * 1e3:>8.2f} "
                  f"{first * 1e3:>9.2f}")
        checks = []
        for _ in range(5):
            start = time.perf_counter()
            bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
            checks.append(time.perf_counter() - start)
        print(f"one bcrypt check at cost {args.cost}, in process: "
              f"{statistics.median(checks) * 1e3:.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
