"""Scrapes rendered by the event loop, a slice at a time between reads of the
sockets: rendering in the HTTP thread made the reader wait for the GIL after
every recv(), and the kernel dropped datagrams during scrapes
(benchmarks/README.md). The HTTP thread hands a scrape over and waits."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import AnyStr, Generic

from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from aerostat.expose.exposition import Shown, exposition_lines, tidy_values
from aerostat.expose.protobuf import registry_records, store_records
from aerostat.store import Store

# lines of a scrape rendered between two reads of the sockets
RENDER_SLICE = 2000


class _Scrape(Generic[AnyStr]):
    """Lines of text, or delimited protobuf records."""

    __slots__ = ("chunks", "done", "empty", "lines")

    def __init__(self, lines: Iterator[AnyStr], empty: AnyStr) -> None:
        self.lines: Iterator[AnyStr] = lines
        self.empty: AnyStr = empty
        self.chunks: list[AnyStr] = []
        self.done = threading.Event()

    def advance(self) -> bool:
        """Renders one slice; True when the scrape is complete."""
        before = len(self.chunks)
        self.chunks.extend(itertools.islice(self.lines, RENDER_SLICE))
        if len(self.chunks) - before < RENDER_SLICE:
            self.done.set()
            return True
        return False

    def finish(self) -> AnyStr:
        while not self.advance():
            pass
        return self.empty.join(self.chunks)


class Scrapes:
    """The store and the exporter's own registry, rendered on the loop that
    owns them. ``wake`` gets the loop's attention; until ``owner`` is set
    (no loop running) or once ``stopped`` is set, scrapes render in the
    calling thread."""

    def __init__(self, store: Store, registry: CollectorRegistry, wake: Callable[[], None],
                 stopped: threading.Event, created_timestamps: bool = False) -> None:
        self.store = store
        self.registry = registry
        self.wake = wake
        self.stopped = stopped
        self.owner: int | None = None
        self._pending: deque[_Scrape[str] | _Scrape[bytes]] = deque()
        # fixed once: a created timestamp that moved with the wall clock
        # from one scrape to the next would read as a counter reset
        self._created_offset = time.time() - time.monotonic() if created_timestamps else None

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def render(self, openmetrics: bool, scraper: Hashable = None) -> str:
        """The exposition, from any thread. ``scraper`` tells who asks
        (store/hold.py), None when that does not matter."""
        return self._wait(_Scrape(self._lines(openmetrics, scraper), ""))

    def render_protobuf(self, scraper: Hashable = None) -> bytes:
        """The delimited protobuf exposition (expose/protobuf.py), from any
        thread, as ``render``."""
        return self._wait(_Scrape(self._records(scraper), b""))

    def _wait(self, scrape: _Scrape[AnyStr]) -> AnyStr:
        owner = self.owner
        if owner is None or owner == threading.get_ident():
            return scrape.finish()
        self._pending.append(scrape)
        self.wake()
        while not scrape.done.wait(0.5):
            if self.stopped.is_set():  # the loop ended before taking it
                return scrape.finish()
        return scrape.empty.join(scrape.chunks)

    def advance(self) -> None:
        """One slice of the oldest scrape (on the loop)."""
        if self._pending and self._pending[0].advance():
            self._pending.popleft()

    def finish_all(self) -> None:
        while self._pending:
            self._pending.popleft().finish()

    def _lines(self, openmetrics: bool, scraper: Hashable) -> Iterator[str]:
        # runs on the loop, as every reader and writer of the hold
        now = time.monotonic()
        hold = self.store.hold
        shown = Shown(hold.horizon_at(now), self._created_offset,
                      wall_offset=time.time() - now)
        yield from exposition_lines(self.store, openmetrics=openmetrics, now=now, shown=shown)
        generate = generate_openmetrics if openmetrics else generate_text
        # in OpenMetrics, the own output ends with the one # EOF
        own: bytes = generate(self.registry)
        yield tidy_values(own.decode("utf-8"))
        if scraper is not None and hold.enabled:
            hold.scraped(scraper, now)

    def _records(self, scraper: Hashable) -> Iterator[bytes]:
        now = time.monotonic()
        hold = self.store.hold
        shown = Shown(hold.horizon_at(now), None, wall_offset=time.time() - now)
        yield from store_records(self.store, now, shown)
        yield from registry_records(self.registry)
        if scraper is not None and hold.enabled:
            hold.scraped(scraper, now)
