"""What aerostat learns from an Airflow deployment's traffic, to count each
event once and to tell deployments apart (the pipeline's Frontend).

Deployments: ``statsd_prefix = airflow.<deployment>`` (or ``<deployment>``)
puts the deployment's name before the metric; it is moved into a
``deployment`` label and the name continues as ``airflow.<metric>``. A
DogStatsD constant tag ``deployment:<name>`` does the same without a prefix.

Twins: Airflow sends most events twice, under a dotted legacy name with the
identifiers inside (``ti.finish.<dag>.<task>.<state>``) and under a tagged
name (``ti.finish``) whose identifiers travel as tags, or are lost in plain
StatsD. Which one is worth keeping depends on the deployment's settings,
which the traffic shows:
* a tagged name that arrives with its tags proves tags flow: from then on
  the legacy twin of that deployment is dropped (3.2+ with
  ``legacy_names_on = False`` sends no legacy twin at all);
* a legacy name that arrives with tags of its own proves the same (2.x sends
  some legacy names fully tagged; 3.3 adds the tags the name does not hold);
* a tagged name without tags, in a deployment that sends legacy names, is
  dropped: it is the same event as its legacy twin with the identifiers
  lost (some twins, such as dagrun.dependency-check, come tagged name first,
  so the proof is any legacy name of the deployment, not only this metric's).
A verdict that this learning overturns is forgotten from the line cache.
In tagged modes, a legacy line that arrives before any proof is kept; when
the tagged twin that follows it brings the proof, that twin is recognised
(same sender, labels and value) and dropped, so the event counts once.
"""

from __future__ import annotations

from collections.abc import Hashable

from aerostat.airflow import knowledge
from aerostat.airflow.mapping import (
    BOTH_LINES,
    PREFIX,
    TWIN_LEGACY,
    TWIN_LEGACY_ALONE,
    TWIN_TAGGED,
    airflow_metrics,
    counters_before_events,
    known_roots,
    release_line_of,
)
from aerostat.events import Event, Kind
from aerostat.frontend import Resolution, Verdict

DEPLOYMENT = "deployment"
# the deployment of Airflow traffic whose prefix and tags name none, so that
# no alert or panel reads "in deployment  failed"
DEFAULT_DEPLOYMENT = "default"
_LAST_DURATION = f"{PREFIX}.dag_processing.last_duration"


class AirflowFrontend:
    """Learns per deployment; one instance per pipeline."""

    def __init__(self, default_deployment: str = DEFAULT_DEPLOYMENT) -> None:
        self.generation = 0
        self.default_deployment = default_deployment
        # counters that exist at zero once a deployment is seen, by release
        # line; the lines each deployment got; the events that create them
        self._counters_by_line = counters_before_events()
        self._line_of = release_line_of()
        self._created_lines: dict[str, set[str]] = {}
        self._zero_events: list[Event] = []
        self._roots, self._root_patterns = known_roots()
        self._tags_of = {
            metric.key: frozenset(tag for entry in metric.entries for tag in entry.tags)
            for metric in airflow_metrics()
        }
        self._deployments: set[str] = set()  # learned from known metric names
        self._tagged: set[str] = set()  # deployments whose tags flow
        self._legacy: set[str] = set()  # deployments that send legacy names
        self._tagged_metrics: set[tuple[str, str]] = set()
        self._last_repeat: dict[tuple[Hashable, str], float] = {}
        # the last legacy line of each metric kept before the deployment
        # showed any tag: its tagged twin, if it follows, is the same event
        self._unproven_legacy: dict[tuple[Hashable, str], tuple[object, float]] = {}
        # the bundles each DAG processor has reported parse times for, and
        # the group of the summed DAG-processor totals it belongs to
        self._bundles: dict[Hashable, set[str]] = {}
        self._partitions: dict[Hashable, str] = {}
        # DAG processors that ran a file's callbacks alone since their last
        # totals, and the totals they last reported (see knowledge,
        # ZEROED_BY_CALLBACK_ONLY_RUNS)
        self._callback_only: set[tuple[Hashable, str]] = set()
        self._totals: dict[tuple[Hashable, str], float] = {}

    def _is_root(self, component: str) -> bool:
        return component in self._roots or self._root_patterns.fullmatch(component) is not None

    def prepare(self, event: Event) -> Event:
        name, labels = self._deployment(event)
        factor = 1.0
        if name == _LAST_DURATION and ("bundle_name" in labels or "file_name" not in labels):
            # 3.2+ sends seconds as milliseconds; 2.x's tagged form (file_name
            # alone) was right; plain 3.2+ without legacy names sends no tags
            factor = 1000.0
        if name is event.name and factor == 1.0 and labels is event.labels:
            return event
        buckets = event.buckets  # counted by bucket (OTLP): the same unit as the value
        if buckets is not None and factor != 1.0:
            buckets = buckets.scaled(factor)
        return Event(event.kind, name, event.value * factor, labels, event.relative,
                     event.weight, buckets)

    def _deployment(self, event: Event) -> tuple[str, dict[str, str]]:
        """The name without a deployment, and the labels with it."""
        first, _, after = event.name.partition(".")
        second, _, rest = after.partition(".")
        if not second:
            return event.name, event.labels
        if first == PREFIX and self._is_root(second):
            labels = event.labels
            if DEPLOYMENT not in labels:
                labels = {**labels, DEPLOYMENT: self.default_deployment}
            return event.name, labels
        if first == PREFIX and not rest:
            return event.name, event.labels
        known = second in self._deployments
        if first == PREFIX and (known or self._is_root(rest.partition(".")[0])):
            deployment = second
        elif first != PREFIX and self._is_root(second):
            deployment, rest = first, after
        else:
            return event.name, event.labels
        self._deployments.add(deployment)
        labels = event.labels
        if DEPLOYMENT not in labels:
            labels = {**labels, DEPLOYMENT: deployment}
        return f"{PREFIX}.{rest}", labels

    def admit(self, resolution: Resolution) -> Verdict:
        assert resolution.rule is not None and resolution.rule.built_in is not None
        if resolution.rule.built_in.origin != knowledge.CALLBACK_ONLY_RUN:
            return self._admit(resolution)
        self._callback_only.update(
            (resolution.sender, total) for total in knowledge.ZEROED_BY_CALLBACK_ONLY_RUNS)
        # each one must reach the frontend: not cached by its bytes
        return self._admit(resolution)._replace(cacheable=False)

    def _admit(self, resolution: Resolution) -> Verdict:
        event, sender = resolution.event, resolution.sender
        assert resolution.rule is not None and resolution.rule.built_in is not None
        rule = resolution.rule.built_in
        key = rule.origin
        deployment = event.labels.get(DEPLOYMENT, "")
        self._create_counters(deployment, key)
        if key in knowledge.BUNDLE_SOURCES:
            self._learn_bundle(sender, dict(resolution.labels).get("bundle"))
        elif key in knowledge.SUMMED_OVER_PARTITIONS:
            if key in knowledge.ZEROED_BY_CALLBACK_ONLY_RUNS:
                return self._total_of_loop(sender, key, resolution.value)
            return Verdict(True, groups=self._partitions)
        tagged = any(tag in event.labels for tag in self._tags_of.get(key, ()))
        if rule.twin == TWIN_TAGGED:
            if tagged:
                first_proof = (deployment, key) not in self._tagged_metrics
                self._learn_tagged(deployment, key)
                if first_proof and self._unproven_legacy.pop((sender, key), None) == (
                    _as_in_legacy_names(resolution.labels), resolution.value
                ):
                    # the event its legacy twin, kept for want of proof,
                    # counted just before
                    return Verdict(False, cacheable=False)
                return Verdict(True)
            return Verdict(deployment not in self._legacy)
        if rule.twin in (TWIN_LEGACY, TWIN_LEGACY_ALONE):
            if tagged and deployment not in self._tagged:
                self._tagged.add(deployment)
                self.generation += 1
            if deployment not in self._legacy:
                self._legacy.add(deployment)
                self.generation += 1  # the untagged twins, if kept so far, go
            # a name some set-ups send alone goes only once its own tagged
            # twin has shown up
            proven = (deployment, key) in self._tagged_metrics or (
                deployment in self._tagged and rule.twin == TWIN_LEGACY
            )
            if proven:
                return Verdict(False)
            if key in knowledge.REPEATED_LEGACY:
                return Verdict(self._first_of_repeat(sender, event), cacheable=False)
            if rule.twin == TWIN_LEGACY and deployment not in self._tagged:
                self._unproven_legacy[(sender, key)] = (
                    _as_in_legacy_names(resolution.labels), resolution.value
                )
        return Verdict(True)

    def take_zero_events(self) -> list[Event]:
        """Counters of deployments first seen since the last call, as events
        of value 0 and weight 0: the pipeline applies them through the
        mapping (a user's rule may rename or drop them) without counting
        them as traffic. Their series exist before their first event, so
        that panels of rare events show 0, not "No data"."""
        events, self._zero_events = self._zero_events, []
        return events

    def _create_counters(self, deployment: str, key: str) -> None:
        created = self._created_lines.get(deployment)
        if created is None:
            created = self._created_lines[deployment] = set()
        line = self._line_of.get(key)
        for wanted in (BOTH_LINES, line):
            if wanted is None or wanted in created:
                continue
            created.add(wanted)
            labels = {DEPLOYMENT: deployment} if deployment else {}
            self._zero_events.extend(
                Event(Kind.COUNTER, name, 0.0, dict(labels), weight=0)
                for name in self._counters_by_line[wanted])

    def _total_of_loop(self, sender: Hashable, key: str, value: float) -> Verdict:
        """A DAG processor's total for its last parse loop; lower than the
        one before after a callback-only run, it is the artefact of that
        run (the file counted empty), and the total before it stands. The
        loop after shows the file again once it is parsed, or the drop, if
        it was real, one loop late."""
        slot = (sender, key)
        before = self._totals.get(slot)
        if slot in self._callback_only:
            self._callback_only.discard(slot)
            if before is not None and value < before:
                return Verdict(True, cacheable=False, groups=self._partitions, value=before)
        self._totals[slot] = value
        return Verdict(True, cacheable=False, groups=self._partitions)

    def _learn_bundle(self, sender: Hashable, bundle: str | None) -> None:
        """A DAG processor's totals cover the bundles it parses: processors
        of the same bundles (replicas) form one group of the sum."""
        if not bundle:
            return
        bundles = self._bundles.setdefault(sender, set())
        if bundle not in bundles:
            bundles.add(bundle)
            self._partitions[sender] = "bundles:" + ",".join(sorted(bundles))

    def _learn_tagged(self, deployment: str, key: str) -> None:
        if (deployment, key) in self._tagged_metrics:
            return
        self._tagged_metrics.add((deployment, key))
        self._tagged.add(deployment)
        self.generation += 1

    def _first_of_repeat(self, sender: Hashable, event: Event) -> bool:
        """False for the second of two identical lines from one sender."""
        slot = (sender, event.name)
        if self._last_repeat.get(slot) == event.value:
            del self._last_repeat[slot]
            return False
        self._last_repeat[slot] = event.value
        return True


def _as_in_legacy_names(labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Labels as 3.3 writes identifiers into legacy names (a dot as "__"), so
    that an event's two forms compare equal."""
    return tuple((name, value.replace(".", "__")) for name, value in labels)
