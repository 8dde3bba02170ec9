"""The catalog of every metric Airflow 2.11 and 3.3 send, as shipped in
catalog.json: one entry per (release line, metric), with its name pattern,
the legacy name that carries its identifiers, its type and its tags.

catalog.json is a copy of the project's research data on Airflow's metrics,
made from the releases' code and checked against Airflow's own registry
(metrics_template.yaml, inside the apache-airflow package); a new Airflow
release is a new version of that file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_VARIABLE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    line: str  # "2.x" or "3.x"
    name: str  # the name pattern, "{var}" where an identifier goes
    type: str  # counter, gauge or timer
    description: str
    tags: tuple[str, ...]
    legacy_name: str | None  # the twin with identifiers in the name
    component: str
    emitted: bool  # seen sent by 3.3.2's code (always False for 2.x rows)
    removed: str | None
    notes: str

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(_VARIABLE.findall(self.name))

    @property
    def legacy_variables(self) -> tuple[str, ...]:
        return tuple(_VARIABLE.findall(self.legacy_name or ""))


def _entry(raw: dict[str, Any]) -> CatalogEntry:
    legacy = raw["legacy_name_pattern"]
    if legacy is not None:
        # some legacy patterns carry a remark: "x.{var} (only when ...)"
        legacy = legacy.split(" (", 1)[0].strip()
    return CatalogEntry(
        line=raw["airflow_line"],
        name=raw["name_pattern"],
        type=raw["type"],
        description=" ".join(raw["description"].replace("``", "`").split()),
        tags=tuple(raw["tags"]),
        legacy_name=legacy,
        component=raw["component"],
        emitted=bool(raw["emitted_in_3_3_2"]),
        removed=raw["removed"],
        notes=raw["notes"] or "",
    )


@cache
def load_catalog() -> tuple[CatalogEntry, ...]:
    text = resources.files(__package__).joinpath("catalog.json").read_text("utf-8")
    return tuple(_entry(raw) for raw in json.loads(text))
