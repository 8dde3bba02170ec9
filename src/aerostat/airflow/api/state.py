"""What a poll of Airflow's REST API reads, as data: the pages turned into a
``Snapshot`` of the deployment's state now, and the task-instance tries that
ended turned into outcomes counted once (``TryLedger``). Pure: no I/O and no
clock; the poller (source.py) fetches the pages and says what time it is.

Airflow 3 (API v2) and Airflow 2 (API v1) name a few fields differently;
both are read here, so that nothing downstream knows the version."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# the states a try of a task ends in that Airflow's worker reports as
# ``ti.finish.<dag>.<task>.<state>``: a deferral or a reschedule ends a
# worker's run too, but the task instance goes on and the API keeps no
# record of it, so those stay StatsD's alone
FINISHED_TRY_STATES = frozenset({"success", "failed", "skipped", "up_for_retry"})
# DAG runs counted "now", by state
ACTIVE_RUN_STATES = ("queued", "running")
FINISHED_RUN_STATES = frozenset({"success", "failed"})
# the slots of a pool, by the API's field
POOL_SLOT_FIELDS = {
    "slots": "total", "open_slots": "open", "occupied_slots": "occupied",
    "running_slots": "running", "queued_slots": "queued",
    "scheduled_slots": "scheduled", "deferred_slots": "deferred",
}
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


class Malformed(ValueError):
    """A page that is not what the API documents: the poll is counted as
    failed and the last good state kept."""


def timestamp(text: object) -> float | None:
    """Unix seconds of an API timestamp (ISO 8601, ``Z`` or an offset);
    None for null."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise Malformed(f"not a timestamp: {text!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"not a timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise Malformed(f"timestamp without a time zone: {text!r}")
    return moment.timestamp()


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(f"{key!r} missing or not text in {_short(item)}")
    return value


def _number(item: Mapping[str, Any], key: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"{key!r} missing or not a number in {_short(item)}")
    return float(value)


def _short(item: object) -> str:
    text = repr(item)
    return text if len(text) <= 120 else text[:117] + "..."


def items_of(page: object, key: str) -> list[Mapping[str, Any]]:
    """The items of one page of a collection, and nothing that is not one."""
    if not isinstance(page, Mapping) or not isinstance(page.get(key), list):
        raise Malformed(f"a page without a {key!r} list: {_short(page)}")
    found: list[Mapping[str, Any]] = page[key]
    if not all(isinstance(item, Mapping) for item in found):
        raise Malformed(f"{key!r} holds something that is not an object")
    return found


@dataclass(frozen=True, slots=True)
class Dag:
    dag_id: str
    paused: bool
    stale: bool
    # when the scheduler will create the next run (Unix seconds), and the
    # length of that run's data interval: the DAG's period where it has one
    next_run: float | None
    interval: float | None


def read_dags(items: Iterable[Mapping[str, Any]]) -> dict[str, Dag]:
    dags = {}
    for item in items:
        dag_id = _text(item, "dag_id")
        # v1 (Airflow 2) says is_active where v2 says is_stale
        stale = item.get("is_stale")
        if stale is None:
            stale = not item.get("is_active", True)
        next_run = timestamp(item.get("next_dagrun_run_after",
                                      item.get("next_dagrun_create_after")))
        start = timestamp(item.get("next_dagrun_data_interval_start"))
        end = timestamp(item.get("next_dagrun_data_interval_end"))
        interval = end - start if start is not None and end is not None and end > start else None
        dags[dag_id] = Dag(dag_id, bool(item.get("is_paused")), bool(stale), next_run, interval)
    return dags


@dataclass(frozen=True, slots=True)
class FinishedRun:
    state: str
    end: float


def fold_finished_runs(
    latest: Mapping[str, FinishedRun],
    last_success: Mapping[str, float],
    items: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, FinishedRun], dict[str, float]]:
    """The latest finished run and the end of the latest success per DAG,
    after these runs: a run counts where it ended later than what is known,
    so pages may come in any order and repeat."""
    latest, last_success = dict(latest), dict(last_success)
    for item in items:
        state = item.get("state")
        end = timestamp(item.get("end_date"))
        if state not in FINISHED_RUN_STATES or end is None:
            continue  # still running: the API lists it under an end-date bound anyway
        dag_id = _text(item, "dag_id")
        known = latest.get(dag_id)
        if known is None or end >= known.end:
            latest[dag_id] = FinishedRun(str(state), end)
        if state == "success" and end > last_success.get(dag_id, float("-inf")):
            last_success[dag_id] = end
    return latest, last_success


def count_active_runs(items: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """DAG runs queued and running now, by (dag_id, state)."""
    counts: Counter[tuple[str, str]] = Counter()
    for item in items:
        state = item.get("state")
        if state in ACTIVE_RUN_STATES:
            counts[(_text(item, "dag_id"), str(state))] += 1
    return counts


def count_import_errors(items: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """Import errors by (bundle, file); v1 has no bundles (empty)."""
    counts: Counter[tuple[str, str]] = Counter()
    for item in items:
        counts[(str(item.get("bundle_name") or ""), _text(item, "filename"))] += 1
    return counts


def read_pools(items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Slots by pool and state. An unlimited pool's open slots read -1 in
    the API (its infinity); they are left out rather than shown as -1."""
    pools = {}
    for item in items:
        name = item.get("name", item.get("pool"))
        if not isinstance(name, str):
            raise Malformed(f"a pool without a name: {_short(item)}")
        slots = {}
        for key, state in POOL_SLOT_FIELDS.items():
            if key in item:
                value = _number(item, key)
                if value >= 0:
                    slots[state] = value
        pools[name] = slots
    return pools


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    latest_heartbeat: float | None


def read_health(document: object) -> dict[str, Health]:
    """The components the API's health endpoint reports on; a component it
    does not report (the DAG processor before 2.10) is left out."""
    if not isinstance(document, Mapping) or not isinstance(document.get("metadatabase"), Mapping):
        raise Malformed(f"not a health report: {_short(document)}")
    health = {}
    for component in COMPONENTS:
        part = document.get(component)
        if not isinstance(part, Mapping):
            continue
        heartbeat = timestamp(part.get(f"latest_{component}_heartbeat"))
        health[component] = Health(part.get("status") == "healthy", heartbeat)
    return health


@dataclass
class Snapshot:
    """A deployment's state as of its last good poll. Replaced whole, so a
    scrape reads one poll's state, never half of two."""

    taken: float = 0.0  # when the poll that made it ended (Unix seconds)
    dags: dict[str, Dag] = field(default_factory=dict)
    latest_run: dict[str, FinishedRun] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)
    active_runs: Counter[tuple[str, str]] = field(default_factory=Counter)
    import_errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    pools: dict[str, dict[str, float]] = field(default_factory=dict)
    health: dict[str, Health] = field(default_factory=dict)


TryKey = tuple[str, str, str, int]  # dag_id, run_id, task_id, map_index
Outcome = tuple[str, str, str]  # dag_id, task_id, state: a ti.finish series


class TryLedger:
    """Counts each try of a task instance once, in the state Airflow's worker
    reports it with (``ti.finish``): a try that was retried as
    ``up_for_retry``, the last one in the task instance's state.

    The poller asks for the task instances whose current try ended within a
    window; a task instance seen again with a higher try number had tries in
    between that ended and were retried. Memory is bounded: the oldest
    task instances are forgotten first (one seen again after that has only
    its current try counted)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._last_try: dict[TryKey, int] = {}

    def __len__(self) -> int:
        return len(self._last_try)

    def count(self, items: Iterable[Mapping[str, Any]]) -> Counter[Outcome]:
        outcomes: Counter[Outcome] = Counter()
        last_try = self._last_try
        for item in items:
            state = item.get("state")
            if state not in FINISHED_TRY_STATES or item.get("end_date") is None:
                continue
            try_number = int(_number(item, "try_number"))
            if try_number < 1:
                continue  # never ran (upstream_failed, skipped by the scheduler)
            dag_id, task_id = _text(item, "dag_id"), _text(item, "task_id")
            run_id = str(item.get("dag_run_id", item.get("run_id", "")))
            key = (dag_id, run_id, task_id, int(item.get("map_index", -1)))
            seen = last_try.get(key)
            if seen is not None and seen >= try_number:
                continue
            if seen is not None:
                retried = try_number - seen - 1
                if retried:
                    outcomes[(dag_id, task_id, "up_for_retry")] += retried
                del last_try[key]  # re-inserted last: the newest is forgotten last
            outcomes[(dag_id, task_id, str(state))] += 1
            last_try[key] = try_number
            if len(last_try) > self.capacity:
                del last_try[next(iter(last_try))]
        return outcomes
