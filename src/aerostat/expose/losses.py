"""What was lost, said in the log: refused input summed up by reason, and
input lost at a limit, warned about the first time and then summed up, so
that an operator hears of it without reading metrics and is never flooded."""

from __future__ import annotations

import logging

from aerostat.counters import Telemetry

log = logging.getLogger("aerostat")

# refused input and losses at limits are summed up this often at most
REPORT_SECONDS = 60.0


def _at_limits(t: Telemetry) -> dict[str, tuple[float, str]]:
    """What is lost at each limit so far, and what to do about it."""
    return {
        "series_limit": (t.series_refused.get("series", 0),
                         "raise --statsd.max-series, or drop the metrics with most series "
                         "(aerostat_series, and a mapping with action: drop)"),
        "bytes_limit": (t.series_refused.get("bytes", 0),
                        "raise --statsd.max-series-bytes, or find the senders of long "
                        "label values"),
        "kernel_drops": (t.udp_kernel_drops,
                         "the exporter cannot keep up: raise net.core.rmem_max and "
                         "--statsd.read-buffer, or spread the senders over more exporters"),
        "tcp_refused": (t.tcp_connections_refused,
                        "raise --statsd.tcp-max-connections (and the file-descriptor limit)"),
        "http_refused": (t.http_connections_refused, "raise --web.max-connections"),
        "accept_backoffs": (t.accept_backoffs,
                            "the process ran out of file descriptors: raise its limit "
                            "(ulimit -n) or lower --statsd.tcp-max-connections"),
    }


class LossReporter:
    """Call ``tick`` once a second and ``final`` at stop."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._refusals_reported: dict[str, int] = {}
        self._limits_warned: set[str] = set()
        self._limits_reported: dict[str, float] = {}
        self._next_report = 0.0

    def tick(self, now: float) -> None:
        self._warn_at_limits()
        if now >= self._next_report:
            self._next_report = now + REPORT_SECONDS
            self.final()

    def final(self) -> None:
        self._report_refusals()
        self._report_limits()

    def _report_refusals(self) -> None:
        """One warning for all input refused since the last one: enough for
        an operator to notice a misbehaving sender, never a flood (each line
        is logged at debug level)."""
        current = {**self.telemetry.sample_errors, **self.telemetry.events_error}
        new = {reason: count - self._refusals_reported.get(reason, 0)
               for reason, count in current.items()}
        new = {reason: count for reason, count in sorted(new.items()) if count}
        self._refusals_reported = current
        if new:
            log.warning("Refused StatsD input (see statsd_exporter_sample_errors_total; "
                        "--log.level=debug shows the lines)", extra={"fields": new})

    def _warn_at_limits(self) -> None:
        """The first time something is lost at a limit: one warning, at once."""
        for name, (count, advice) in _at_limits(self.telemetry).items():
            if count and name not in self._limits_warned:
                self._limits_warned.add(name)
                self._limits_reported[name] = count
                log.warning("Input is being lost at a limit: %s", advice,
                            extra={"fields": {"limit": name, "count": int(count)}})

    def _report_limits(self) -> None:
        """Then what was lost since, in the periodic summary."""
        grown = {}
        for name, (count, _) in _at_limits(self.telemetry).items():
            before = self._limits_reported.get(name, count)
            if count > before:
                grown[name] = int(count - before)
            self._limits_reported[name] = count
        if grown:
            log.warning("Input lost at limits since the last report (see aerostat_* metrics)",
                        extra={"fields": grown})
