"""The scale-out path on a real store: a real Prometheus scrapes a real
aerostat fed with the real Airflow capture and remote-writes everything
(scraped and recorded series) to a real VictoriaMetrics (the single-node
binary of Debian's ``victoria-metrics`` package); then every dashboard
query is asked of both at the same evaluation time, and both must answer
the same.

"The same" is exact where PromQL and MetricsQL mean the same thing: the
same series (label sets) for every query, and the same values, within float
tolerance, for every query whose value does not depend on how a range
function treats the edges of its window. MetricsQL's rate(), increase(),
irate(), deriv() and friends read the last sample before the window too
and do not extrapolate to the window's edges (Prometheus's do), so for
queries that use them only the series are compared (VALUE_DIFFERS lists
the functions); a query whose series differ is excluded only if listed in
EXCLUDED with its reason.

Time is compressed as in test_prometheus_eval (windows divided by 30,
floor 4 s; scrapes every second)."""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from aerostat.airflow import airflow_built_in
from aerostat.stack import StackOptions, all_queries, render_stack, write_stack
from aerostat.stack.up import CaptureReplay, bundled_capture
from bridge import running_bridge
from stack.api_queries import reads_the_api
from stack.prometheus_process import (
    free_port,
    http_get,
    running_prometheus,
    supervised,
)
from stack.test_prometheus_eval import RULES, TEST_VARIABLES, compressed

DASHBOARDS = "grafana/dashboards/"
REPLAY_SPEED = 20
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# functions whose result MetricsQL computes differently from PromQL on the
# same samples: no extrapolation to the window's edges, the sample before
# the window counted (rate, increase, delta, ...), a fitted line over other
# points (deriv, predict_linear), subqueries aligned to other instants
VALUE_DIFFERS = ("rate", "irate", "increase", "delta", "idelta", "deriv",
                 "predict_linear", "resets", "changes")
_FUNCTION = re.compile(r"\b(" + "|".join(VALUE_DIFFERS) + r")\s*\(")
_SUBQUERY = re.compile(r"\[\d+[smhd]:\d*[smhd]?\]")

# query origin → why its series differ between Prometheus and VictoriaMetrics
EXCLUDED = {
    "grafana/dashboards/airflow-dags-tasks.json: panel 13 'Failing tasks over the time "
    "range' query A":
        "increase(...) > 0: MetricsQL's increase() counts a counter born inside the window "
        "from 0 (its first sample is the increase), Prometheus's needs two samples, so tasks "
        "that failed once within the window pass the filter on VictoriaMetrics only",
}

# relative tolerance: VictoriaMetrics keeps 12 to 13 significant digits
TOLERANCE = 1e-6


def _values_comparable(expr: str) -> bool:
    return not _FUNCTION.search(expr) and not _SUBQUERY.search(expr)


@dataclass
class Store:
    """A Prometheus-compatible query API: Prometheus's or VictoriaMetrics's."""

    url: str

    def query(self, expr: str, at: float) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/api/v1/query",
            data=urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with _LOCAL.open(request, timeout=10) as response:
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:
            answer = {"status": "error", "error": error.read().decode(errors="replace")}
        return answer



def _own_metric(url: str, name: str) -> float:
    """The sum of Prometheus's own ``prometheus_remote_storage_<name>``
    (it does not scrape itself here): read from its /metrics."""
    status, body = http_get(f"{url}/metrics")
    assert status == 200, status
    found = re.findall(rf"^prometheus_remote_storage_{name}(?:{{[^}}]*}})? (\S+)$",
                       body.decode(), re.MULTILINE)
    return sum(float(value) for value in found)


Series = dict[tuple[tuple[str, str], ...], float]


def _series(answer: dict[str, Any], nan: bool = False) -> Series:
    """Labels → value of an instant vector answer (a scalar as one series
    without labels), without NaN values unless ``nan``: MetricsQL leaves
    series whose value is NaN out of its answers (e.g. histogram_quantile()
    over buckets that did not grow), PromQL returns them, and Grafana draws
    neither."""
    data = answer["data"]
    if data["resultType"] == "scalar":
        found = {(): float(data["result"][1])}
    else:
        found = {tuple(sorted(entry["metric"].items())): float(entry["value"][1])
                 for entry in data["result"]}
    return {labels: value for labels, value in found.items() if nan or not math.isnan(value)}


@contextlib.contextmanager
def running_victoria_metrics(workdir: Path) -> Iterator[Store]:
    binary = shutil.which("victoria-metrics")
    assert binary, ("victoria-metrics is missing: ./run tests installs it "
                    "(Debian package victoria-metrics)")
    port = free_port()
    log = workdir / "victoria-metrics.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [binary, f"-storageDataPath={workdir / 'vm-data'}", "-retentionPeriod=1d",
             f"-httpListenAddr=127.0.0.1:{port}",
             # answer with the newest samples (its default hides the last 30 s),
             # never from a cache filled before the last samples arrived, and
             # look back as far as Prometheus does (5 minutes) for the last sample
             "-search.latencyOffset=0s", "-search.disableCache", "-search.maxLookback=5m"],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        )
    store = Store(f"http://127.0.0.1:{port}")
    with supervised(process, f"{store.url}/health", "victoria-metrics",
                    lambda: log.read_text()[-3000:]):
        yield store


def _dashboard_queries() -> list[tuple[str, str]]:
    """Every dashboard panel and variable query in compressed time, but
    those of the REST-API source (nothing feeds it here)."""
    files = {path: compressed(text) for path, text in render_stack().items()}
    return [(query.origin, query.expr) for query in all_queries(files, TEST_VARIABLES)
            if query.origin.startswith(DASHBOARDS) and not reads_the_api(query.expr)]


@dataclass
class Answers:
    prometheus: dict[str, dict[str, Any]]
    victoria: dict[str, dict[str, Any]]
    queries: list[tuple[str, str]]
    written: int  # samples Prometheus sent to VictoriaMetrics


@pytest.fixture(scope="module")
def asked(tmp_path_factory: pytest.TempPathFactory) -> Answers:
    work = tmp_path_factory.mktemp("remote-write")
    with contextlib.ExitStack() as stack:
        victoria = stack.enter_context(running_victoria_metrics(work))
        bridge = stack.enter_context(running_bridge(built_in=airflow_built_in()))
        files = render_stack(StackOptions(
            aerostat_targets=(f"127.0.0.1:{bridge.server.http_port}",), scrape_interval="1s"))
        write_stack(work / "stack", {path: compressed(text) if path.startswith(RULES) else text
                                     for path, text in files.items()})
        config_file = work / "stack" / "prometheus" / "prometheus.yml"
        config = yaml.safe_load(config_file.read_text())
        # as the platform chart's prometheus.remoteWrite writes it; sent at
        # least every second so that the test need not wait for batches
        config["remote_write"] = [{"url": f"{victoria.url}/api/v1/write",
                                   "queue_config": {"batch_send_deadline": "1s"}}]
        config_file.write_text(yaml.safe_dump(config))
        prometheus = stack.enter_context(running_prometheus(config_file, work))
        local = Store(prometheus.url)
        replay = CaptureReplay(bundled_capture(), bridge.udp_address, REPLAY_SPEED)
        replay.start()
        stack.callback(replay.stop)
        deadline = time.monotonic() + 60
        while replay.passes < 1:
            assert time.monotonic() < deadline, "no pass over the capture within 60 s"
            time.sleep(0.2)
        time.sleep(3)  # scrapes and rule evaluations of the pass's last datagrams
        # one instant, a little in the past, asked of both once Prometheus
        # has sent VictoriaMetrics every sample up to it
        at = time.time() - 2
        deadline = time.monotonic() + 30
        while _own_metric(prometheus.url, "queue_highest_sent_timestamp_seconds") < at + 2:
            assert time.monotonic() < deadline, (
                f"remote write did not catch up within 30 s:\n{prometheus.log_tail()}")
            time.sleep(0.2)
        time.sleep(2)  # VictoriaMetrics makes what it received searchable within a second
        queries = _dashboard_queries()
        return Answers(
            {origin: local.query(expr, at) for origin, expr in queries},
            {origin: victoria.query(expr, at) for origin, expr in queries},
            queries,
            int(_own_metric(prometheus.url, "samples_total")))


def test_prometheus_wrote_to_victoria_metrics(asked: Answers) -> None:
    assert asked.written > 1000, asked.written


def test_every_dashboard_query_is_valid_on_both(asked: Answers) -> None:
    assert len(asked.queries) >= 50, len(asked.queries)
    failed = [f"\n{origin}: Prometheus {asked.prometheus[origin].get('error')}, "
              f"VictoriaMetrics {asked.victoria[origin].get('error')}"
              for origin, _ in asked.queries
              if asked.prometheus[origin].get("status") != "success"
              or asked.victoria[origin].get("status") != "success"]
    assert not failed, "".join(failed)


def _differences(asked: Answers) -> tuple[list[str], list[str]]:
    series_differ, values_differ = [], []
    for origin, expr in asked.queries:
        if origin in EXCLUDED:
            continue
        ours, theirs = _series(asked.prometheus[origin]), _series(asked.victoria[origin])
        if not _values_comparable(expr):
            # MetricsQL's rate() also counts the step from the sample before
            # the window, so a series whose buckets did not grow within the
            # window (NaN quantile in Prometheus) may have a value there:
            # every series Prometheus gives a value VictoriaMetrics has, and
            # VictoriaMetrics has none that Prometheus does not know
            known = _series(asked.prometheus[origin], nan=True)
            if ours.keys() <= theirs.keys() <= known.keys():
                continue
        if ours.keys() != theirs.keys():
            series_differ.append(
                f"\n{origin}:\n  {expr}\n  only Prometheus: {sorted(ours.keys() - theirs.keys())}"
                f"\n  only VictoriaMetrics: {sorted(theirs.keys() - ours.keys())}")
        elif _values_comparable(expr):
            wrong = {labels: (ours[labels], theirs[labels]) for labels in ours
                     if not math.isclose(ours[labels], theirs[labels], rel_tol=TOLERANCE,
                                         abs_tol=1e-9)}
            if wrong:
                values_differ.append(f"\n{origin}:\n  {expr}\n  {wrong}")
    return series_differ, values_differ


def test_the_dashboards_read_the_same_series_from_victoria_metrics(asked: Answers) -> None:
    series_differ, _ = _differences(asked)
    filled = sum(1 for origin, _ in asked.queries if _series(asked.prometheus[origin]))
    assert filled >= 40, f"only {filled} dashboard queries returned data"
    assert not series_differ, "".join(series_differ)


def test_the_dashboards_read_the_same_values_from_victoria_metrics(asked: Answers) -> None:
    compared = [origin for origin, expr in asked.queries
                if _values_comparable(expr) and _series(asked.prometheus[origin])]
    assert len(compared) >= 10, f"only {len(compared)} queries with values to compare"
    _, values_differ = _differences(asked)
    assert not values_differ, "".join(values_differ)


def test_the_exclusions_name_real_queries() -> None:
    origins = {origin for origin, _ in _dashboard_queries()}
    assert EXCLUDED
    assert not EXCLUDED.keys() - origins, EXCLUDED.keys() - origins
