"""The REST-API source: a thread per Airflow deployment polls its API
(never on the event loop's thread, which reads StatsD), and the event loop
takes each poll's result on its next tick (``ApiSource``, a Source like the
StatsD sockets): the deployment's state replaces the last one whole, and
task outcomes StatsD never carried top up ``airflow_ti_finish_total``.

A poll is cheap after the first: the health report, pools, import errors,
the runs queued or running, and the runs and task instances that ended
since the last poll (cursors on their end dates, paged), plus the DAG list
every few minutes. The first poll also reads each DAG's latest success
(those of DAGs that run often from the deployment's latest runs, the
others one by one), within a larger budget."""

from __future__ import annotations

import bisect
import logging
import queue
import random
import selectors
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aerostat.airflow.api.client import ADVICE, PAGE_LIMIT, ApiClient, ApiError, Cost, Target
from aerostat.airflow.api.collector import DURATION_BUCKETS, ApiCollector
from aerostat.airflow.api.state import (
    ACTIVE_RUN_STATES,
    Malformed,
    Outcome,
    Snapshot,
    TryLedger,
    count_active_runs,
    count_import_errors,
    fold_finished_runs,
    items_of,
    read_dags,
    read_health,
    read_pools,
    timestamp,
)
from aerostat.errors import AerostatError
from aerostat.events import Event, Kind
from aerostat.frontend import Extra, TopUp

log = logging.getLogger("aerostat")

POLL_INTERVAL = 30.0
# a task instance is counted from the API once it ended this long ago, so
# that its worker's ti.finish (sent after the state is saved, and after any
# on-success callback) is in and the two are not counted twice
SETTLE_SECONDS = 60.0
# cursors step back this far, for clocks and rounding; the ledger dedupes
CURSOR_OVERLAP = 5.0
DAG_LIST_EVERY = 300.0
# requests one poll may make; what is left over waits for the next poll
REQUEST_BUDGET = 40
# pages of the deployment's latest finished runs read at the first poll
RECENT_PAGES = 10
# the first poll may ask this many times the budget, one request per DAG
# the pages did not cover: a deployment of 1,000 DAGs is known after it
FIRST_POLL_BUDGET_FACTOR = 25
# a failing API is asked again after 5 s, 10 s, 20 s ... up to this long
# (or the poll interval, if longer)
MAX_BACKOFF = 60.0
TI_FINISH = "airflow.ti.finish"


@dataclass
class PollResult:
    snapshot: Snapshot
    outcomes: Counter[Outcome]
    cost: Cost = field(default_factory=Cost)


@dataclass
class PollFailure:
    reason: str
    detail: str
    cost: Cost = field(default_factory=Cost)


@dataclass
class Cursors:
    """What the poller has read so far; advanced only by a poll that
    succeeded whole."""

    tries_until: float  # task instances ended before this are counted
    runs_until: float
    dags_read: float = float("-inf")
    recent_read: bool = False  # the deployment's latest finished runs, at the first poll
    bootstrapped: set[str] = field(default_factory=set)  # DAGs whose history was read


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class Poller:
    """One deployment's polls (in the poller thread only). ``poll`` raises
    ApiError or Malformed; the state it read is then dropped whole."""

    def __init__(self, client: ApiClient, started: float, settle: float = SETTLE_SECONDS,
                 budget: int = REQUEST_BUDGET) -> None:
        self.client = client
        self.settle = settle
        self.budget = budget
        self.snapshot = Snapshot()
        self.ledger = TryLedger()
        # task instances that ended once aerostat was counting StatsD
        self.cursors = Cursors(tries_until=started, runs_until=started)
        self._spent = 0

    def poll(self, now: float) -> PollResult:
        self._spent = 0
        cursors = replace(self.cursors, bootstrapped=set(self.cursors.bootstrapped))
        version = self.client.api_version()
        health = read_health(self._get("/monitor/health" if version == 2 else "/health"))
        dags = self.snapshot.dags
        if now - cursors.dags_read >= DAG_LIST_EVERY:
            stale = {"exclude_stale": "false"} if version == 2 else {"only_active": "false"}
            dags = read_dags(self._all("/dags", "dags", **stale))
            cursors.dags_read = now
        pools = read_pools(self._all("/pools", "pools"))
        import_errors = count_import_errors(self._all("/importErrors", "import_errors"))
        active = count_active_runs(self._all(
            "/dags/~/dagRuns", "dag_runs", state=list(ACTIVE_RUN_STATES)))
        latest, last_success = self.snapshot.latest_run, self.snapshot.last_success
        ended = list(self._all(
            "/dags/~/dagRuns", "dag_runs", order_by="end_date",
            end_date_gte=_iso(cursors.runs_until - CURSOR_OVERLAP), end_date_lte=_iso(now)))
        latest, last_success = fold_finished_runs(latest, last_success, ended)
        cursors.runs_until = now
        first = not cursors.recent_read
        if first:
            # the latest finished runs of the whole deployment first: a few
            # pages cover every DAG that runs often; the others are asked
            # one by one below
            recent = [item for page in self._pages(
                "/dags/~/dagRuns", "dag_runs",
                {"state": ["success", "failed"], "order_by": "-end_date"},
                max_pages=RECENT_PAGES) for item in page]
            latest, last_success = fold_finished_runs(latest, last_success, recent)
            cursors.bootstrapped |= set(latest) & set(last_success)
            cursors.recent_read = True
        # then each DAG the pages did not cover: its latest finished run,
        # and if that failed, its latest success (one request, or two)
        budget = self.budget * (FIRST_POLL_BUDGET_FACTOR if first else 1)
        for dag_id in sorted(set(dags) - cursors.bootstrapped):
            if self._spent + 2 > budget:
                break
            runs = f"/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns"
            for states in (["success", "failed"], ["success"]):
                page = self._get(runs, state=states, order_by="-end_date", limit=1)
                latest, last_success = fold_finished_runs(
                    latest, last_success, items_of(page, "dag_runs"))
                if dag_id not in latest or dag_id in last_success:
                    break
            cursors.bootstrapped.add(dag_id)
        outcomes: Counter[Outcome] = Counter()
        cutoff = now - self.settle
        if cutoff > cursors.tries_until:
            tries, complete, last_end = self._ended_tries(cursors.tries_until, cutoff)
            outcomes = self.ledger.count(tries)
            cursors.tries_until = cutoff if complete else last_end
        self.snapshot = Snapshot(now, dags, latest, last_success, active, import_errors,
                                 pools, health)
        self.cursors = cursors
        return PollResult(self.snapshot, outcomes)

    def _ended_tries(self, since: float, until: float
                     ) -> tuple[list[Mapping[str, Any]], bool, float]:
        """Task instances whose current try ended in [since, until], as far
        as the budget reaches: (them, whether all were read, the last end)."""
        found: list[Mapping[str, Any]] = []
        query = {"end_date_gte": _iso(since - CURSOR_OVERLAP), "end_date_lte": _iso(until),
                 "order_by": "end_date"}
        for page in self._pages("/dags/~/dagRuns/~/taskInstances", "task_instances", query):
            found.extend(page)
            if self._spent >= self.budget and len(page) == PAGE_LIMIT:
                ends = (timestamp(item.get("end_date")) for item in found)
                last = max((end for end in ends if end is not None), default=since)
                return found, False, max(since, last)
        return found, True, until

    def _get(self, path: str, **query: object) -> Any:
        self._spent += 1
        return self.client.get(path, **query)

    def _all(self, path: str, key: str, **query: object) -> Iterator[Mapping[str, Any]]:
        for page in self._pages(path, key, query):
            yield from page

    def _pages(self, path: str, key: str, query: Mapping[str, object], max_pages: int = 0
               ) -> Iterator[list[Mapping[str, Any]]]:
        offset = pages = 0
        while not max_pages or pages < max_pages:
            pages += 1
            page = self._get(path, **query, limit=PAGE_LIMIT, offset=offset)
            items = items_of(page, key)
            yield items
            offset += len(items)
            total = page.get("total_entries")
            if len(items) < PAGE_LIMIT or (isinstance(total, int) and offset >= total):
                return


class ApiSource:
    """A Source for the server's event loop: starts its poller thread at
    ``register``, applies results at ``tick``. What the collector shows is
    read from here, from the HTTP threads (plain values, swapped whole)."""

    def __init__(self, target: Target, top_up: TopUp, interval: float = POLL_INTERVAL,
                 settle: float = SETTLE_SECONDS, started: float | None = None) -> None:
        self.target = target
        self.deployment = target.deployment
        self.top_up = top_up
        self.interval = interval
        self.client = ApiClient(target)
        self.poller = Poller(self.client, time.time() if started is None else started, settle)
        self._results: queue.SimpleQueue[PollResult | PollFailure] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"airflow-api-{self.deployment}",
                                        daemon=True)
        # shown by the collector
        self.snapshot = Snapshot()
        self.up = 0
        self.polls = 0
        self.last_success = 0.0
        self.errors: Counter[str] = Counter()
        self.requests = 0
        self.bytes = 0
        self.duration_buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.added_outcomes = 0
        # Airflow's count of each outcome since the start; what of it was
        # handed to the pipeline; the value the series showed then; and,
        # for a series let go (TTL), the count it had when it was made again
        self._api_counts: Counter[Outcome] = Counter()
        self._reached: dict[Outcome, float] = {}
        self._shown: dict[Outcome, float] = {}
        self._offsets: dict[Outcome, float] = {}

    # -- the event loop's side ------------------------------------------------

    def register(self, selector: selectors.BaseSelector) -> None:
        self._thread.start()

    def tick(self, now: float) -> None:
        while True:
            try:
                result = self._results.get_nowait()
            except queue.Empty:
                return
            self._take(result, now)

    def drain(self) -> None:
        self.tick(time.monotonic())

    def close(self) -> None:
        # a request under way ends by its own timeout; the thread is a
        # daemon and polls no more after it
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _take(self, result: PollResult | PollFailure, now: float) -> None:
        cost = result.cost
        self.requests += cost.requests
        self.bytes += cost.bytes
        for seconds in cost.seconds:
            self.duration_buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
            self.duration_sum += seconds
        if isinstance(result, PollFailure):
            self.up = 0
            self.errors[result.reason] += 1
            return
        self.up = 1
        self.polls += 1
        self.snapshot = result.snapshot
        self.last_success = result.snapshot.taken
        self._api_counts.update(result.outcomes)
        if result.outcomes:
            self._top_up(now)

    def _top_up(self, now: float) -> None:
        """Brings every ti.finish series of this deployment up to Airflow's
        own count (see Pipeline.top_up), through the pipeline's seam for
        totals: the series is the one StatsD's tagged name maps to."""
        for outcome, count in self._api_counts.items():
            target = count - self._offsets.get(outcome, 0.0)
            if target <= self._reached.get(outcome, 0.0):
                continue  # nothing new from the API for this series
            dag_id, task_id, state = outcome
            event = Event(Kind.COUNTER, TI_FINISH, target, {
                "deployment": self.deployment, "dag_id": dag_id, "task_id": task_id,
                "state": state})
            found = self.top_up(event, now, self._shown.get(outcome, 0.0))
            if found is None:
                continue
            before, after = found
            if after < self._shown.get(outcome, 0.0):
                # the series was let go (TTL) and made again since, and was
                # left alone: it goes on from what Airflow counts from now
                self._offsets[outcome] = count - before
                target = before
            self.added_outcomes += int(after - before)
            self._shown[outcome] = after
            self._reached[outcome] = target

    # -- the poller thread ------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        state = "ok"
        while not self._stop.is_set():
            try:
                result: PollResult | PollFailure = self.poller.poll(time.time())
            except ApiError as error:
                result = PollFailure(error.reason, error.detail)
            except Malformed as error:
                result = PollFailure("malformed", str(error))
            except AerostatError as error:  # a credentials file gone
                result = PollFailure("unauthorized", f"{error.source}: {error.message}")
            except Exception as error:  # the thread must outlive any answer
                log.exception("Airflow API poll failed unexpectedly",
                              extra={"fields": {"deployment": self.deployment}})
                result = PollFailure("malformed", type(error).__name__)
            result.cost = self.client.take_cost()
            self._results.put(result)
            if isinstance(result, PollFailure):
                failures += 1
                if state != result.reason:
                    log.warning("Airflow API unavailable, keeping its last state", extra={
                        "fields": {"deployment": self.deployment, "reason": result.reason,
                                   "detail": result.detail, "what_to_do": ADVICE.get(
                                       result.reason, "")}})
                    state = result.reason
                wait = min(max(MAX_BACKOFF, self.interval),
                           min(5.0, self.interval) * 2 ** (failures - 1))
            else:
                if state != "ok":
                    log.info("Airflow API answering again", extra={"fields": {
                        "deployment": self.deployment, "failed_polls": failures}})
                state, failures = "ok", 0
                wait = self.interval
            self._stop.wait(wait * random.uniform(0.9, 1.1))


def api_sources(targets: tuple[Target, ...], interval: float = POLL_INTERVAL,
                settle: float = SETTLE_SECONDS) -> Callable[[TopUp], Extra]:
    """What the built-in Airflow mapping adds to a server: one source per
    deployment's API, and the collector that shows what they read."""

    def make(top_up: TopUp) -> Extra:
        sources = [ApiSource(target, top_up, interval, settle) for target in targets]
        return Extra(list(sources), ApiCollector(sources))

    return make
