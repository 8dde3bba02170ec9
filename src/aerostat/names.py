"""Prometheus naming rules shared by every stage: escaping StatsD names into
metric names, and which label names are allowed."""

from __future__ import annotations

import re

_CLEAN_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").fullmatch
_DASH_RUNS = re.compile(r"--+")
_NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_]")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").fullmatch


def escape_metric_name(name: str) -> str:
    """statsd_exporter's EscapeMetricName: every character outside
    ``[a-zA-Z0-9_]`` becomes ``_``, a run of dashes counts as one character,
    and a leading digit gets a ``_`` in front."""
    if not name or _CLEAN_NAME(name):
        return name
    escaped = _NOT_NAME_CHAR.sub("_", _DASH_RUNS.sub("-", name))
    if "0" <= name[0] <= "9":
        escaped = "_" + escaped
    return escaped


def is_reserved_label_name(name: str) -> bool:
    """Names starting with ``__`` belong to Prometheus itself."""
    return name.startswith("__")
