"""The catalog against Airflow's own registry: every metric that the
installed Airflow's ``metrics_template.yaml`` lists (its name, its legacy
name, its type) is a 3.x row of aerostat's catalog, so that the names
Airflow sends over OpenTelemetry, which are those of its registry, are the
names the built-in mapping knows. The installed release is the e2e one."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import yaml

from aerostat.airflow.catalog import load_catalog
from e2e.airflow_env import AIRFLOW_VERSION, E2E_ROOT, ensure_venv


def _say(message: str) -> None:
    print(f"[e2e] {message}", file=sys.stderr, flush=True)


@pytest.fixture(scope="module")
def template() -> list[dict[str, Any]]:
    venv = ensure_venv(AIRFLOW_VERSION, E2E_ROOT, _say)
    found = sorted(venv.path.glob(
        "lib/python3*/site-packages/airflow/_shared/observability/metrics/"
        "metrics_template.yaml"))
    assert found, "the installed Airflow ships no metrics_template.yaml"
    metrics: list[dict[str, Any]] = yaml.safe_load(found[0].read_text())["metrics"]
    assert len(metrics) > 100
    return metrics


def test_every_registered_metric_is_in_the_catalog_as_registered(
    template: list[dict[str, Any]],
) -> None:
    catalog = {entry.name: entry for entry in load_catalog() if entry.line == "3.x"}
    registered = {
        metric["name"]: (None if metric["legacy_name"] == "-" else metric["legacy_name"],
                         metric["type"])
        for metric in template
    }
    known = {name: (catalog[name].legacy_name, catalog[name].type)
             for name in registered if name in catalog}
    assert known == registered
