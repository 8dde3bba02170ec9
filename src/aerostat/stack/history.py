"""The demo's past hour: what aerostat would have exposed, scrape by scrape,
had the bundled capture been replayed into it for the last hour, written as
OpenMetrics with timestamps for ``promtool tsdb create-blocks-from
openmetrics`` to turn into blocks of Prometheus's own format.

The samples come from the live exporter's own pipeline and store, on a
clock that runs the hour in a few seconds: the same mapping, the same series,
and the store ends the hour holding the counters the live replay then
carries on from, so that Prometheus sees one unbroken series per name (no
reset at the seam for increase() and rate() to misread).

Pure but for the one promtool call in ``write_blocks``."""

from __future__ import annotations

import math
import re
import subprocess
from array import array
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aerostat.counters import Telemetry
from aerostat.errors import AerostatError
from aerostat.expose.exposition import Shown, exposition_lines
from aerostat.pipeline import Pipeline

HISTORY_SECONDS = 3600.0
_TARGET_LABEL = re.compile(r'(^|",)(job|instance)="')


@dataclass(frozen=True)
class Timeline:
    """Where the replayed passes and the scrapes fall on the exporter's
    monotonic clock: whole passes of the capture, the last one ending at
    ``end``, as many as cover ``seconds``."""

    datagrams: Sequence[tuple[float, bytes]]
    end: float
    seconds: float = HISTORY_SECONDS
    step: float = 5.0

    @property
    def pass_seconds(self) -> float:
        """One pass as CaptureReplay sends it at the recorded pace: the
        capture, then a pause of the mean gap between two datagrams."""
        first, last = self.datagrams[0][0], self.datagrams[-1][0]
        return (last - first) * (1 + 1 / max(1, len(self.datagrams) - 1))

    @property
    def passes(self) -> int:
        # the exporter's clock starts near the machine's boot: never before it
        fits = int((self.end - 1.0) // self.pass_seconds)
        return max(0, min(math.ceil(self.seconds / self.pass_seconds), fits))

    @property
    def start(self) -> float:
        return self.end - self.passes * self.pass_seconds

    def sends(self) -> Iterator[tuple[float, bytes]]:
        first = self.datagrams[0][0]
        for number in range(self.passes):
            begins = self.start + number * self.pass_seconds
            for offset, data in self.datagrams:
                yield begins + offset - first, data

    def scrapes(self) -> list[float]:
        """Every ``step`` back from ``end`` (the last scrape) to ``start``."""
        count = int((self.end - self.start) // self.step)
        return [self.end - k * self.step for k in range(count, -1, -1)]


@dataclass
class _Family:
    """A family's metadata, and per series (its line up to the value, the
    target's labels in) the scrapes it appeared in and its values there:
    an hour of samples in a few bytes each, not a line each."""

    metadata: list[str]
    series: dict[str, tuple[array[int], list[str]]] = field(default_factory=dict)


def history_openmetrics(
    pipeline: Pipeline, timeline: Timeline, sender: Hashable, wall_offset: float,
    target_labels: dict[str, str], out: TextIO,
) -> int:
    """Feeds the timeline's sends through a pipeline over ``pipeline``'s
    store, mapper and frontend (its own telemetry: the exporter's counters
    of what it received stay true), renders the store at each scrape as
    Prometheus would have stored it (``target_labels`` added, as the scrape
    adds job and instance), and writes it to ``out`` as OpenMetrics with
    each sample's Unix time (monotonic + ``wall_offset``); returns the
    number of samples."""
    fed = Pipeline(pipeline.mapper, pipeline.store, Telemetry(), pipeline.dialects,
                   pipeline.line_cache_size, pipeline.default_ttl, pipeline.frontend,
                   pipeline.limits)
    extra = ",".join(f'{key}="{value}"' for key, value in target_labels.items())
    families: dict[str, _Family] = {}
    up_head = _with_labels("up", extra)
    up = _Family(["# HELP up 1 when the target was scraped.\n", "# TYPE up gauge\n"],
                 {up_head: (array("i"), [])})
    sends = timeline.sends()
    pending = next(sends, None)
    previous = -math.inf
    heads: dict[str, str] = {}
    texts: dict[str, str] = {}  # one string per distinct value
    scrapes = timeline.scrapes()
    for index, now in enumerate(scrapes):
        # a datagram sent at a scrape's instant arrives after it
        while pending is not None and pending[0] < now:
            fed.feed(pending[1], pending[0], sender)
            pending = next(sends, None)
        # what the hold shows a scraper every `step`: a series born since
        # the previous scrape shows zero first (store/hold.py)
        shown = Shown(horizon=previous, wall_offset=wall_offset)
        current: _Family | None = None
        for chunk in exposition_lines(pipeline.store, openmetrics=True, now=now, shown=shown):
            for line in chunk.splitlines():
                if line.startswith("#"):
                    if line == "# EOF":
                        continue
                    name = line.split(" ", 3)[2]
                    current = families.get(name)
                    if current is None:
                        current = families[name] = _Family([])
                    if not current.series and line + "\n" not in current.metadata:
                        current.metadata.append(line + "\n")
                    continue
                if current is None or not line:
                    continue
                # a series' name and labels repeat scrape after scrape
                head, _, value = line.rpartition(" ")
                labelled = heads.get(head)
                if labelled is None:
                    labelled = heads[head] = _with_labels(head, extra)
                found = current.series.get(labelled)
                if found is None:
                    found = current.series[labelled] = (array("i"), [])
                found[0].append(index)
                found[1].append(texts.setdefault(value, value))
        up.series[up_head][0].append(index)
        up.series[up_head][1].append("1")
        previous = now
    # OpenMetrics keeps a family's lines together, so they are written
    # only once every scrape is in: per series, in time order
    stamps = [f" {now + wall_offset:.3f}\n" for now in scrapes]
    count = 0
    for family in (*families.values(), up):
        out.writelines(family.metadata)
        for head, (indices, values) in family.series.items():
            out.writelines(f"{head} {value}{stamps[index]}"
                           for index, value in zip(indices, values, strict=True))
            count += len(values)
    out.write("# EOF\n")
    return count


def _with_labels(head: str, extra: str) -> str:
    """A sample's name and labels with the target's labels added (label
    values may hold spaces and braces, but end in a quote)."""
    if head.endswith("}"):
        brace = head.index("{")
        # Prometheus keeps an exposed job or instance as exported_<name>
        inner = _TARGET_LABEL.sub(r'\1exported_\2="', head[brace + 1:-1])
        return f"{head[:brace]}{{{inner},{extra}}}"
    return f"{head}{{{extra}}}"


def write_blocks(promtool: str, openmetrics: Path, data_dir: Path) -> None:
    """``promtool tsdb create-blocks-from openmetrics`` into ``data_dir``,
    which the Prometheus about to start then opens with the blocks in it."""
    try:
        done = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
             str(openmetrics), str(data_dir)],
            capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise AerostatError(f"promtool could not backfill the demo's history: {error}",
                            source=promtool) from None
    if done.returncode != 0:
        raise AerostatError(
            "promtool could not backfill the demo's history: "
            f"{(done.stderr or done.stdout).strip()}", source=str(openmetrics))
