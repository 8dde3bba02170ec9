"""Airflow's own record, read from its REST API: a second source beside
StatsD for what StatsD cannot tell (state now, freshness, outcomes it never
carried). See docs/airflow.md, "Airflow's REST API"."""

from aerostat.airflow.api.client import Credentials, Target
from aerostat.airflow.api.collector import API_METRICS, ApiCollector
from aerostat.airflow.api.source import ApiSource, api_sources

__all__ = ["API_METRICS", "ApiCollector", "ApiSource", "Credentials", "Target", "api_sources"]
