"""Cumulative OTLP streams → the increments the pipeline adds (no I/O).

A sender reports a cumulative counter as its running total since
``start_time_unix_nano``; the Prometheus counter aerostat shows is the sum,
over every sending process, of each one's last total. So each stream (the
process, its meter's scope, the start time, the name and attributes) keeps
the highest total it reported, and what goes to the pipeline is the rise
over it: a short-lived task process adds its count once, a restarted one
(a new start time) starts a new contribution without taking the old one
back, and the sum never goes down.

Airflow quirks this is shaped by (3.3.2, observed):
* LocalExecutor workers forked from the scheduler keep pushing a frozen
  copy of its meters under the scheduler's ``service.instance.id``, with
  the same start times: a stream's total that goes down is such a copy
  and adds nothing (the highest total is the live one's);
* each process has two meter providers, each with its own scope name and
  timer: the scope is part of the stream, so both count.

Histograms go the same way (their count says which copy is behind; the
buckets' rise is the delta); up-down counters (non-monotonic sums) go as
the signed change of the level, so that the gauge they feed is the sum of
the processes' levels. Streams silent for ``ttl`` are forgotten, so memory
follows the live processes, not every task that ever ran; one that speaks
again after that counts its total again (``ttl`` must exceed the senders'
push interval by far: the default is 10 minutes against Airflow's 60 s)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from aerostat.events import Buckets, Event, Kind
from aerostat.otlp.decode import Point


@dataclass(slots=True)
class _State:
    value: float
    count: int
    buckets: Buckets | None
    seen: float


class Streams:
    """The last state of each cumulative stream; owned by the event loop."""

    def __init__(self, ttl: float = 600.0, max_streams: int = 1_000_000) -> None:
        self.ttl = ttl
        self.max_streams = max_streams
        self._states: dict[Hashable, _State] = {}
        self.refused = 0  # points of new streams past max_streams
        self.stale = 0  # points behind their stream's total (a frozen copy)

    def __len__(self) -> int:
        return len(self._states)

    def events(self, point: Point, now: float) -> Event | None:
        """The event ``point`` stands for, or None when it adds nothing."""
        if point.kind == "gauge":
            return Event(Kind.GAUGE, point.name, point.value, point.labels)
        if not point.cumulative:
            return _delta_event(point, point.value, point.observations, point.buckets)
        state = self._states.get(point.stream)
        if state is None:
            if len(self._states) >= self.max_streams:
                self.refused += 1
                return None
            self._states[point.stream] = _State(point.value, point.observations, point.buckets, now)
            return _delta_event(point, point.value, point.observations, point.buckets)
        state.seen = now
        if point.kind == "sum":
            if point.monotonic:
                if point.value < state.value:
                    self.stale += 1
                    return None
                rise = point.value - state.value
                state.value = point.value
                return None if rise == 0 else _delta_event(point, rise, 0, None)
            change = point.value - state.value
            state.value = point.value
            return None if change == 0 else _delta_event(point, change, 0, None)
        if point.observations < state.count:
            self.stale += 1
            return None
        if point.observations == state.count:
            return None
        assert point.buckets is not None
        buckets = rise_of(point.buckets, state.buckets)
        rise = point.value - state.value
        state.value, state.count, state.buckets = point.value, point.observations, point.buckets
        if buckets is None:  # bounds changed: a new histogram
            return _delta_event(point, point.value, point.observations, point.buckets)
        # bucket by bucket a copy may lag where the count does not: the
        # buckets' rise is what is known to be new
        added = sum(buckets.counts) + sum(buckets.negative) + buckets.zero_count
        return None if not added else _delta_event(point, rise, added, buckets)

    def expire(self, now: float) -> int:
        """Forgets the streams silent for ``ttl``; how many."""
        horizon = now - self.ttl
        gone = [key for key, state in self._states.items() if state.seen < horizon]
        for key in gone:
            del self._states[key]
        return len(gone)


def _delta_event(point: Point, value: float, count: int, buckets: Buckets | None) -> Event:
    if point.kind == "histogram":
        return Event(Kind.OBSERVER, point.name, value, point.labels, weight=count,
                     buckets=buckets)
    if point.monotonic:
        return Event(Kind.COUNTER, point.name, value, point.labels)
    # an up-down counter: a step of a gauge (see pipeline.resolve)
    return Event(Kind.GAUGE, point.name, value, point.labels, relative=True)


def rise_of(now: Buckets, before: Buckets | None) -> Buckets | None:
    """What ``now`` counts beyond ``before`` (both cumulative, ``now``
    ahead), bucket by bucket; None when they do not line up (other explicit
    bounds, or a finer exponential scale than before: not one histogram)."""
    if before is None:
        return now
    if now.scale is None or before.scale is None:
        if now.scale is not None or before.scale is not None or now.bounds != before.bounds:
            return None
        return Buckets(_minus(now.counts, 0, before.counts, 0)[1], now.bounds,
                       factor=now.factor)
    if now.scale > before.scale:
        return None
    # the SDK lowers the scale as the range grows: bring the old counts down
    shift = before.scale - now.scale
    offset, counts = _minus(now.counts, now.offset,
                            *_downscale(before.counts, before.offset, shift))
    negative_offset, negative = _minus(now.negative, now.negative_offset,
                                       *_downscale(before.negative, before.negative_offset,
                                                   shift))
    return Buckets(counts, (), now.scale, offset, max(0, now.zero_count - before.zero_count),
                   negative_offset, negative, now.factor)


def _downscale(counts: tuple[int, ...], offset: int, shift: int) -> tuple[tuple[int, ...], int]:
    if not shift or not counts:
        return counts, offset
    merged: dict[int, int] = {}
    for index, count in enumerate(counts):
        key = (offset + index) >> shift
        merged[key] = merged.get(key, 0) + count
    low = min(merged)
    return tuple(merged.get(i, 0) for i in range(low, max(merged) + 1)), low


def _minus(counts: tuple[int, ...], offset: int, old: tuple[int, ...],
           old_offset: int) -> tuple[int, tuple[int, ...]]:
    """``counts`` less ``old`` (each from its offset), never below zero."""
    result = list(counts)
    for index, count in enumerate(old):
        at = old_offset + index - offset
        if 0 <= at < len(result):
            result[at] = max(0, result[at] - count)
    return offset, tuple(result)
