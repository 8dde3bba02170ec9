"""The mapper's vocabulary: a parsed mapping file (MappingConfig) is its
Defaults plus one Rule per entry of ``mappings``, every option already
resolved against the defaults; a lookup answers with a Match.

These are plain frozen values. config.py builds them from YAML, mapper.py
compiles them into matchers; neither changes them afterwards.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aerostat.events import Kind


class ObserverType(enum.StrEnum):
    """What timers, histograms and distributions become."""

    HISTOGRAM = "histogram"
    SUMMARY = "summary"


class SenderPolicy(enum.StrEnum):
    """aerostat's extension: how a gauge that several processes report for
    themselves is exposed (StatsD carries no sender, so upstream keeps the
    last writer's value and the others are lost)."""

    SUM = "sum"  # each sender reports its own share: executor slots
    MAX = "max"
    MIN = "min"
    STICKY = "sticky"  # all report the same shared value: one sender's, no flapping
    SEPARATE = "separate"  # one series per sender, labelled sender


class Action(enum.StrEnum):
    """What to do with a matching sample; the caller acts on it."""

    MAP = "map"
    DROP = "drop"


class MatchType(enum.StrEnum):
    GLOB = "glob"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class Quantile:
    """One summary objective: the quantile and its allowed error."""

    quantile: float
    error: float


@dataclass(frozen=True, slots=True)
class SummaryOptions:
    quantiles: tuple[Quantile, ...]
    max_age: float  # seconds
    age_buckets: int
    buf_cap: int


@dataclass(frozen=True, slots=True)
class HistogramOptions:
    """Classic buckets (``+Inf`` is implicit), and the native histogram
    beside them: its bucket factor (at most 1: none) and bucket limit, as
    client_golang reads them (store/native.py)."""

    buckets: tuple[float, ...]
    native_histogram_bucket_factor: float
    native_histogram_max_buckets: int


# client_golang's defaults, which statsd_exporter falls back to when a field
# is unset or 0.
DEFAULT_QUANTILES = (Quantile(0.5, 0.05), Quantile(0.9, 0.01), Quantile(0.99, 0.001))
DEFAULT_MAX_AGE = 600.0
DEFAULT_AGE_BUCKETS = 5
DEFAULT_BUF_CAP = 500
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEFAULT_NATIVE_FACTOR = 1.1
DEFAULT_NATIVE_MAX_BUCKETS = 256

DEFAULT_SUMMARY = SummaryOptions(
    DEFAULT_QUANTILES, DEFAULT_MAX_AGE, DEFAULT_AGE_BUCKETS, DEFAULT_BUF_CAP
)
DEFAULT_HISTOGRAM = HistogramOptions(
    DEFAULT_BUCKETS, DEFAULT_NATIVE_FACTOR, DEFAULT_NATIVE_MAX_BUCKETS
)


@dataclass(frozen=True, slots=True)
class Defaults:
    """The ``defaults`` section, every field filled in. ``ttl`` and
    ``observer_type`` also apply to names no rule matches."""

    observer_type: ObserverType = ObserverType.SUMMARY
    match_type: MatchType = MatchType.GLOB
    glob_disable_ordering: bool = False
    ttl: float = 0.0  # seconds; 0 = never expire
    histogram: HistogramOptions = DEFAULT_HISTOGRAM
    summary: SummaryOptions = DEFAULT_SUMMARY


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of ``mappings``, resolved against the defaults.

    ``name`` and the label values are still templates (``$1``, ``${2}``,
    regex group names); Match carries them expanded."""

    index: int  # position in the mappings list, 0-based
    line: int  # 1-based line of the entry in the file
    match: str
    match_type: MatchType
    name: str
    labels: tuple[tuple[str, str], ...]
    match_metric_type: Kind | None
    action: Action
    help: str | None
    observer_type: ObserverType
    histogram: HistogramOptions
    summary: SummaryOptions
    ttl: float
    honor_labels: bool
    scale: float | None
    # aerostat's extensions (docs/mapping.md)
    senders: SenderPolicy | None = None
    sender_ttl: float = 60.0
    sender_label: str | None = None
    # set only by a built-in mapping (aerostat.airflow), never from YAML
    built_in: BuiltInRule | None = None


@dataclass(frozen=True, slots=True)
class BuiltInRule:
    """What a built-in mapping knows of a rule that a mapping file cannot
    say: the pipeline applies the first two, a Frontend (aerostat.frontend)
    reads the last two."""

    # tag labels renamed to the mapping's label names (pool_name → pool), so
    # that a name's tagged and dotted forms give the same labels
    label_renames: tuple[tuple[str, str], ...] = ()
    # a counter whose senders also decrement it: each sample moves a gauge
    counter_as_gauge: bool = False
    # the entry the rule was built from and, for names sent twice, which
    # form this is
    origin: str = ""
    twin: str | None = None
    # a per-process counter whose liveness is shown at scrape time: the
    # names of the alive and last-seen gauges, and the silence that means
    # stopped (store.Liveness)
    liveness: tuple[str, str, float] | None = None


def describe_rule(rule: Rule) -> str:
    """Where a rule comes from, as ``aerostat map`` and the status page say it."""
    if rule.built_in is not None and rule.line == 0:
        return f"{rule.match} (built-in Airflow mapping: {rule.built_in.origin})"
    return f"{rule.match} (mapping {rule.index + 1}, line {rule.line})"


@dataclass(frozen=True, slots=True)
class MappingConfig:
    defaults: Defaults
    rules: tuple[Rule, ...]
    source: str

    @classmethod
    def empty(cls) -> MappingConfig:
        """What runs when no mapping file is given: every name unmapped."""
        return cls(Defaults(), (), "<none>")


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that matched a name, with its templates expanded.

    ``name`` is escaped into a Prometheus name and may be empty (a template
    whose references are all empty); the caller counts that. ``labels`` is
    shared with the mapper's cache: read it, copy it before changing it."""

    rule: Rule
    name: str
    labels: dict[str, str]
