"""``aerostat up``: the whole stack on one machine, without Docker.

What runs:

* the exporter with the built-in Airflow mapping, in this process (see
  ``LocalStack._start_exporter`` for why not a child process);
* a real Prometheus, the ``prometheus`` binary on the PATH, with the files
  ``render_stack`` makes (rules included) and its data in the state directory;
* Grafana with the rendered data source and dashboards, when a ``grafana`` or
  ``grafana-server`` binary is installed; without one the rest runs all the same;
* with ``demo``, the bundled capture of a real Airflow replayed into the
  exporter's UDP port in a loop, and the hour before backfilled into
  Prometheus (stack/history.py), so that a new user's first graph already
  shows an hour.

Lifecycle in one class, ``LocalStack``: ``run()`` starts each piece and waits
until it answers, supervises them, and stops everything in the reverse order
however it ends. Nothing here prints: progress goes to the ``report``
callback that cli.py passes."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from aerostat.errors import AerostatError
from aerostat.offline import read_datagrams
from aerostat.options import ServerOptions
from aerostat.server import Server
from aerostat.stack.configs import JOB
from aerostat.stack.history import Timeline, history_openmetrics, write_blocks
from aerostat.stack.options import StackOptions
from aerostat.stack.render import render_stack, write_stack

Report = Callable[[str], None]

LOOPBACK = "127.0.0.1"
CAPTURE = "airflow-3.3.2-plain.jsonl"
# the README's first query: the demo's graph link opens on it, over an hour
DEMO_QUERY = "sum by (dag_id, state) (rate(airflow_ti_finish_total[5m]))"
# a local Prometheus scrapes one exporter: every 5 s costs nothing, and the
# first points of a new user's graphs come three times sooner than at 15 s
SCRAPE_SECONDS = 5
SCRAPE_INTERVAL = f"{SCRAPE_SECONDS}s"
# Grafana's own Debian package puts its binaries in /usr/sbin, which is not
# on an ordinary user's PATH
GRAFANA_PLACES = ("/usr/sbin", "/usr/share/grafana/bin")
# how long each piece may take to answer: Prometheus replays its write-ahead
# log first, Grafana migrates its database on its first start (a minute on a
# slow disk)
EXPORTER_START_SECONDS = 10.0
PROMETHEUS_START_SECONDS = 120.0
GRAFANA_START_SECONDS = 180.0
# between SIGTERM and SIGKILL: Prometheus writes its head block out on the way
STOP_SECONDS = 15.0

PROMETHEUS_MISSING = (
    "no `prometheus` on the PATH: aerostat up runs a real Prometheus.\n"
    "  Debian/Ubuntu: sudo apt-get install prometheus\n"
    "    (the package also starts a system Prometheus on port 9090: stop it with\n"
    "    `sudo systemctl disable --now prometheus`, or give aerostat up --prometheus-port 9091)\n"
    "  elsewhere: a release from https://prometheus.io/download/, its directory on the PATH"
)
GRAFANA_MISSING = (
    "Grafana: no `grafana` or `grafana-server` found, so the stack runs without dashboards.\n"
    "  To add them, install Grafana from its apt repository (https://apt.grafana.com,\n"
    "  see https://grafana.com/docs/grafana/latest/setup-grafana/installation/debian/)\n"
    "  or unpack its tarball (https://grafana.com/grafana/download) and put its bin/ on\n"
    "  the PATH; then run aerostat up again."
)

# proxies from the environment must not see requests to this machine's own services
_LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/aerostat``, else ``~/.local/state/aerostat``."""
    base = os.environ.get("XDG_STATE_HOME", "")
    # the XDG spec says to ignore a relative value
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "aerostat"


@dataclass(frozen=True)
class UpOptions:
    state_dir: Path = field(default_factory=default_state_dir)
    statsd_port: int = 9125
    web_port: int = 9102
    prometheus_port: int = 9090
    grafana_port: int = 3000
    demo: bool = False
    demo_speed: float = 1.0  # 2.0 replays the capture twice as fast as it was recorded


class _Interrupted(Exception):
    """A stop was asked for while the stack was still starting."""


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers with a 2xx status."""
    try:
        with _LOCAL_HTTP.open(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (OSError, http.client.HTTPException):
        return False


def find_grafana() -> list[str] | None:
    """The command that starts Grafana's server, or None. ``grafana server``
    first: ``grafana-server`` is its deprecated spelling (Grafana 10+)."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *GRAFANA_PLACES])
    binary = shutil.which("grafana", path=search)
    if binary is not None:
        return [binary, "server"]
    binary = shutil.which("grafana-server", path=search)
    return None if binary is None else [binary]


def grafana_home(binary: str) -> Path | None:
    """Grafana's installation directory (conf/defaults.ini, public/): the
    parent of the tarball's bin/, its share/grafana in Homebrew's layout,
    or where the Debian package puts it."""
    prefix = Path(binary).resolve().parent.parent
    for candidate in (prefix, prefix / "share" / "grafana", Path("/usr/share/grafana")):
        if (candidate / "conf" / "defaults.ini").is_file():
            return candidate
    return None


def bundled_capture() -> list[tuple[float, bytes]]:
    """The real Airflow 3.3.2 traffic shipped with aerostat, in time order."""
    text = (resources.files("aerostat.airflow") / "captures" / CAPTURE).read_text("utf-8")
    return sorted(read_datagrams(text), key=lambda record: record[0])


class CaptureReplay:
    """Sends a capture's datagrams to a UDP address at the pace they were
    recorded (times ``speed``), again and again until stopped. One socket for
    all of them, so Airflow's processes look like one sender; each pass
    starts its clock anew, so that counters keep climbing like a live
    Airflow's instead of jumping."""

    def __init__(
        self, datagrams: Sequence[tuple[float, bytes]], target: tuple[str, int],
        speed: float = 1.0,
    ) -> None:
        if not datagrams:
            raise ValueError("an empty capture")
        if speed <= 0:
            raise ValueError(f"speed {speed} is not positive")
        self.datagrams = datagrams
        self.target = target
        self.speed = speed
        self.passes = 0  # complete passes over the capture
        self.sent = 0
        # bound now: its address is the sender the exporter sees, which the
        # demo's history is recorded under too (stack/history.py)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((target[0], 0))
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aerostat-replay", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._socket.getsockname()
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        else:
            self._socket.close()

    def _run(self) -> None:
        first, last = self.datagrams[0][0], self.datagrams[-1][0]
        # the end of one pass and the start of the next are as far apart as
        # two datagrams on average
        pause = (last - first) / max(1, len(self.datagrams) - 1) / self.speed
        with self._socket as sock:
            while True:
                started = time.monotonic()
                for offset, data in self.datagrams:
                    due = started + (offset - first) / self.speed - time.monotonic()
                    if due > 0 and self._stopping.wait(due):
                        return
                    try:
                        sock.sendto(data, self.target)
                    except OSError:
                        # e.g. ECONNREFUSED from the ICMP answer to an earlier
                        # datagram while the exporter restarts: StatsD loses it
                        continue
                    self.sent += 1
                self.passes += 1
                if self._stopping.wait(pause):
                    return


class _Child:
    """A program of the stack, in a process group of its own: the terminal's
    Ctrl-C reaches aerostat only, which then stops the children in order
    instead of racing them."""

    def __init__(self, name: str, argv: list[str], log_path: Path,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=self.env, cwd=self.cwd, process_group=0,
                )
        except OSError as error:
            raise AerostatError(f"cannot start {self.name}: {error.strerror}",
                                source=str(error.filename or self.argv[0])) from None

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join("  " + line for line in text.splitlines()[-lines:])

    def died(self, when: str) -> AerostatError:
        status = self.exit_status()
        how = (f"was killed by {signal.Signals(-status).name}" if status is not None
               and status < 0 else f"exited with status {status}")
        return AerostatError(
            f"{self.name} {how} {when}; the end of its log, "
            f"{self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            # the whole group: Grafana's backend plugins are its children
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class LocalStack:
    """Everything ``aerostat up`` runs. ``run()`` returns when the stack was
    stopped as asked (``request_stop``, e.g. from a signal handler), and
    raises AerostatError when it cannot start or a piece dies."""

    def __init__(self, options: UpOptions, report: Report) -> None:
        self.options = options
        self.report = report
        self.state_dir = options.state_dir.expanduser().resolve()
        self.stack_dir = self.state_dir / "stack"
        self.logs_dir = self.state_dir / "logs"
        self.server: Server | None = None
        self._server_thread: threading.Thread | None = None
        self.children: list[_Child] = []
        self.demo: CaptureReplay | None = None
        self.grafana_url: str | None = None
        # what the summary prints and the status page links to: name → URL
        self.links: dict[str, str] = {}
        # set from signal handlers: a plain assignment is all they may do
        # safely while the main thread could hold any lock
        self._stop_reason: str | None = None

    # -- urls ------------------------------------------------------------------------

    @property
    def aerostat_url(self) -> str:
        return f"http://{LOOPBACK}:{self.options.web_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.options.prometheus_port}"

    @property
    def prometheus_data(self) -> Path:
        """The demo's data apart from the user's: it starts afresh each
        time, its history backfilled into it (blocks for the last hour over
        an older run's samples of the same series would overlap)."""
        return self.state_dir / ("prometheus-demo" if self.options.demo else "prometheus")

    # -- the whole run ----------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        self._stop_reason = reason

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def run(self) -> int:
        try:
            self.start()
            if not self.stopping:
                self.report(self.summary())
            self.supervise()
        except _Interrupted:
            self.report(f"Stopping ({self._stop_reason}) before the stack was up…")
        finally:
            self.stop()
        return 0

    def start(self) -> None:
        prometheus = shutil.which("prometheus")
        if prometheus is None:
            raise AerostatError(PROMETHEUS_MISSING)
        grafana = find_grafana()
        self._check_ports(with_grafana=grafana is not None)
        if grafana is None:
            self.report(GRAFANA_MISSING)
        self._write_files()
        self._start_exporter(shutil.which("promtool"))
        self._start_prometheus(prometheus)
        if grafana is not None:
            self._start_grafana(grafana)
        self._find_links()
        if self.options.demo:
            self._start_demo()

    def supervise(self) -> None:
        """Waits for a stop; a piece that dies on its own ends the run."""
        while not self.stopping:
            for child in self.children:
                if child.exit_status() is not None:
                    raise child.died("while running")
            if self._server_thread is not None and not self._server_thread.is_alive():
                raise AerostatError("the exporter stopped unexpectedly; see the log above")
            time.sleep(0.2)
        self.report(f"Stopping ({self._stop_reason})…")

    def stop(self) -> None:
        """Stops what was started, last first; safe to call at any point."""
        if self.demo is not None:
            self.demo.stop()
            self.demo = None
        while self.children:
            child = self.children.pop()
            if child.exit_status() is None:
                child.stop()
                self.report(f"{child.name}: stopped")
        if self.server is not None:
            self.server.stop()
            if self._server_thread is not None:
                self._server_thread.join(STOP_SECONDS)
            self.server = None
            self.report("aerostat: stopped")

    # -- before anything starts ---------------------------------------------------------

    def _check_ports(self, *, with_grafana: bool) -> None:
        options = self.options
        wanted = [(options.statsd_port, "--statsd-port"), (options.web_port, "--web-port"),
                  (options.prometheus_port, "--prometheus-port")]
        if with_grafana:
            wanted.append((options.grafana_port, "--grafana-port"))
        taken: dict[int, str] = {}
        for port, flag in wanted:
            if port in taken:
                raise AerostatError(f"port {port} is also given to {taken[port]}", source=flag)
            taken[port] = flag
        # StatsD listens on every interface: Airflow may run in a container or
        # another machine; the web interfaces are for this machine only
        _check_free(options.statsd_port, "--statsd-port", "StatsD, UDP", "", socket.SOCK_DGRAM)
        _check_free(options.statsd_port, "--statsd-port", "StatsD, TCP", "")
        _check_free(options.web_port, "--web-port", "aerostat's /metrics")
        _check_free(options.prometheus_port, "--prometheus-port", "Prometheus", hint=(
            "Debian's prometheus package starts a system Prometheus on 9090: "
            "`sudo systemctl disable --now prometheus` stops it. "
            if options.prometheus_port == 9090 else ""))
        if with_grafana:
            _check_free(options.grafana_port, "--grafana-port", "Grafana", hint=(
                "a Grafana service may run there: `sudo systemctl stop grafana-server`. "
                if options.grafana_port == 3000 else ""))

    def stack_options(self) -> StackOptions:
        return StackOptions(
            aerostat_targets=(f"{LOOPBACK}:{self.options.web_port}",),
            scrape_interval=SCRAPE_INTERVAL,
            prometheus_url=self.prometheus_url,
            grafana_dashboards_dir=str(self.stack_dir / "grafana" / "dashboards"),
        )

    def _write_files(self) -> None:
        """Renders the stack anew each time: the ports may have changed."""
        write_stack(self.stack_dir, render_stack(self.stack_options()))
        try:
            # Grafana reads every provisioning directory and logs an error
            # for each one missing
            for kind in ("alerting", "plugins"):
                (self.stack_dir / "grafana" / "provisioning" / kind).mkdir(
                    parents=True, exist_ok=True)
            if self.options.demo:
                shutil.rmtree(self.prometheus_data, ignore_errors=True)
            self.prometheus_data.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AerostatError(f"cannot create: {error.strerror}",
                                source=str(error.filename)) from None

    # -- each piece --------------------------------------------------------------------

    def _wait_until_ready(self, name: str, url: str, seconds: float,
                          child: _Child | None = None) -> None:
        deadline = time.monotonic() + seconds
        while not answers(url):
            if self.stopping:
                raise _Interrupted
            if child is not None and child.exit_status() is not None:
                raise child.died("while starting")
            if time.monotonic() > deadline:
                where = f"; its log: {child.log_path}" if child is not None else ""
                raise AerostatError(f"{name} did not answer {url} within {seconds:.0f} s{where}")
            time.sleep(0.2)

    def _start_exporter(self, promtool: str | None) -> None:
        """In this process, on a thread: it binds its sockets before anything
        else starts, so a port in use stops ``up`` at once with aerostat's own
        message; no ``aerostat`` of another version on the PATH can stand in
        for this one; and there is one process fewer to supervise. It shares
        the interpreter with the supervisor and the demo replay, which sleep
        nearly all the time (a demo sends about 50 datagrams a second).
        The demo's history is fed in before it starts serving."""
        from aerostat.airflow import airflow_built_in

        options = self.options
        self.report("aerostat: starting…")
        server = Server(ServerOptions(
            listen_udp=f":{options.statsd_port}", listen_tcp=f":{options.statsd_port}",
            web_listen_address=f"{LOOPBACK}:{options.web_port}", built_in=airflow_built_in(),
            # its one scraper is this stack's Prometheus: twice its interval
            # and a little is enough to learn it after the start
            new_series_hold=2 * SCRAPE_SECONDS + 3,
        ))
        if options.demo:
            self.demo = CaptureReplay(bundled_capture(), (LOOPBACK, options.statsd_port),
                                      options.demo_speed)
            self._backfill(server, self.demo, promtool)
        server.start()
        self.server = server
        self._server_thread = threading.Thread(
            target=server.serve_forever, name="aerostat-exporter", daemon=True)
        self._server_thread.start()
        self._wait_until_ready("aerostat", f"{self.aerostat_url}/-/ready",
                               EXPORTER_START_SECONDS)
        self.report(f"aerostat: ready at {self.aerostat_url}/metrics "
                    f"(StatsD on port {options.statsd_port}, UDP and TCP)")

    def _backfill(self, server: Server, replay: CaptureReplay, promtool: str | None) -> None:
        """The hour before now, as the live replay would have sent it, fed
        through the exporter's own pipeline and written into Prometheus's
        empty data directory as blocks, with the job and instance labels
        the scrape adds. The store then holds what the live replay carries
        on from: Prometheus sees no counter reset at the seam."""
        if promtool is None:
            self.report("demo: no `promtool` on the PATH (it comes with Prometheus), so no "
                        "history: the graphs start now")
            return
        self.report("demo: backfilling the last hour into Prometheus…")
        began = time.monotonic()
        timeline = Timeline(replay.datagrams, end=began, step=SCRAPE_SECONDS)
        path = self.state_dir / "demo-history.om"
        try:
            with open(path, "w", encoding="utf-8") as out:
                samples = history_openmetrics(
                    server.pipeline, timeline, replay.address, time.time() - began,
                    {"job": JOB, "instance": f"{LOOPBACK}:{self.options.web_port}"}, out)
            write_blocks(promtool, path, self.prometheus_data)
        except OSError as error:
            raise AerostatError(f"cannot write: {error.strerror}",
                                source=str(error.filename)) from None
        finally:
            path.unlink(missing_ok=True)
        self.report(f"demo: backfilled {timeline.end - timeline.start:.0f} s of history, "
                    f"{samples:,} samples, in {time.monotonic() - began:.1f} s")

    def _start_prometheus(self, binary: str) -> None:
        self.report("Prometheus: starting…")
        child = _Child("Prometheus", [
            binary,
            f"--config.file={self.stack_dir / 'prometheus' / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.prometheus_data}",
            f"--web.listen-address={LOOPBACK}:{self.options.prometheus_port}",
        ], self.logs_dir / "prometheus.log")
        child.start()
        self.children.append(child)
        self._wait_until_ready("Prometheus", f"{self.prometheus_url}/-/ready",
                               PROMETHEUS_START_SECONDS, child)
        self.report(f"Prometheus: ready at {self.prometheus_url}")

    def _start_grafana(self, command: list[str]) -> None:
        self.report("Grafana: starting…")
        home = grafana_home(command[0])
        grafana = self.state_dir / "grafana"
        dashboards = self.stack_dir / "grafana" / "dashboards"
        # Grafana takes any setting of its ini file from GF_<SECTION>_<KEY>
        settings = {
            "GF_PATHS_DATA": grafana / "data",
            "GF_PATHS_LOGS": grafana / "logs",
            "GF_PATHS_PLUGINS": grafana / "plugins",
            "GF_PATHS_PROVISIONING": self.stack_dir / "grafana" / "provisioning",
            "GF_SERVER_HTTP_ADDR": LOOPBACK,
            "GF_SERVER_HTTP_PORT": self.options.grafana_port,
            # a local stack for one person: the dashboards open without a
            # login (read-only); admin/admin still logs in to edit
            "GF_AUTH_ANONYMOUS_ENABLED": "true",
            "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": dashboards / "airflow-overview.json",
            # nothing leaves this machine on its own
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
            "GF_NEWS_NEWS_FEED_ENABLED": "false",
        }
        try:
            for directory in ("data", "logs", "plugins"):
                (grafana / directory).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise AerostatError(f"cannot create: {error.strerror}",
                                source=str(error.filename)) from None
        env = {**os.environ, **{key: str(value) for key, value in settings.items()}}
        argv = [*command, *([f"--homepath={home}"] if home is not None else [])]
        child = _Child("Grafana", argv, self.logs_dir / "grafana.log", env=env, cwd=home)
        child.start()
        self.children.append(child)
        url = f"http://{LOOPBACK}:{self.options.grafana_port}"
        self._wait_until_ready("Grafana", f"{url}/api/health", GRAFANA_START_SECONDS, child)
        self.grafana_url = url
        self.report(f"Grafana: ready at {url}")

    def _start_demo(self) -> None:
        speed = self.options.demo_speed
        assert self.demo is not None
        self.demo.start()
        pace = ("at the pace it was recorded" if speed == 1
                else f"{speed:g} times as fast as recorded")
        self.report(f"demo: replaying a capture of a real Airflow 3.3.2 into StatsD port "
                    f"{self.options.statsd_port}, in a loop, {pace}")

    # -- what the user needs next ----------------------------------------------------------

    def _prometheus_page(self, page: str, query: str = "") -> str:
        """The address of one of Prometheus's UI pages as the running one
        serves it: Debian's package (2.42) has no React UI, only the classic
        pages under /classic/ (/alerts answers 404 there, /graph a
        redirect to a 404)."""
        for path in (f"/{page}", f"/classic/{page}"):
            if answers(f"{self.prometheus_url}{path}"):
                return f"{self.prometheus_url}{path}{query}"
        return f"{self.prometheus_url}/{page}{query}"

    def _find_links(self) -> None:
        """The pages the summary prints, each probed on the running
        Prometheus; the status page links to Prometheus and Grafana."""
        graph_query = ("?" + urlencode({"g0.expr": DEMO_QUERY, "g0.tab": "0",
                                        "g0.range_input": "1h"})
                       if self.options.demo else "")
        self.links = {
            "aerostat status": f"{self.aerostat_url}/",
            "aerostat metrics": f"{self.aerostat_url}/metrics",
            "Prometheus": self._prometheus_page("graph", graph_query),
            "alerts": self._prometheus_page("alerts"),
            "targets": self._prometheus_page("targets"),
        }
        if self.grafana_url is not None:
            self.links["Grafana"] = self.grafana_url
        if self.server is not None:
            self.server.set_links({name: url for name, url in self.links.items()
                                   if name in ("Prometheus", "Grafana")})

    def summary(self) -> str:
        options = self.options
        links = self.links
        rows = [
            ("StatsD", f"port {options.statsd_port}, UDP and TCP, on every interface"),
            ("aerostat", f"{links['aerostat status']} (status), "
                         f"{links['aerostat metrics']}"),
            ("Prometheus", links["Prometheus"] + (" (the README's query over the last hour)"
                                                  if options.demo else "")),
            ("", f"alerts: {links['alerts']}"),
            ("", f"targets: {links['targets']}"),
        ]
        if "Grafana" in links:
            rows.append(("Grafana", f"{links['Grafana']} (dashboards in the Airflow folder; "
                         "admin/admin to edit)"))
        rows.append(("state", f"{self.state_dir} (data, logs, the rendered configuration)"))
        lines = ["", "The stack is up; Ctrl-C stops it.",
                 *(f"  {name:<11} {what}" for name, what in rows), "",
                 "Point Airflow at it in airflow.cfg (statsd_host: this machine's address "
                 "when Airflow runs elsewhere, e.g. in a container):", "",
                 *(f"  {line}" for line in airflow_settings(LOOPBACK, options.statsd_port)), ""]
        return "\n".join(lines)


def airflow_settings(host: str, port: int) -> list[str]:
    """The lines of airflow.cfg that send Airflow's metrics to aerostat."""
    return ["[metrics]", "statsd_on = True", f"statsd_host = {host}",
            f"statsd_port = {port}", "statsd_prefix = airflow"]


def _check_free(port: int, flag: str, what: str, host: str = LOOPBACK,
                kind: socket.SocketKind = socket.SOCK_STREAM, hint: str = "") -> None:
    """Raises AerostatError naming ``flag`` when ``port`` cannot be listened on."""
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            # what the servers do too: a port that the previous run left in
            # TIME_WAIT is free to listen on again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise AerostatError(
                f"port {port} ({what}) is not free: {error.strerror}. {hint}"
                f"Choose another with {flag} PORT.", source=flag) from None
