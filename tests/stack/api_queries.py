"""Which of the stack's queries read what aerostat's REST-API source shows
(``--airflow.api-url``): the stack tests replay StatsD only, so these stay
empty there, and the end-to-end test asks them of a real Prometheus beside
a real Airflow instead."""

from __future__ import annotations

import re

from aerostat.airflow.api import API_METRICS
from aerostat.stack.queries import Query

API_NAMES = frozenset(metric.name for metric in API_METRICS)
# a metric or recorded name, as rules and panels write them
_NAME = re.compile(r"\b(?:airflow|aerostat|statsd_exporter|deployment:airflow)[a-z0-9_:]*")


def reads_the_api(expr: str) -> bool:
    """Whether the expression's data comes from the REST-API source: its
    first metric is one of the source's (a StatsD rule that only steps
    aside while the source is up, ``unless ... aerostat_airflow_api_up``,
    does not)."""
    found = _NAME.search(expr)
    return found is not None and found.group(0).removesuffix("_total") in {
        name.removesuffix("_total") for name in API_NAMES}


def api_queries(queries: list[Query]) -> list[Query]:
    return [query for query in queries if reads_the_api(query.expr)]
