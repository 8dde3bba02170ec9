"""Series cells: one per label set, updated in place on the hot path.

``__slots__`` and plain attributes, no locks: the event loop is the only
writer, and it renders scrapes itself, between reads (expose/scrapes.py)."""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left
from collections.abc import Hashable, Mapping, Sequence

from aerostat.store.native import NativeHistogram

# perf: the labels are rendered once, when the series is born, so a scrape
# only joins strings.


class ScalarSeries:
    """A counter or gauge."""

    __slots__ = ("born", "labels", "labels_text", "ttl", "updated", "value")

    def __init__(self, labels: tuple[tuple[str, str], ...], labels_text: str, ttl: float) -> None:
        self.labels = labels
        self.labels_text = labels_text
        self.ttl = ttl
        self.updated = 0.0
        self.born = 0.0  # monotonic; see store/hold.py
        self.value = 0.0


class HistogramSeries:
    """Cumulative buckets are built at scrape time from per-bucket counts.
    ``native``: the native histogram beside them (NativeHistogramSeries),
    None here."""

    __slots__ = (
        "born", "bounds", "count", "counts", "labels", "labels_text", "native", "sum", "ttl",
        "updated",
    )

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
        self.born = 0.0
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0
        self.native: NativeHistogram | None = None

    def observe(self, value: float, now: float, weight: int = 1) -> bool:
        """Counts ``weight`` observations of ``value``; False, and nothing
        changed, when the sum would no longer be finite."""
        total = self.sum + value * weight
        if total - total != 0.0:
            return False
        # bisect_left: a value equal to a bound belongs to that bucket (le)
        self.counts[bisect_left(self.bounds, value)] += weight
        self.sum = total
        self.count += weight
        return True


class NativeHistogramSeries(HistogramSeries):
    """A histogram whose rule asks for a native histogram too
    (native_histogram_bucket_factor, or an OTLP exponential histogram): its
    own class so that the classic-only HistogramSeries.observe, on the hot
    path of every other histogram, does not even test for it."""

    __slots__ = ()

    def __init__(
        self,
        labels: tuple[tuple[str, str], ...],
        labels_text: str,
        ttl: float,
        bounds: tuple[float, ...],
        native: NativeHistogram,
    ) -> None:
        super().__init__(labels, labels_text, ttl, bounds)
        self.native = native

    def observe(self, value: float, now: float, weight: int = 1) -> bool:
        if not super().observe(value, now, weight):
            return False
        native = self.native
        assert native is not None
        native.observe(value, weight)
        return True

    def add_exponential(
        self,
        scale: int,
        zero_threshold: float,
        zero_count: int,
        positive_offset: int,
        positive_counts: Sequence[int],
        negative_offset: int,
        negative_counts: Sequence[int],
        count: int,
        total: float,
    ) -> bool:
        """An OTLP exponential-histogram delta into the native buckets, with
        its count and sum (store/native.py). The classic buckets are not
        touched: store/buckets.py's fold() fills them. False, and nothing
        changed, when the sum would not be finite or the scale is below -4."""
        new_sum = self.sum + total
        if new_sum - new_sum != 0.0:
            return False
        native = self.native
        assert native is not None
        if not native.add_exponential(scale, zero_threshold, zero_count, positive_offset,
                                      positive_counts, negative_offset, negative_counts):
            return False
        self.sum = new_sum
        self.count += count
        return True


class SummarySeries:
    """Quantiles over a sliding window of ``max_age`` seconds, kept as
    ``age_buckets`` slices so that old observations leave in steps, as
    client_golang's summaries do.

    Each slice keeps its observations exactly up to ``SLICE_CAPACITY``, then
    a uniform reservoir sample of that size: at most 80 KiB per series with
    the default five slices, and a rank error far below the configured
    targets at the rates StatsD senders produce."""

    SLICE_CAPACITY = 2048

    __slots__ = (
        "born",
        "count",
        "labels",
        "labels_text",
        "newest",
        "newest_seen",
        "quantiles",
        "slice_end",
        "slice_seconds",
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
        self.born = 0.0
        self.quantiles = quantiles
        self.slice_seconds = max_age / max(age_buckets, 1)
        # oldest first; the last one takes new observations until slice_end.
        # perf: array('d') holds a float in 8 bytes where a list needs 32
        self.slices: list[array[float]] = [array("d") for _ in range(max(age_buckets, 1))]
        self.newest = self.slices[-1]
        self.newest_seen = 0
        self.slice_end = -math.inf
        self.sum = 0.0
        self.count = 0

    def _advance(self, now: float) -> None:
        if self.slice_end == -math.inf:
            self.slice_end = now + self.slice_seconds
            return
        passed = int((now - self.slice_end) // self.slice_seconds) + 1
        slices = self.slices
        for _ in range(min(passed, len(slices))):
            slices.pop(0)
            slices.append(array("d"))
        self.newest = slices[-1]
        self.newest_seen = 0
        self.slice_end += passed * self.slice_seconds

    def observe(self, value: float, now: float, weight: int = 1) -> bool:
        """Counts ``weight`` observations of ``value``; False, and nothing
        changed, when the sum would no longer be finite. A weight enters the
        window as at most SLICE_CAPACITY copies: the window holds no more."""
        total = self.sum + value * weight
        if total - total != 0.0:
            return False
        if now >= self.slice_end:
            self._advance(now)
        for _ in range(min(weight, self.SLICE_CAPACITY)):
            newest = self.newest
            if len(newest) < self.SLICE_CAPACITY:
                newest.append(value)
            else:
                self._sample(value)
        self.sum = total
        self.count += weight
        return True

    def _sample(self, value: float) -> None:
        self.newest_seen = max(self.newest_seen, self.SLICE_CAPACITY) + 1
        slot = random.randrange(self.newest_seen)
        if slot < self.SLICE_CAPACITY:
            self.newest[slot] = value

    def quantile_values(self, now: float) -> list[float]:
        """Nearest-rank quantiles over the window; NaN when it is empty, as
        client_golang reports. Reads only."""
        slices = self.slices
        stale = 0
        if now >= self.slice_end and self.slice_end != -math.inf:
            stale = int((now - self.slice_end) // self.slice_seconds) + 1
        window = sorted(v for piece in slices[min(stale, len(slices)) :] for v in piece)
        if not window:
            return [math.nan] * len(self.quantiles)
        last = len(window) - 1
        return [window[min(last, max(0, math.ceil(q * len(window)) - 1))] for q in self.quantiles]


class SenderGaugeSeries:
    """A gauge that several processes report, each for itself; StatsD says
    nothing about who sent a sample, so the pipeline passes the sender (a
    source address, or a label's value).

    Each sender's latest value is kept; a sender silent for ``sender_ttl``
    no longer counts. ``policy`` says what the series shows: ``sum``,
    ``max`` or ``min`` of the live senders' values, or ``sticky``: the value
    of the live sender heard from first, so that a value every sender reads
    from one shared source does not flap between their samples."""

    __slots__ = (
        "born", "groups", "labels", "labels_text", "policy", "sender_ttl", "senders", "ttl",
        "updated",
    )

    def __init__(
        self,
        labels: tuple[tuple[str, str], ...],
        labels_text: str,
        ttl: float,
        policy: str,
        sender_ttl: float,
    ) -> None:
        self.labels = labels
        self.labels_text = labels_text
        self.ttl = ttl
        self.updated = 0.0
        self.born = 0.0
        self.policy = policy
        self.sender_ttl = sender_ttl
        # sender → [value, last heard]; insertion order is first-heard order
        self.senders: dict[Hashable, list[float]] = {}
        # senders that report one shared share of a sum (replicas): sender →
        # group, kept up to date by whoever learns it; a sum counts each
        # group's latest value once, and a sender in no group for itself
        self.groups: Mapping[Hashable, Hashable] | None = None

    def set(self, sender: Hashable, value: float, relative: bool, now: float) -> bool:
        """False, and nothing changed, when the sender's value would no
        longer be finite, or a sum over the senders would not be."""
        cell = self.senders.get(sender)
        if cell is not None and relative:
            value += cell[0]
        if value - value != 0.0:
            return False
        if cell is None:
            self.senders[sender] = [value, now]
        else:
            cell[0] = value
            cell[1] = now
        self.updated = now
        return True

    def live(self, now: float) -> list[tuple[Hashable, float]]:
        """(sender, value) of every sender heard within sender_ttl."""
        horizon = now - self.sender_ttl
        return [(sender, cell[0]) for sender, cell in list(self.senders.items())
                if cell[1] >= horizon]

    def value_at(self, now: float) -> float | None:
        """What the series shows now; None when no sender is live."""
        values = [value for _, value in self.live(now)]
        if not values:
            return None
        if self.policy == "sum":
            try:
                if self.groups:
                    return math.fsum(self._latest_per_group(now))
                return math.fsum(values)
            except OverflowError:
                return None  # finite shares, no finite sum: nothing to show
        if self.policy == "max":
            return max(values)
        if self.policy == "min":
            return min(values)
        return values[0]  # sticky

    def _latest_per_group(self, now: float) -> list[float]:
        groups = self.groups or {}
        horizon = now - self.sender_ttl
        latest: dict[Hashable, list[float]] = {}
        for sender, cell in self.senders.items():
            if cell[1] < horizon:
                continue
            group = groups.get(sender, sender)
            known = latest.get(group)
            if known is None or cell[1] >= known[1]:
                latest[group] = cell
        return [cell[0] for cell in latest.values()]

    def prune(self, now: float) -> None:
        """Forgets senders silent for longer than sender_ttl (event loop only)."""
        horizon = now - self.sender_ttl
        for sender in [s for s, cell in self.senders.items() if cell[1] < horizon]:
            del self.senders[sender]


def sender_text(sender: Hashable) -> str:
    """A sender as a label value: ``ip:port`` for a socket address."""
    if isinstance(sender, tuple) and len(sender) >= 2:
        host, port = sender[0], sender[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(sender) if sender else "unknown"


Series = ScalarSeries | HistogramSeries | SummarySeries | SenderGaugeSeries


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
