"""``running_prometheus()``: a real Prometheus (the binary of Debian's
package) on a free loopback port with a configuration the test wrote, its
data in the test's directory; and the few things tests ask its HTTP API."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# requests to this machine must not go through a proxy from the environment
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port(kinds: tuple[socket.SocketKind, ...] = (socket.SOCK_STREAM,)) -> int:
    """A loopback port nothing listens on now, for every socket kind given
    (StatsD wants one free for UDP and TCP both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kinds[0]) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if all(port_is_free(port, kind) for kind in kinds):
            return port
    raise AssertionError("no free port found")


def port_is_free(port: int, kind: socket.SocketKind = socket.SOCK_STREAM,
                 host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with _LOCAL.open(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answers(url: str) -> bool:
    """Whether ``url`` answers 200; False while nothing listens yet."""
    try:
        return http_get(url, timeout=1)[0] == 200
    except OSError:
        return False


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def query(self, expr: str) -> dict[str, Any]:
        """The API's answer to an instant query at the current time, errors
        included (``status`` "error" with ``error``); POSTed, so that long
        expressions need no URL of their size."""
        request = urllib.request.Request(
            f"{self.url}/api/v1/query",
            data=urllib.parse.urlencode({"query": expr}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with _LOCAL.open(request, timeout=10) as response:
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:  # 400 or 422 for a bad expression
            answer = json.loads(error.read() or b"{}")
        return answer

    def series(self, expr: str) -> list[dict[str, Any]]:
        """The result of a valid expression, one entry per series."""
        answer = self.query(expr)
        assert answer.get("status") == "success", f"{expr}: {answer}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for_series(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.series(expr)
            if found:
                return found
            assert self.process.poll() is None, f"Prometheus exited:\n{self.log_tail()}"
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} stayed empty for {timeout} s")
            time.sleep(0.5)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_prometheus(config: Path, workdir: Path,
                       flags: tuple[str, ...] = ()) -> Iterator[Prometheus]:
    """Prometheus with ``config`` (relative paths in it resolve against its
    directory) and any further ``flags``, ready to answer; stopped and
    waited for on exit."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: ./run tests installs it (Debian package prometheus)"
    port = free_port()
    log = workdir / "prometheus.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", *flags],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process, log)
    with supervised(process, f"{prometheus.url}/-/ready", "Prometheus", prometheus.log_tail):
        yield prometheus


@contextlib.contextmanager
def supervised(process: subprocess.Popen[bytes], ready_url: str, what: str,
               log_tail: Callable[[], str]) -> Iterator[None]:
    """Waits until ``process`` answers ``ready_url`` (30 s at most, failing
    with its log if it exits or never does), then, on exit, stops it and
    waits for it: terminated, killed after 15 s."""
    try:
        deadline = time.monotonic() + 30
        while not answers(ready_url):
            assert process.poll() is None, f"{what} exited:\n{log_tail()}"
            assert time.monotonic() < deadline, f"{what} not ready within 30 s:\n{log_tail()}"
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

