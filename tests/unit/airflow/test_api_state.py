"""What a poll of Airflow's REST API reads (aerostat.airflow.api.state):
pages in, state and outcomes out. The pages are shaped as Airflow 3.3.2's
API v2 answers them (field names from its OpenAPI models) and as Airflow
2's v1 does where the two differ."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from aerostat.airflow.api.state import (
    Malformed,
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


def ti(task_id: str, state: str, try_number: int, run: str = "r1", dag_id: str = "d",
       end: str | None = "2026-12-05T10:00:00Z") -> dict[str, Any]:
    return {"dag_id": dag_id, "dag_run_id": run, "task_id": task_id, "map_index": -1,
            "state": state, "try_number": try_number, "end_date": end}


@pytest.mark.parametrize(("text", "seconds"), [
    ("1970-01-01T00:01:00Z", 60.0),
    ("1970-01-01T00:01:00.500000+00:00", 60.5),
    ("1970-01-01T01:01:00+01:00", 60.0),
    (None, None),
])
def test_timestamps(text: str | None, seconds: float | None) -> None:
    assert timestamp(text) == seconds


@pytest.mark.parametrize("text", ["yesterday", 12, "2026-12-05T10:00:00"])
def test_a_timestamp_that_is_not_one_is_malformed(text: object) -> None:
    with pytest.raises(Malformed):
        timestamp(text)


def test_each_try_counts_once_however_often_it_is_seen() -> None:
    ledger = TryLedger()
    page = [ti("a", "success", 1), ti("b", "failed", 1)]
    assert ledger.count(page) == Counter({("d", "a", "success"): 1, ("d", "b", "failed"): 1})
    assert ledger.count(page) == Counter()


def test_a_retried_try_counts_as_up_for_retry_as_the_worker_reports_it() -> None:
    ledger = TryLedger()
    assert ledger.count([ti("a", "up_for_retry", 1)]) == Counter({("d", "a", "up_for_retry"): 1})
    # try 2 was never seen ending (it failed and was retried between polls)
    assert ledger.count([ti("a", "failed", 3)]) == Counter(
        {("d", "a", "up_for_retry"): 1, ("d", "a", "failed"): 1})


@pytest.mark.parametrize("page", [
    [ti("a", "running", 1, end=None)],  # the API lists running ones under a lower end bound
    [ti("a", "deferred", 1)],  # a deferral is StatsD's alone
    [ti("a", "up_for_reschedule", 1)],
    [ti("a", "upstream_failed", 0)],  # never ran: its worker sent nothing
    [ti("a", "success", 1, end=None)],
])
def test_what_no_worker_reported_as_finished_is_not_counted(page: list[dict[str, Any]]) -> None:
    assert TryLedger().count(page) == Counter()


def test_try_instances_of_other_runs_and_map_indexes_are_apart() -> None:
    mapped = [dict(ti("a", "success", 1), map_index=index) for index in range(3)]
    assert TryLedger().count([*mapped, ti("a", "success", 1, run="r2")]) == Counter(
        {("d", "a", "success"): 4})


def test_the_ledger_forgets_the_oldest_past_its_capacity() -> None:
    ledger = TryLedger(capacity=2)
    ledger.count([ti("a", "success", 1, run=f"r{n}") for n in range(3)])
    assert len(ledger) == 2
    # r0 was forgotten: seen again it counts again; r2 is still known
    assert ledger.count([ti("a", "success", 1, run="r0"), ti("a", "success", 1, run="r2")]) \
        == Counter({("d", "a", "success"): 1})


def test_finished_runs_fold_into_the_latest_per_dag_in_any_order() -> None:
    runs = [
        {"dag_id": "d", "state": "success", "end_date": "2026-12-05T10:00:00Z"},
        {"dag_id": "d", "state": "failed", "end_date": "2026-12-05T11:00:00Z"},
        {"dag_id": "d", "state": "success", "end_date": "2026-12-05T09:00:00Z"},
        {"dag_id": "e", "state": "running", "end_date": None},
    ]
    latest, success = fold_finished_runs({}, {}, runs)
    assert latest["d"].state == "failed"
    assert latest["d"].end == timestamp("2026-12-05T11:00:00Z")
    assert success == {"d": timestamp("2026-12-05T10:00:00Z")}
    again, success_again = fold_finished_runs(latest, success, reversed(runs))
    assert (again, success_again) == (latest, success)


def test_dags_of_both_api_versions() -> None:
    v2 = {"dag_id": "d", "is_paused": False, "is_stale": False,
          "next_dagrun_run_after": "2026-12-05T10:05:00Z",
          "next_dagrun_data_interval_start": "2026-12-05T10:00:00Z",
          "next_dagrun_data_interval_end": "2026-12-05T10:05:00Z"}
    v1 = {"dag_id": "e", "is_paused": True, "is_active": False,
          "next_dagrun_create_after": None}
    dags = read_dags([v2, v1])
    assert dags["d"].interval == 300.0
    assert dags["d"].next_run == timestamp("2026-12-05T10:05:00Z")
    assert (dags["d"].paused, dags["d"].stale) == (False, False)
    assert (dags["e"].paused, dags["e"].stale, dags["e"].interval) == (True, True, None)


def test_runs_now_import_errors_and_pools() -> None:
    assert count_active_runs([{"dag_id": "d", "state": "running"},
                              {"dag_id": "d", "state": "running"},
                              {"dag_id": "d", "state": "queued"}]) == Counter(
        {("d", "running"): 2, ("d", "queued"): 1})
    assert count_import_errors([{"filename": "a.py", "bundle_name": "dags-folder"},
                                {"filename": "b.py"}]) == Counter(
        {("dags-folder", "a.py"): 1, ("", "b.py"): 1})
    # v2 names a pool "name"; an unlimited pool's open slots are -1 there
    pools = read_pools([{"name": "default_pool", "slots": -1, "open_slots": -1,
                         "running_slots": 2, "queued_slots": 0}])
    assert pools == {"default_pool": {"running": 2.0, "queued": 0.0}}


def test_health_with_and_without_a_dag_processor() -> None:
    report = {"metadatabase": {"status": "healthy"},
              "scheduler": {"status": "unhealthy",
                            "latest_scheduler_heartbeat": "1970-01-01T00:01:00Z"},
              "triggerer": {"status": None, "latest_triggerer_heartbeat": None}}
    health = read_health(report)
    assert health["metadatabase"].healthy
    assert not health["scheduler"].healthy
    assert health["scheduler"].latest_heartbeat == 60.0
    assert not health["triggerer"].healthy
    assert "dag_processor" not in health


@pytest.mark.parametrize("page", [
    None, [], {"dags": None}, {"dags": [1, 2]}, "<html>login</html>",
])
def test_a_page_that_is_not_a_collection_is_malformed(page: object) -> None:
    with pytest.raises(Malformed):
        items_of(page, "dags")


@pytest.mark.parametrize("call", [
    lambda: read_dags([{"is_paused": False}]),
    lambda: read_pools([{"slots": 1}]),
    lambda: read_pools([{"name": "p", "slots": "many"}]),
    lambda: read_health({"status": "ok"}),
    lambda: TryLedger().count([{"dag_id": "d", "task_id": "a", "state": "success",
                                "end_date": "x", "try_number": None}]),
])
def test_items_without_what_the_api_documents_are_malformed(call: Any) -> None:
    with pytest.raises(Malformed):
        call()
