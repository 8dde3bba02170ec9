"""The vocabulary every stage shares: what a StatsD sample becomes (Event), its
kind, and the reasons a piece of input is refused.

Stages pass these around instead of importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Kind(enum.IntEnum):
    """The three event kinds of statsd_exporter; timers, histograms and
    distributions are all observers."""

    COUNTER = 0
    GAUGE = 1
    OBSERVER = 2

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]

    @classmethod
    def from_label(cls, text: str) -> Kind:
        return _KINDS_BY_LABEL[text]


_KIND_LABELS = {Kind.COUNTER: "counter", Kind.GAUGE: "gauge", Kind.OBSERVER: "observer"}
_KINDS_BY_LABEL = {v: k for k, v in _KIND_LABELS.items()}


@dataclass(slots=True)
class Event:
    """One sample after parsing: a name still in StatsD form (dots and all),
    its value in base units (timers already in seconds, counters already
    divided by their sample rate) and the labels its tags carried."""

    kind: Kind
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    relative: bool = False
    # how many observations this one stands for: a sampled timer
    # (``|@0.1``) is ten. Kept as a number rather than repeated, so that
    # the work one line costs does not depend on its sample rate
    weight: int = 1
    # an observer that arrives already counted by bucket (OpenTelemetry's
    # histograms): ``weight`` observations whose sum is ``value``
    buckets: Buckets | None = None


@dataclass(frozen=True, slots=True)
class Buckets:
    """Observations counted by bucket, as an OpenTelemetry histogram sends
    them (a delta: what arrived since the last push). Exponential when
    ``scale`` is set: bucket ``offset + i`` of ``counts`` holds values in
    (base**(offset+i), base**(offset+i+1)] with base = 2**2**-scale, the
    ``negative`` ones mirror them below zero and ``zero_count`` holds the
    zeros. Explicit otherwise: ``counts[i]`` holds values up to
    ``bounds[i]`` (the last one, past every bound, up to +Inf). Bounds are
    in the sender's unit; ``factor`` turns them into base units (0.001 for
    milliseconds)."""

    counts: tuple[int, ...]
    bounds: tuple[float, ...] = ()
    scale: int | None = None
    offset: int = 0
    zero_count: int = 0
    negative_offset: int = 0
    negative: tuple[int, ...] = ()
    factor: float = 1.0

    def scaled(self, factor: float) -> Buckets:
        return Buckets(self.counts, self.bounds, self.scale, self.offset, self.zero_count,
                       self.negative_offset, self.negative, self.factor * factor)


class Reason(enum.StrEnum):
    """Why input was refused: the label values of
    ``statsd_exporter_sample_errors_total{reason}``.

    The first nine are statsd_exporter's own; the rest are aerostat's, for
    input upstream accepts and then mishandles (see docs/deviations.md).
    """

    MALFORMED_LINE = "malformed_line"
    MIXED_TAGGING_STYLES = "mixed_tagging_styles"
    NOT_ENOUGH_PARTS_AFTER_COLON = "not_enough_parts_after_colon"
    INVALID_EXTENDED_AGGREGATE_TYPE = "invalid_extended_aggregate_type"
    MALFORMED_COMPONENT = "malformed_component"
    MALFORMED_VALUE = "malformed_value"
    INVALID_SAMPLE_FACTOR = "invalid_sample_factor"
    MALFORMED_CONTAINER_ID = "malformed_container_id"
    ILLEGAL_EVENT = "illegal_event"
    # aerostat's additions
    NON_FINITE_VALUE = "non_finite_value"
    ILLEGAL_NEGATIVE_COUNTER = "illegal_negative_counter"
    INVALID_LABEL_NAME = "invalid_label_name"
    EMPTY_METRIC_NAME = "empty_metric_name"
    # limits that keep one sender from taking the exporter's memory
    NAME_TOO_LONG = "name_too_long"
    LABEL_VALUE_TOO_LONG = "label_value_too_long"


# the reasons statsd_exporter counts as events gone wrong
# (statsd_exporter_events_error_total) rather than as bad samples
EVENT_ERRORS = frozenset((Reason.EMPTY_METRIC_NAME, Reason.ILLEGAL_NEGATIVE_COUNTER))
