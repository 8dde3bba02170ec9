"""The built-in Airflow mapping, generated from the catalog and knowledge.py:
one Prometheus metric per Airflow metric, whatever the release, the emission
mode (plain, InfluxDB or DogStatsD tags) and whether the dotted legacy twin is
sent.

Every wire form of a metric becomes a rule:
* the tagged name (``ti.finish``), an exact glob whose tags become labels,
  renamed to the canonical label names;
* a name with identifiers in it (``ti.finish.{dag_id}.{task_id}.{state}``):
  a glob, and a regex for names whose identifiers hold dots (task groups
  before 3.3); an identifier inside a component (``operator_failures_{x}``)
  needs a regex from the start.
Rules carry ``origin`` (the canonical key) and, for a metric sent twice,
``twin`` ("tagged" or "legacy"); AirflowFrontend decides which twin counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache

from aerostat.airflow import knowledge
from aerostat.airflow.catalog import CatalogEntry, load_catalog
from aerostat.events import Kind
from aerostat.mapper import (
    Action,
    BuiltInRule,
    Defaults,
    HistogramOptions,
    MappingConfig,
    MatchType,
    ObserverType,
    Rule,
)
from aerostat.mapper.rules import DEFAULT_HISTOGRAM, DEFAULT_SUMMARY

PREFIX = "airflow"
SOURCE = "<built-in Airflow mapping>"
_VARIABLE = re.compile(r"\{(\w+)\}")
_KINDS = {"counter": Kind.COUNTER, "gauge": Kind.GAUGE, "timer": Kind.OBSERVER}
TWIN_TAGGED, TWIN_LEGACY = "tagged", "legacy"
# a legacy twin that other releases or set-ups send alone (several executors:
# only executor.open_slots.<Class>; 2.x: dag_processing.last_run.seconds_ago.<file>)
TWIN_LEGACY_ALONE = "legacy_alone"


@dataclass(frozen=True, slots=True)
class WireForm:
    """One way a metric's name arrives, as a rule's match."""

    match: str
    match_type: MatchType
    labels: tuple[tuple[str, str], ...]  # label → template ($1 ...)
    twin: str | None
    scale: float | None = None
    pattern: str = ""  # the catalog pattern it came from


@dataclass(slots=True)
class AirflowMetric:
    """One Prometheus metric of the built-in mapping."""

    key: str
    name: str
    kind: Kind  # what Airflow sends
    type: str  # what Prometheus sees: counter, gauge or histogram
    help: str
    labels: set[str] = field(default_factory=set)
    renames: dict[str, str] = field(default_factory=dict)
    forms: list[WireForm] = field(default_factory=list)
    entries: list[CatalogEntry] = field(default_factory=list)


def canonical_key(pattern: str) -> tuple[str, dict[str, str]]:
    """The key of a catalog name, and the labels its renaming fixes."""
    if pattern in knowledge.KEY_RENAMES:
        return knowledge.KEY_RENAMES[pattern]
    parts = [part for part in pattern.split(".") if not _VARIABLE.fullmatch(part)]
    return ".".join(parts).replace("{job_name}", "job"), {}


def label_for(variable: str) -> str:
    return knowledge.LABELS.get(variable, variable)


def prometheus_name(key: str, kind: Kind) -> str:
    base = PREFIX + "_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
    if kind is Kind.COUNTER and key not in knowledge.COUNTERS_AS_GAUGES:
        return base + "_total"
    if kind is Kind.OBSERVER:
        return base if base.endswith("_seconds") else base + "_seconds"
    return base + knowledge.UNIT_SUFFIXES.get(key, "")


def _tag_renames(entry: CatalogEntry) -> dict[str, str]:
    renames = {tag: knowledge.LABELS[tag] for tag in entry.tags if tag in knowledge.LABELS}
    for tag, label in knowledge.LABELS_IF_ALONE.items():
        if tag in entry.tags and label not in renames.values():
            renames[tag] = label
    return renames


def _forms(pattern: str, fixed: dict[str, str], twin: str | None) -> list[WireForm]:
    """The rules' matches for one wire pattern (without the prefix)."""
    components = pattern.split(".")
    variables = _VARIABLE.findall(pattern)
    labels = dict(fixed)
    if not variables:
        return [WireForm(f"{PREFIX}.{pattern}", MatchType.GLOB, tuple(labels.items()), twin,
                         pattern=pattern)]
    whole = all(_VARIABLE.fullmatch(c) or not _VARIABLE.search(c) for c in components)
    forms = []
    if whole:
        glob = ".".join("*" if _VARIABLE.fullmatch(c) else c for c in components)
        for index, variable in enumerate(variables, start=1):
            labels[label_for(variable)] = f"${index}"
        forms.append(WireForm(f"{PREFIX}.{glob}", MatchType.GLOB, tuple(labels.items()), twin,
                              pattern=pattern))
        dotted = [v for v in knowledge.DOTTED_VARIABLES if v in variables]
        if not dotted:
            return forms
        greedy = dotted[0]
    else:
        greedy = ""
    regex = _regex(pattern, greedy)
    regex_labels = dict(fixed)
    for index, variable in enumerate(variables, start=1):
        regex_labels[label_for(variable)] = f"${index}"
    forms.append(WireForm(regex, MatchType.REGEX, tuple(regex_labels.items()), twin,
                          pattern=pattern))
    return forms


def _regex(pattern: str, greedy: str) -> str:
    out = []
    for piece in re.split(r"(\{\w+\})", f"{PREFIX}.{pattern}"):
        variable = _VARIABLE.fullmatch(piece)
        if variable is None:
            out.append(re.escape(piece))
        elif variable.group(1) == greedy:
            out.append("(.+)")
        else:
            out.append("(" + knowledge.VARIABLE_SYNTAX.get(variable.group(1), "[^.]+") + ")")
    return "^" + "".join(out) + "$"


def _metric_for(metrics: dict[str, AirflowMetric], entry: CatalogEntry) -> tuple[
    AirflowMetric, dict[str, str]
]:
    key, fixed = canonical_key(entry.name)
    kind = _KINDS[entry.type]
    metric = metrics.get(key)
    if metric is None:
        if kind is Kind.OBSERVER:
            prom_type = "histogram"
        elif kind is Kind.COUNTER and key not in knowledge.COUNTERS_AS_GAUGES:
            prom_type = "counter"
        else:
            prom_type = "gauge"
        help_text = knowledge.HELP_OVERRIDES.get(key, entry.description)
        if kind is Kind.OBSERVER:  # Prometheus durations are in seconds
            help_text = re.sub(r"\b[Mm]illiseconds\b", "Seconds", help_text, count=1)
        metric = AirflowMetric(key, prometheus_name(key, kind), kind, prom_type, help_text)
        metrics[key] = metric
    return metric, fixed


@cache
def airflow_metrics() -> tuple[AirflowMetric, ...]:
    """Every metric of the built-in mapping, 3.x entries first so that their
    descriptions win."""
    metrics: dict[str, AirflowMetric] = {}
    catalog = sorted(load_catalog(), key=lambda entry: entry.line != "3.x")
    for entry in catalog:
        metric, fixed = _metric_for(metrics, entry)
        metric.entries.append(entry)
        renames = _tag_renames(entry)
        metric.renames.update(renames)
        metric.labels.update(fixed)
        metric.labels.update(renames.get(tag, tag) for tag in entry.tags)
        metric.labels.update(label_for(v) for v in entry.variables + entry.legacy_variables)
        has_twin = entry.legacy_name is not None and not entry.variables
        _add_forms(metric, _forms(entry.name, fixed, TWIN_TAGGED if has_twin else None))
        if entry.legacy_name is not None:
            legacy = _forms(entry.legacy_name, fixed, TWIN_LEGACY if has_twin else None)
            if entry.legacy_name in knowledge.SECONDS_ON_MS_WIRE:
                legacy = [replace(form, scale=1000.0) for form in legacy]
            _add_forms(metric, legacy)
    return tuple(metrics.values())


def _add_forms(metric: AirflowMetric, forms: Iterable[WireForm]) -> None:
    for form in forms:
        for index, known in enumerate(metric.forms):
            if known.match == form.match:
                # the same name as a legacy twin here and alone elsewhere
                if {known.twin, form.twin} == {None, TWIN_LEGACY}:
                    metric.forms[index] = replace(known, twin=TWIN_LEGACY_ALONE)
                break
        else:
            metric.forms.append(form)


def _rule(
    metric: AirflowMetric, form: WireForm, index: int, sender_ttl: float, heartbeat_ttl: float,
    heartbeat_silence: float = knowledge.HEARTBEAT_SILENCE,
) -> Rule:
    policy = knowledge.SENDERS.get(metric.key)
    if metric.type == "histogram":
        histogram = HistogramOptions(
            knowledge.buckets_for(metric.key),
            DEFAULT_HISTOGRAM.native_histogram_bucket_factor,
            DEFAULT_HISTOGRAM.native_histogram_max_buckets,
        )
    else:
        histogram = DEFAULT_HISTOGRAM
    return Rule(
        index=index,
        line=0,
        match=form.match,
        match_type=form.match_type,
        name=metric.name,
        labels=form.labels,
        match_metric_type=metric.kind,
        action=Action.MAP,
        help=metric.help,
        observer_type=ObserverType.HISTOGRAM,
        histogram=histogram,
        summary=DEFAULT_SUMMARY,
        ttl=0.0,
        honor_labels=False,
        scale=form.scale,
        senders=policy,
        sender_ttl=heartbeat_ttl if metric.key in knowledge.HEARTBEATS else sender_ttl,
        built_in=BuiltInRule(
            label_renames=tuple(sorted(metric.renames.items())),
            counter_as_gauge=metric.key in knowledge.COUNTERS_AS_GAUGES,
            origin=metric.key,
            twin=form.twin,
            liveness=liveness_names(metric.key, heartbeat_silence),
        ),
    )


def liveness_names(key: str, silence: float) -> tuple[str, str, float] | None:
    """airflow_scheduler_alive and airflow_scheduler_last_heartbeat_timestamp_seconds
    for scheduler_heartbeat, and so on for each process kind that beats."""
    if key not in knowledge.HEARTBEATS:
        return None
    process = key.removesuffix("_heartbeat")
    return (f"{PREFIX}_{process}_alive", f"{PREFIX}_{process}_last_heartbeat_timestamp_seconds",
            silence)


def _specificity(form: WireForm) -> tuple[int, int, int]:
    """Exact names first, then globs with fewer stars; regexes keep their
    generation order but the longest literal start goes first."""
    if form.match_type is MatchType.GLOB:
        return (0, form.match.count("*"), 0)
    literal = re.match(r"\^((?:\\.|[^\\(])*)", form.match)
    return (1, 0, -len(literal.group(1)) if literal else 0)


@cache
def airflow_mapping(
    sender_ttl: float = knowledge.GAUGE_SENDER_TTL,
    heartbeat_ttl: float = knowledge.HEARTBEAT_TTL,
    heartbeat_silence: float = knowledge.HEARTBEAT_SILENCE,
) -> MappingConfig:
    """The built-in mapping, as rules for the Mapper. ``sender_ttl``: how
    long a silent process's share of a combined gauge still counts;
    ``heartbeat_ttl``: how long its heartbeat series stays (stopped);
    ``heartbeat_silence``: how long silent before its alive gauge reads 0."""
    forms = [(metric, form) for metric in airflow_metrics() for form in metric.forms]
    forms.sort(key=lambda pair: _specificity(pair[1]))
    rules = tuple(
        _rule(metric, form, index, sender_ttl, heartbeat_ttl, heartbeat_silence)
        for index, (metric, form) in enumerate(forms)
    )
    defaults = Defaults(observer_type=ObserverType.HISTOGRAM)
    return MappingConfig(defaults, rules, SOURCE)


def known_roots() -> tuple[frozenset[str], re.Pattern[str]]:
    """The first components of every Airflow name: what follows a prefix.
    Names whose first component holds an identifier come as a regex."""
    plain: set[str] = set()
    patterns: set[str] = set()
    for metric in airflow_metrics():
        for form in metric.forms:
            first = form.pattern.split(".", 1)[0]
            if _VARIABLE.search(first):
                patterns.add(_regex(first, "").removeprefix("^airflow\\.").removesuffix("$"))
            else:
                plain.add(first)
    return frozenset(plain), re.compile("|".join(sorted(patterns)))


# the one value a label of a counter that may be created before its first
# event can take: since 2.6 every job type sends "job_*" (docs/airflow.md)
_ONLY_VALUE = {"job_name": "job"}
# labels that may be absent from a counter created before its first event:
# team_name comes only from multi-team deployments
_OPTIONAL = frozenset({"team_name"})
BOTH_LINES = "both"


@cache
def counters_before_events() -> dict[str, tuple[str, ...]]:
    """The wire names (``airflow.x``) of the counters that exist at zero as
    soon as a deployment is seen, by the release line that sends them
    ("2.x", "3.x" or both): those whose labels are all optional or take one
    value, so that the series is the one their first event will update."""
    lines: dict[str, list[str]] = {BOTH_LINES: [], "2.x": [], "3.x": []}
    for line, _, wire_name in _counters_ahead():
        lines[line].append(wire_name)
    return {line: tuple(names) for line, names in lines.items()}


def counters_ahead_keys() -> frozenset[str]:
    """The keys of the metrics counters_before_events() creates."""
    return frozenset(key for _, key, _ in _counters_ahead())


@cache
def _counters_ahead() -> tuple[tuple[str, str, str], ...]:
    """(release line, metric key, wire name) of each counter created ahead."""
    found = []
    for metric in airflow_metrics():
        if (metric.type != "counter" or metric.key in knowledge.SENDERS  # heartbeats: per process
                or not metric.labels - _OPTIONAL <= _ONLY_VALUE.keys()):
            continue
        sent_by = _sent_by(metric)
        if not sent_by:
            continue  # listed, but no release line sends it any more
        pattern = metric.entries[0].name
        for variable, value in _ONLY_VALUE.items():
            pattern = pattern.replace("{" + variable + "}", value)
        line = BOTH_LINES if len(sent_by) == 2 else sent_by.pop()
        found.append((line, metric.key, f"{PREFIX}.{pattern}"))
    return tuple(found)


@cache
def release_line_of() -> dict[str, str]:
    """Metric key → the one release line that sends it, for metrics that
    tell a deployment's line apart."""
    found = {}
    for metric in airflow_metrics():
        sent_by = _sent_by(metric)
        if len(sent_by) == 1:
            found[metric.key] = sent_by.pop()
    return found


def _sent_by(metric: AirflowMetric) -> set[str]:
    """The release lines that send a metric: every 2.x entry, and the 3.x
    ones 3.3.2's code was seen to send."""
    return {entry.line for entry in metric.entries if entry.line == "2.x" or entry.emitted}
