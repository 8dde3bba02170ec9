"""Series cells: one per label set, updated in place on the hot path.

``__slots__`` and plain attributes, no locks: the event loop is the only
writer (see STYLE.md); scrapes read a value at a time."""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Sequence

# perf: the labels are rendered once, when the series is born, so a scrape
# only joins strings.


class ScalarSeries:
    """A counter or gauge."""

    __slots__ = ("labels", "labels_text", "ttl", "updated", "value")

    def __init__(self, labels: tuple[tuple[str, str], ...], labels_text: str, ttl: float) -> None:
        self.labels = labels
        self.labels_text = labels_text
        self.ttl = ttl
        self.updated = 0.0
        self.value = 0.0


class HistogramSeries:
    """Cumulative buckets are built at scrape time from per-bucket counts."""

    __slots__ = ("bounds", "count", "counts", "labels", "labels_text", "sum", "ttl", "updated")

    def __init__(
        self,
        labels: tuple[tuple[str, str], ...],
        labels_text: str,
        ttl: float,
        bounds: tuple[float, ...],
    ) -> None:
        self.labels = labels
        self.labels_text = labels_text
        self.ttl = ttl
        self.updated = 0.0
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, now: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bucket (le)
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


class SummarySeries:
    """Quantiles over a sliding window of ``max_age`` seconds, kept as
    ``age_buckets`` slices so that old observations leave in steps, as
    client_golang's summaries do.

    Each slice keeps its observations exactly up to ``SLICE_CAPACITY``, then
    a uniform reservoir sample of that size, which bounds memory per series
    while keeping the rank error far below the configured targets at the
    rates StatsD senders produce."""

    SLICE_CAPACITY = 2048

    __slots__ = (
        "count",
        "labels",
        "labels_text",
        "quantiles",
        "seen",
        "slice_seconds",
        "slice_start",
        "slices",
        "sum",
        "ttl",
        "updated",
    )

    def __init__(
        self,
        labels: tuple[tuple[str, str], ...],
        labels_text: str,
        ttl: float,
        quantiles: tuple[float, ...],
        max_age: float,
        age_buckets: int,
    ) -> None:
        self.labels = labels
        self.labels_text = labels_text
        self.ttl = ttl
        self.updated = 0.0
        self.quantiles = quantiles
        self.slice_seconds = max_age / max(age_buckets, 1)
        self.slices: list[list[float]] = [[] for _ in range(max(age_buckets, 1))]
        self.seen = [0] * len(self.slices)
        self.slice_start = 0.0
        self.sum = 0.0
        self.count = 0

    def _rotate(self, now: float) -> None:
        elapsed = int((now - self.slice_start) // self.slice_seconds)
        if elapsed <= 0:
            return
        for _ in range(min(elapsed, len(self.slices))):
            self.slices.pop(0)
            self.seen.pop(0)
            self.slices.append([])
            self.seen.append(0)
        self.slice_start += elapsed * self.slice_seconds

    def observe(self, value: float, now: float) -> None:
        if now - self.slice_start >= self.slice_seconds:
            if self.slice_start == 0.0:
                self.slice_start = now
            else:
                self._rotate(now)
        newest = self.slices[-1]
        self.seen[-1] += 1
        if len(newest) < self.SLICE_CAPACITY:
            newest.append(value)
        else:
            slot = random.randrange(self.seen[-1])
            if slot < self.SLICE_CAPACITY:
                newest[slot] = value
        self.sum += value
        self.count += 1

    def quantile_values(self, now: float) -> list[float]:
        """Nearest-rank quantiles over the window; NaN when it is empty,
        as client_golang reports."""
        if self.slice_start:
            self._rotate(now)
        window = sorted(v for piece in self.slices for v in piece)
        if not window:
            return [math.nan] * len(self.quantiles)
        last = len(window) - 1
        return [window[min(last, max(0, math.ceil(q * len(window)) - 1))] for q in self.quantiles]


Series = ScalarSeries | HistogramSeries | SummarySeries


def render_labels(labels: Sequence[tuple[str, str]]) -> str:
    """``{a="x",b="y"}`` with the exposition format's value escaping."""
    if not labels:
        return ""
    parts = [f'{name}="{escape_label_value(value)}"' for name, value in labels]
    return "{" + ",".join(parts) + "}"


def escape_label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value
