"""Airflow knowledge, as data: the catalog of what Airflow sends, the
built-in mapping generated from it, and the frontend that tells deployments
apart and counts each event once. The bridge's core never imports this
package; cli.py hands its parts to the server."""

import functools

from aerostat.airflow import knowledge
from aerostat.airflow.api import Target, api_sources
from aerostat.airflow.api.source import POLL_INTERVAL, SETTLE_SECONDS
from aerostat.airflow.frontend import DEFAULT_DEPLOYMENT, AirflowFrontend
from aerostat.airflow.mapping import AirflowMetric, airflow_mapping, airflow_metrics
from aerostat.frontend import BuiltIn


def airflow_built_in(
    sender_ttl: float = knowledge.GAUGE_SENDER_TTL,
    heartbeat_ttl: float = knowledge.HEARTBEAT_TTL,
    default_deployment: str = DEFAULT_DEPLOYMENT,
    heartbeat_silence: float = knowledge.HEARTBEAT_SILENCE,
    api_targets: tuple[Target, ...] = (),
    api_poll_interval: float = POLL_INTERVAL,
    api_settle: float = SETTLE_SECONDS,
) -> BuiltIn:
    """What ``--airflow`` adds: the mapping, a frontend per pipeline, and a
    REST-API source per deployment given with ``--airflow.api-url``."""
    return BuiltIn(airflow_mapping(sender_ttl, heartbeat_ttl, heartbeat_silence),
                   functools.partial(AirflowFrontend, default_deployment),
                   api_sources(api_targets, api_poll_interval, api_settle)
                   if api_targets else None)


__all__ = [
    "AirflowFrontend",
    "AirflowMetric",
    "airflow_built_in",
    "airflow_mapping",
    "airflow_metrics",
]
