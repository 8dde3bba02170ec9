"""First values held back until every scraper has read the series at zero.

Prometheus cannot know that a counter series born at 1 started at 0, so the
first event of every new series is invisible to increase() and rate(): the
first failure of a task, the first killed task. A new counter, histogram or
summary series is therefore shown at zero until every Prometheus that
scrapes aerostat has read it at zero once; then its real value appears, and
the first event is a step that increase() counts.

Nothing here touches a series: a series only carries the time it was born,
and a scrape shows the value of series born before ``horizon_at()`` and zero
for younger ones. The hot path never looks at the hold."""

from __future__ import annotations

import math
from collections.abc import Hashable

# a scraper that misses this many of its own intervals (plus slack for a
# slow scrape) is taken as gone and no longer holds new series back
_MISSED_INTERVALS = 2
_SLACK_SECONDS = 5.0


class FirstValueHold:
    """Who scrapes, and since when new series may show their values.

    A scraper is told apart by what its requests say of it (address, user
    agent, the scrape timeout Prometheus sends), and counts once it has
    scraped twice, so that its interval is known and a one-off ``curl``
    holds nothing back. ``longest`` bounds every wait: no series is held
    longer, and after a start, while the scrapers are not known yet, every
    new series waits that long."""

    def __init__(self, longest: float, started: float) -> None:
        self.longest = longest
        self.started = started
        self._horizon = -math.inf
        # scraper → [start of its last complete scrape, its interval (0: one seen)]
        self._scrapers: dict[Hashable, list[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.longest > 0.0

    def horizon_at(self, now: float) -> float:
        """Series born before this time show their values; younger ones
        show zero. Never goes back."""
        if not self.enabled:
            return math.inf
        oldest = now - self.longest
        if now - self.started < self.longest:
            horizon = oldest  # still learning who scrapes
        else:
            live = [last for last, interval in self._scrapers.values()
                    if interval > 0.0 and now - last <= _silence_allowed(interval)]
            horizon = max(min(live), oldest) if live else now
        self._horizon = max(self._horizon, horizon)
        return self._horizon

    def scraped(self, scraper: Hashable, started: float) -> None:
        """``scraper`` has read a whole scrape that began at ``started``."""
        cell = self._scrapers.get(scraper)
        if cell is None:
            self._scrapers[scraper] = [started, 0.0]
        elif started > cell[0]:
            cell[1] = started - cell[0]
            cell[0] = started
        # forgotten once silent for longer than it would count and than the
        # longest hold: memory stays bounded whoever reads /metrics
        for gone in [key for key, (last, interval) in self._scrapers.items()
                     if started - last > max(self.longest, _silence_allowed(interval))]:
            del self._scrapers[gone]

    def scrapers(self, now: float) -> list[tuple[Hashable, float, float]]:
        """(scraper, seconds since its last scrape, interval) of each known one."""
        return [(key, now - last, interval) for key, (last, interval) in self._scrapers.items()]


def _silence_allowed(interval: float) -> float:
    return _MISSED_INTERVALS * interval + _SLACK_SECONDS
