"""The seam a kind of sender plugs into the pipeline: a ``Frontend`` sees
each event before it is mapped and each mapped ``Resolution`` before it
lands, and a ``BuiltIn`` mapping comes with the frontend that goes with it.
aerostat.airflow is one; the pipeline knows this module, never Airflow."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

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
    # the value the series takes instead of the event's, when the frontend
    # knows the sender reported a wrong one (never cached)
    value: float | None = None


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


# a source that reads totals rather than events (Airflow's REST API) hands
# them over as an Event whose value is the total its counter should reach at
# least, with the time and the value the counter showed after the source's
# last top-up (a counter that shows less was let go and made again: it is
# left alone); the pipeline answers the counter's value before and after,
# or None when the event maps to no counter
TopUp = Callable[[Event, float, float], "tuple[float, float] | None"]


class Extra(NamedTuple):
    """Sources a built-in mapping adds beside the StatsD sockets (run like
    them by the server: register, tick, drain, close), and a collector for
    what they show at a scrape (prometheus_client's Collector)."""

    sources: list[Any]
    collector: Any


@dataclass(frozen=True, slots=True)
class BuiltIn:
    """A built-in mapping that sits under the user's file, the frontend
    that goes with it (``aerostat serve --airflow``), and the sources it
    adds (``--airflow.api-url``), made once the pipeline exists."""

    config: MappingConfig
    frontend: Callable[[], Frontend]
    extra: Callable[[TopUp], Extra] | None = None

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
