"""The poller's cursors and budget (aerostat.airflow.api.source.Poller),
over an in-memory API: the HTTP edge replaced by pages built from a list of
task instances, so that budgets, paging and windows can be stepped through
poll by poll. Real answers are checked in tests/integration (a stand-in
server) and tests/e2e (a real Airflow)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aerostat.airflow.api.client import ApiClient, Target
from aerostat.airflow.api.source import Poller
from aerostat.airflow.api.state import timestamp

START = 1_800_000_000.0  # aerostat's start, Unix seconds


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class InMemoryApi(ApiClient):
    """Answers as API v2 would, from lists; counts what was asked."""

    def __init__(self, task_instances: list[dict[str, Any]]) -> None:
        super().__init__(Target("default", "http://in-memory"))
        self.version = 2
        self.task_instances = task_instances
        self.asked: list[str] = []

    def get(self, path: str, **query: object) -> Any:
        self.asked.append(path)
        if path == "/monitor/health":
            return {"metadatabase": {"status": "healthy"}}
        items: list[dict[str, Any]] = []
        key = path.rsplit("/", 1)[-1]
        if path == "/dags/~/dagRuns/~/taskInstances":
            key = "task_instances"
            low = timestamp(query["end_date_gte"]) or 0.0
            high = timestamp(query["end_date_lte"]) or 0.0
            items = sorted((ti for ti in self.task_instances
                            if low <= (timestamp(ti["end_date"]) or 0.0) <= high),
                           key=lambda ti: ti["end_date"])
        elif path.endswith("dagRuns"):
            key = "dag_runs"
        elif path == "/importErrors":
            key = "import_errors"
        offset, limit = int(str(query.get("offset", 0))), int(str(query.get("limit", 100)))
        return {key: items[offset:offset + limit], "total_entries": len(items)}


def finished(count: int, first_end: float) -> list[dict[str, Any]]:
    return [{"dag_id": "d", "dag_run_id": f"r{n}", "task_id": "t", "map_index": -1,
             "state": "success", "try_number": 1, "end_date": iso(first_end + n * 0.01)}
            for n in range(count)]


def test_tries_past_the_budget_wait_for_the_next_poll_and_count_once() -> None:
    api = InMemoryApi(finished(250, START + 10))
    poller = Poller(api, START, settle=60.0, budget=8)
    now = START + 120
    counted: Counter[tuple[str, str, str]] = Counter()
    polls = 0
    while sum(counted.values()) < 250 and polls < 10:
        counted.update(poller.poll(now).outcomes)
        polls += 1
        now += 30
    assert counted == Counter({("d", "t", "success"): 250})
    assert polls > 1, "the budget should have cut the first poll short"
    # and nothing more afterwards
    assert poller.poll(now).outcomes == Counter()


def test_a_try_is_counted_only_once_it_ended_the_settle_time_ago() -> None:
    api = InMemoryApi(finished(1, START + 100))
    poller = Poller(api, START, settle=60.0)
    assert poller.poll(START + 150).outcomes == Counter()  # ended 50 s ago
    assert poller.poll(START + 170).outcomes == Counter({("d", "t", "success"): 1})


def test_tries_that_ended_before_aerostat_started_are_not_counted() -> None:
    api = InMemoryApi(finished(3, START - 100))
    poller = Poller(api, START, settle=60.0)
    assert poller.poll(START + 120).outcomes == Counter()


def test_a_poll_that_fails_leaves_the_cursors_where_they_were() -> None:
    class Failing(InMemoryApi):
        fail = True

        def get(self, path: str, **query: object) -> Any:
            if self.fail and path.endswith("taskInstances"):
                return {"unexpected": True}
            return super().get(path, **query)

    api = Failing(finished(5, START + 10))
    poller = Poller(api, START, settle=60.0)
    try:
        poller.poll(START + 120)
    except ValueError:
        pass
    else:
        raise AssertionError("a malformed page should fail the poll")
    api.fail = False
    assert poller.poll(START + 150).outcomes == Counter({("d", "t", "success"): 5})
