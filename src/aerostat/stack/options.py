"""What a rendering of the stack may vary: where aerostat, Prometheus,
Alertmanager and Grafana's dashboards are, and which deployments the
dashboards show first. Checked up front, so a bad flag names itself."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aerostat.errors import AerostatError

# the rules look at 2-minute windows: they need a sample every 30 s at least
SLOWEST_SCRAPE_SECONDS = 30

_DURATION = re.compile(r"(?P<number>[1-9][0-9]*)(?P<unit>s|m)")
_TARGET = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")


@dataclass(frozen=True)
class StackOptions:
    deployments: tuple[str, ...] = ()  # the dashboards' default; all when empty
    aerostat_targets: tuple[str, ...] = ("127.0.0.1:9102",)
    scrape_interval: str = "15s"
    prometheus_url: str = "http://127.0.0.1:9090"  # as Grafana reaches it
    alertmanager: str | None = None  # HOST:PORT; an example block in comments without
    grafana_dashboards_dir: str = "/var/lib/grafana/dashboards/aerostat"  # as Grafana sees it


def scrape_seconds(interval: str) -> int:
    found = _DURATION.fullmatch(interval)
    if found is None:
        raise AerostatError(
            f"{interval!r} is not a duration in whole seconds or minutes (e.g. 15s)",
            source="--scrape-interval",
        )
    seconds = int(found["number"]) * (60 if found["unit"] == "m" else 1)
    if seconds > SLOWEST_SCRAPE_SECONDS:
        raise AerostatError(
            f"{interval} is longer than {SLOWEST_SCRAPE_SECONDS}s: the liveness rules look "
            "at 2-minute windows and need a sample every 30 seconds at least",
            source="--scrape-interval",
        )
    return seconds


def _check_target(target: str, flag: str) -> None:
    found = _TARGET.fullmatch(target)
    if found is None or not 0 < int(found["port"]) < 65536:
        raise AerostatError(f"{target!r} is not HOST:PORT (e.g. 127.0.0.1:9102)", source=flag)


def check_options(options: StackOptions) -> None:
    """Raise AerostatError naming the flag at fault."""
    scrape_seconds(options.scrape_interval)
    if not options.aerostat_targets:
        raise AerostatError("at least one target is needed", source="--aerostat-target")
    for target in options.aerostat_targets:
        _check_target(target, "--aerostat-target")
    if options.alertmanager is not None:
        _check_target(options.alertmanager, "--alertmanager")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", options.prometheus_url):
        raise AerostatError(f"{options.prometheus_url!r} is not an http(s) URL",
                            source="--prometheus-url")
    if not options.grafana_dashboards_dir.startswith("/"):
        raise AerostatError(
            f"{options.grafana_dashboards_dir!r} is not an absolute path (Grafana resolves "
            "a relative one against its own working directory)",
            source="--grafana-dashboards-dir",
        )
    for name in options.deployments:
        if not name or name != name.strip():
            raise AerostatError(f"{name!r} is not a deployment name", source="--deployment")
