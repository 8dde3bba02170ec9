"""``running_bridge()``: a real aerostat server on free loopback ports, in a
thread of the test process, and the few things tests do with it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace

from prometheus_client.parser import text_string_to_metric_families

from aerostat.options import ServerOptions
from aerostat.server import Server

OWN_PREFIXES = ("statsd_exporter_", "statsd_metric_mapper_", "process_", "python_", "aerostat_")


@dataclass
class Bridge:
    server: Server

    @property
    def udp_address(self) -> tuple[str, int]:
        assert self.server.udp is not None
        host, port = self.server.udp.getsockname()[:2]
        return host, port

    @property
    def tcp_address(self) -> tuple[str, int]:
        assert self.server.tcp is not None
        host, port = self.server.tcp.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    def send_udp(self, *datagrams: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in datagrams:
                sock.sendto(datagram, self.udp_address)
        self.wait_for_counter("statsd_exporter_udp_packets_total", self._udp_sent + len(datagrams))
        self._udp_sent += len(datagrams)

    def send_tcp(self, payload: bytes) -> None:
        before = self.counter("statsd_exporter_tcp_connections_total")
        with socket.create_connection(self.tcp_address) as sock:
            sock.sendall(payload)
        self.wait_for_counter("statsd_exporter_tcp_connections_total", before + 1)
        # the connection is closed: its last bytes are read before the next scrape settles
        self.settle()

    def settle(self) -> None:
        """Waits until the lines counter stops moving."""
        last = -1.0
        for _ in range(100):
            current = self.counter("statsd_exporter_lines_total")
            if current == last:
                return
            last = current
            time.sleep(0.02)

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def post(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def scrape_text(self) -> str:
        status, _, body = self.get(self.server.options.telemetry_path)
        assert status == 200
        return body.decode("utf-8")

    def samples(self, own: bool = False) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of a scrape: (name, labels) → value; the exporter's own
        metrics only when ``own``. prometheus_client's parser names the
        sample of a counter ``foo`` as ``foo_total``."""
        result = {}
        for family in text_string_to_metric_families(self.scrape_text()):
            for sample in family.samples:
                if sample.name.startswith(OWN_PREFIXES) != own:
                    continue
                result[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return result

    def counter(self, name: str, **labels: str) -> float:
        return self.samples(own=True).get((name, frozenset(labels.items())), 0.0)

    def wait_for_counter(self, name: str, at_least: float, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.counter(name) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} stayed below {at_least}")
            time.sleep(0.01)

    _udp_sent: int = 0


class Sender:
    """One process with its own UDP socket, hence its own source port: what
    the server tells senders apart by (each Airflow process is one)."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.name = f"127.0.0.1:{self.socket.getsockname()[1]}"

    def send(self, *lines: bytes) -> None:
        before = self.bridge.counter("statsd_exporter_udp_packets_total")
        for line in lines:
            self.socket.sendto(line, self.bridge.udp_address)
        self.bridge.wait_for_counter("statsd_exporter_udp_packets_total", before + len(lines))


def value(bridge: Bridge, name: str, **labels: str) -> float | None:
    """One sample of a scrape, or None."""
    return bridge.samples().get((name, frozenset(labels.items())))


# values at once: the tests that are about the first-value hold turn it on
LOOPBACK = ServerOptions(
    listen_udp="127.0.0.1:0", listen_tcp="127.0.0.1:0", web_listen_address="127.0.0.1:0",
    new_series_hold=0.0,
)


@contextlib.contextmanager
def running_bridge(**overrides: object) -> Iterator[Bridge]:
    """A started server; stopped (and its thread joined) on exit."""
    server = Server(replace(LOOPBACK, **overrides))  # type: ignore[arg-type]
    server.start()
    thread = threading.Thread(target=server.serve_forever, name="aerostat-test-loop")
    thread.start()
    try:
        yield Bridge(server)
    finally:
        server.stop()
        thread.join(10)
        assert not thread.is_alive(), "the event loop did not stop"
