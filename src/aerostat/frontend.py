"""The seam a kind of sender plugs into the pipeline: a ``Frontend`` sees
each event before it is mapped and each mapped ``Resolution`` before it
lands, and a ``BuiltIn`` mapping comes with the frontend that goes with it.
aerostat.airflow is one; the pipeline knows this module, never Airflow."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from aerostat.events import Event, Reason
from aerostat.mapper import Mapper, MappingConfig, Rule
from aerostat.store import FamilySpec, LabelPairs


class Resolution(NamedTuple):
    """Where one event goes: pure, from the event and the mapping alone.
    perf: a NamedTuple, as FamilySpec: a frozen dataclass cost 1 µs more to
    make, and a new name makes one of each (about 17 µs a line in all)."""

    event: Event
    rule: Rule | None
    dropped: bool = False
    spec: FamilySpec | None = None
    labels: LabelPairs = ()
    value: float = 0.0
    scale: float = 1.0
    ttl: float = 0.0
    error: Reason | None = None
    # who sent it, for rules with a sender policy; a line whose sender is
    # part of its series (a label) cannot be cached by its bytes alone
    sender: Hashable = None
    cacheable: bool = True


class Verdict(NamedTuple):
    """A Frontend's answer on one mapped event."""

    keep: bool
    cacheable: bool = True  # whether the answer may be cached with the line's bytes
    # for a gauge summed over senders: which senders share one share of the
    # sum (replicas), sender → group, kept up to date by the frontend
    groups: Mapping[Hashable, Hashable] | None = None


class Frontend(Protocol):
    """What the stages cannot know about one kind of sender (Airflow: see
    aerostat.airflow): it may rewrite an event before mapping (a deployment
    named in the prefix becomes a label), refuse a mapped event that repeats
    one it already let through (a name Airflow sends twice), and say which
    senders of a summed gauge are replicas of each other.

    Lines it admitted or refused are cached like any other; when what it
    learned overturns earlier verdicts it bumps ``generation``, and the
    pipeline forgets its line cache."""

    generation: int

    def prepare(self, event: Event) -> Event: ...

    def admit(self, resolution: Resolution) -> Verdict: ...

    # series it wants to exist before their first event: events of weight
    # 0 that the pipeline applies, without counting them as traffic
    def take_zero_events(self) -> list[Event]: ...


@dataclass(frozen=True, slots=True)
class BuiltIn:
    """A built-in mapping that sits under the user's file, and the frontend
    that goes with it (``aerostat serve --airflow``)."""

    config: MappingConfig
    frontend: Callable[[], Frontend]

    def mapper(self, user: MappingConfig, cache_size: int = 1000) -> Mapper:
        return Mapper(user, cache_size, base=Mapper(self.config, cache_size=0))


def build_mapper(
    config: MappingConfig, built_in: BuiltIn | None = None, cache_size: int = 1000
) -> Mapper:
    """The one way a mapper is made: the user's file, over the built-in
    mapping if there is one (serve, map and replay alike)."""
    if built_in is None:
        return Mapper(config, cache_size)
    return built_in.mapper(config, cache_size)
