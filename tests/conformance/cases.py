"""Loads statsd_exporter's test tables (data/statsd_exporter_cases.json, see
data/NOTICE) and gives each case a pytest id."""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from aerostat.parse import Dialects

DATA = Path(__file__).parent / "data" / "statsd_exporter_cases.json"


@cache
def tables() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def params(table: str) -> list[Any]:
    return [pytest.param(case, id=case.get("id", case.get("input"))) for case in tables()[table]]


def case_input(case: dict[str, Any]) -> bytes:
    """The raw input: invalid UTF-8 inputs are stored base64-encoded."""
    if case.get("input_b64"):
        return base64.b64decode(case["input_b64"])
    return str(case["input"]).encode("utf-8")


def dialects(case: dict[str, Any]) -> Dialects:
    parser = case["parser"]
    return Dialects(
        dogstatsd=parser["dogstatsd"],
        influxdb=parser["influxdb"],
        librato=parser["librato"],
        signalfx=parser["signalfx"],
    )
