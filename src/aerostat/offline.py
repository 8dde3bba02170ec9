"""What ``aerostat map`` and ``aerostat replay`` compute, without sockets:
lines explained one by one, and captures fed through a fresh store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest as generate_text

from aerostat.counters import Telemetry
from aerostat.events import Reason
from aerostat.expose.exposition import format_value, render_store, tidy_values
from aerostat.expose.telemetry import TelemetryCollector
from aerostat.frontend import BuiltIn, build_mapper
from aerostat.mapper import MappingConfig, Rule, describe_rule
from aerostat.parse import Dialects, parse_line
from aerostat.pipeline import DROPPED, DROPPED_TWIN, Pipeline
from aerostat.store import Store


class LineExplainer:
    """Explains lines in order through one pipeline and its own store, so
    that a type conflict between two lines of the same input shows up as it
    would in a server: each event takes ``Pipeline.apply``, the decision
    chain ``serve`` runs, and the report only formats its Outcome."""

    def __init__(
        self, config: MappingConfig, dialects: Dialects, built_in: BuiltIn | None = None
    ) -> None:
        self.pipeline = Pipeline(
            build_mapper(config, built_in, cache_size=0), Store(), Telemetry(), dialects,
            line_cache_size=0, frontend=None if built_in is None else built_in.frontend(),
        )
        self.dialects = dialects

    def explain(self, line: str) -> dict[str, Any]:
        """``{"line", "events": [...], "error": None | reason}``; ``events``
        holds what lands in Prometheus, ``error`` the first refusal."""
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8, kept as surrogates
            shown = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            return {"line": shown, "events": [], "error": Reason.MALFORMED_LINE.value}
        report: dict[str, Any] = {"line": line, "events": [], "error": None}
        parsed = parse_line(line, self.dialects)
        errors: list[str] = [reason.value for reason in parsed.errors]
        if line and not parsed.events and not errors:
            errors.append("no_sample")
        for event in parsed.events:
            outcome = self.pipeline.apply(event, now=1.0)
            resolution = outcome.resolution
            rule = resolution.rule
            if outcome.refusal is not None:
                errors.append(outcome.refusal)
                if outcome.refusal in (DROPPED, DROPPED_TWIN):
                    report["rule"] = _rule_text(rule)
                continue
            assert resolution.spec is not None
            entry: dict[str, Any] = {
                "name": resolution.spec.name,
                "labels": dict(resolution.labels),
                "type": resolution.event.kind.label,
                "value": resolution.value,
            }
            if resolution.event.relative:
                entry["relative"] = True
            if rule is not None:
                entry["rule"] = _rule_text(rule)
            report["events"].append(entry)
        if errors:
            report["error"] = errors[0]
        return report


def _rule_text(rule: Rule | None) -> str | None:
    return None if rule is None else describe_rule(rule)


def describe(report: dict[str, Any]) -> str:
    """The human form of one ``explain`` report."""
    lines = [report["line"]]
    for event in report["events"]:
        labels = ",".join(f'{k}="{v}"' for k, v in event["labels"].items())
        sign = " (relative)" if event.get("relative") else ""
        via = f"  by {event['rule']}" if "rule" in event else "  unmapped"
        lines.append(
            f"  {event['type']:8} {event['name']}{{{labels}}} "
            f"{format_value(event['value'])}{sign}{via}"
        )
    if report["error"] is not None:
        why = report["error"]
        if why == "dropped":
            why = f"dropped by {report.get('rule')}"
        elif why == "dropped_twin":
            why = ("dropped: Airflow sends this event twice and the other form counts it "
                   f"({report.get('rule')})")
        lines.append(f"  refused: {why}")
    return "\n".join(lines)


def read_datagrams(text: str) -> Iterator[tuple[float, bytes]]:
    """(seconds since start, datagram) from a capture: JSON lines whose
    objects carry the datagram in "data" (and its time in "t"), or plain
    StatsD lines, one datagram each."""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("{"):
            try:
                record = json.loads(stripped)
                data = str(record["data"]).encode("utf-8", "surrogateescape")
                yield float(record.get("t", 0.0)), data
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"line {number}: not a capture record ({error})") from None
        else:
            # the bytes as read, invalid UTF-8 included: the pipeline counts it
            yield 0.0, raw.encode("utf-8", "surrogateescape")


def replay(
    datagrams: Iterable[tuple[float, bytes]],
    config: MappingConfig,
    dialects: Dialects,
    built_in: BuiltIn | None = None,
) -> str:
    """Feeds datagrams through a fresh store; returns the text exposition a
    scrape would return after them (statsd metrics and the exporter's own
    counters, without process metrics that would differ run to run)."""
    telemetry = Telemetry()
    mapper = build_mapper(config, built_in)
    telemetry.loaded_mappings = len(mapper.rules)
    store = Store()
    frontend = None if built_in is None else built_in.frontend()
    pipeline = Pipeline(mapper, store, telemetry, dialects, frontend=frontend)
    start = 1_000_000.0  # any origin above zero: the store treats 0 as "never"
    now = start
    for offset, datagram in datagrams:
        now = start + offset
        telemetry.udp_packets += 1
        pipeline.feed(datagram, now)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TelemetryCollector(telemetry))
    own = tidy_values(generate_text(registry).decode("utf-8"))
    return render_store(store, openmetrics=False, now=now) + own


__all__ = ["LineExplainer", "Reason", "describe", "read_datagrams", "replay"]
