"""What Airflow puts on the wire for one event of a catalog metric, in each
emission mode, written from Airflow's documented behaviour
(shared/reference/airflow_metrics.md §1.1-1.2), not from aerostat's code:

* plain StatsD (the default): the legacy name with the identifiers inside,
  then the tagged name with its tags dropped;
* InfluxDB tags: ``name,k=v:value|type``; DogStatsD: ``name:value|type|#k:v``;
  with legacy names on, 2.x sends its legacy name with every tag, 3.3 with
  the tags the name does not hold;
* ``legacy_names_on = False`` (3.2+): the tagged name only.
3.3 writes a dot inside an identifier of a legacy name as ``__``; 2.x writes
it as it is, which adds components."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aerostat.airflow.catalog import CatalogEntry

# one identifier per tag, a dotted task id (a task group) among them
VALUES = {
    "dag_id": "etl_daily",
    "task_id": "load_group.write",
    "state": "success",
    "pool_name": "etl_pool",
    "executor_class_name": "CeleryExecutor",
    "name": "CeleryExecutor",
    "operator_name": "BashOperator",
    "operator": "BashOperator",
    "task_type": "BashOperator",
    "file_name": "etl_daily",
    "dag_file": "etl_daily",
    "file_path": "/opt/dags/etl_daily.py",
    "bundle_name": "dags-folder",
    "hostname": "host-7f3a",
    "queue": "default",
    "job_id": "4242",
    "return_code": "0",
    "run_type": "scheduled",
    "worker_name": "edge-worker-1",
    "event_type": "START",
    "transport_type": "http",
    "sysinfo_key": "cpu_count",
    "job_name": "job",
    "status": "open",
    "action": "start",
    "prior_state": "running",
    "queues": "default",
    "executor": "LocalExecutor",
    "team_name": "team_a",
    "func_name": "notify",
    "dagrun_id": "scheduled__2026-11-24",
}
# identifiers the tests look for in metric names (labels only, never names)
IDENTIFIERS = ("etl_daily", "load_group", "etl_pool", "CeleryExecutor", "host_7f3a",
               "edge_worker_1", "BashOperator", "dags_folder", "team_a")

MODES_3 = ("plain", "influx", "dogstatsd", "influx_no_legacy", "dogstatsd_no_legacy")
MODES_2 = ("plain", "influx", "dogstatsd")
WIRE = {"counter": "c", "gauge": "g", "timer": "ms"}
SENT = {"counter": "1", "gauge": "7", "timer": "1500"}

_VARIABLE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Expectation:
    name: str  # the Prometheus family
    labels: dict[str, str]  # labels the mode can carry (identifiers it has)


def fill(pattern: str, sanitise: bool) -> str:
    def value(match: re.Match[str]) -> str:
        text = VALUES[match.group(1)]
        return text.replace(".", "__") if sanitise else text

    return _VARIABLE.sub(value, pattern)


def _tagged(name: str, tags: dict[str, str], kind: str, value: str, style: str) -> str:
    if not tags:
        return f"airflow.{name}:{value}|{kind}"
    if style == "influx":
        pairs = ",".join(f"{k}={v}" for k, v in tags.items())
        return f"airflow.{name},{pairs}:{value}|{kind}"
    pairs = ",".join(f"{k}:{v}" for k, v in tags.items())
    return f"airflow.{name}:{value}|{kind}|#{pairs}"


def wire_lines(entry: CatalogEntry, mode: str) -> list[str]:
    """The datagrams Airflow sends for one event of ``entry``."""
    kind, value = WIRE[entry.type], SENT[entry.type]
    if entry.type == "timer" and entry.name == "dag_processing.last_duration" and (
        entry.line == "3.x"
    ):
        value = "1.5"  # 3.2+ sends seconds on an |ms wire
    sanitise = entry.line == "3.x"
    tags = {tag: VALUES[tag] for tag in entry.tags}
    style = "influx" if mode.startswith("influx") else "dogstatsd"
    name = fill(entry.name, sanitise)
    lines = []
    legacy_on = not mode.endswith("no_legacy")
    if entry.legacy_name is not None and legacy_on and not entry.variables:
        legacy = fill(entry.legacy_name, sanitise)
        if mode == "plain":
            lines.append(f"airflow.{legacy}:{value}|{kind}")
        else:
            consumed = set(entry.legacy_variables)
            legacy_tags = tags if entry.line == "2.x" else {
                k: v for k, v in tags.items() if k not in consumed
            }
            lines.append(_tagged(legacy, legacy_tags, kind, value, style))
    lines.append(_tagged(name, {} if mode == "plain" else tags, kind, value, style))
    return lines
