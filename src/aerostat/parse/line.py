"""One StatsD line to events, with statsd_exporter's semantics.

``name[tags]:value|type[|@rate][|#tags][|c:container][|T<ts>][:value|type…]``

The algorithm and its reasons follow statsd_exporter's pkg/line (see
docs/protocol.md); where aerostat refuses input upstream accepts, the line is
marked ``# deviation:`` and listed in docs/deviations.md."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from aerostat.events import Event, Kind, Reason
from aerostat.parse.tags import parse_dogstatsd_tags, split_name_tags

# Go's strconv.ParseFloat syntax: no whitespace, no underscores in decimals,
# hexadecimal mantissas need a binary exponent.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?").fullmatch
_HEXADECIMAL = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+"
).fullmatch
_NON_FINITE = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE).fullmatch

_OBSERVER_TYPES = frozenset(("ms", "h", "d"))


@dataclass(frozen=True, slots=True)
class Dialects:
    """Which tag dialects are parsed (statsd_exporter's four
    ``--statsd.parse-*-tags`` flags, all on by default)."""

    dogstatsd: bool = True
    influxdb: bool = True
    librato: bool = True
    signalfx: bool = True


@dataclass(slots=True)
class ParsedLine:
    """What one line produced: its events, and the bookkeeping the exporter's
    own metrics are made of (samples seen, refusals by reason, tag counts)."""

    events: list[Event] = field(default_factory=list)
    errors: list[Reason] = field(default_factory=list)
    samples: int = 0
    tagged_samples: int = 0
    tag_errors: int = 0
    # what the raw value of the last sample was divided by (sample rate of a
    # counter, 1000 for a timer): the pipeline's line cache reuses it
    divisor: float = 1.0


def parse_value(text: str) -> float | Reason:
    """A sample value as Go's ParseFloat reads it; infinities and NaN are
    refused (deviation: upstream stores them, and one NaN poisons a counter
    for the life of the process)."""
    if _DECIMAL(text):
        value = float(text)
    elif _HEXADECIMAL(text):
        sign = -1.0 if text.startswith("-") else 1.0
        value = sign * float.fromhex(text.lstrip("+-"))
    elif _NON_FINITE(text):
        return Reason.NON_FINITE_VALUE
    else:
        return Reason.MALFORMED_VALUE
    if not math.isfinite(value):  # 1e999 overflows to infinity
        return Reason.NON_FINITE_VALUE
    return value


# the smallest sample rate taken: below it one sample would stand for more
# observations than a float counts exactly (2**53), and 1/rate overflows
# for subnormal rates (an observer at @1e-320 once raised OverflowError)
MIN_SAMPLE_RATE = 2.0**-53


def _parse_rate(text: str) -> float | None:
    """The factor of ``@rate``; None when it is unusable."""
    rate = parse_value(text)
    if isinstance(rate, Reason):
        return None
    # deviation: upstream takes rates above 1 or below 0 at face value, which
    # turns a counter increment into a fraction and an observation into none.
    if rate == 0.0:
        return 1.0  # as upstream: a zero rate means "not sampled"
    if not 0.0 < rate <= 1.0:
        return None
    return rate


def _split_samples(rest: str, has_name_tags: bool, result: ParsedLine) -> list[str] | None:
    """The samples of a line, from the text after the name's colon."""
    parts = rest.split("|", 2)
    if len(parts) < 2:
        result.errors.append(Reason.NOT_ENOUGH_PARTS_AFTER_COLON)
        return None
    values = parts[0]
    if ":" in values:
        # DogStatsD extended aggregation: t:1:2:3|ms shares one suffix
        if parts[1] not in _OBSERVER_TYPES:
            result.errors.append(Reason.INVALID_EXTENDED_AGGREGATE_TYPE)
            return None
        suffix = rest[len(values) :]
        return [value + suffix for value in values.split(":")]
    if "|#" in rest:
        if has_name_tags:
            result.errors.append(Reason.MIXED_TAGGING_STYLES)
            return None
        # DogStatsD tags may contain ':' so such a line holds one sample
        return [rest]
    return rest.split(":")


def parse_line(line: str, dialects: Dialects = Dialects()) -> ParsedLine:
    """Parses one line (without its newline). Invalid UTF-8 must already have
    been refused by the caller (upstream counts it as ``malformed_line``)."""
    result = ParsedLine()
    if not line:
        return result
    name_part, colon, rest = line.partition(":")
    if not colon or not name_part:
        result.errors.append(Reason.MALFORMED_LINE)
        return result

    labels: dict[str, str] = {}
    name, tag_errors = split_name_tags(
        name_part,
        labels,
        signalfx=dialects.signalfx,
        influxdb=dialects.influxdb,
        librato=dialects.librato,
    )
    result.tag_errors += tag_errors
    samples = _split_samples(rest, bool(labels), result)
    if samples is None:
        return result

    for sample in samples:
        _parse_sample(sample, name, labels, dialects, result)
    return result


def _parse_sample(
    sample: str,
    name: str,
    labels: dict[str, str],
    dialects: Dialects,
    result: ParsedLine,
) -> None:
    result.samples += 1
    components = sample.split("|")
    if not 2 <= len(components) <= 6:
        result.errors.append(Reason.MALFORMED_COMPONENT)
        return
    value_text, stat_type = components[0], components[1]
    value = parse_value(value_text)
    if isinstance(value, Reason):
        result.errors.append(value)
        return
    relative = value_text[:1] in ("+", "-")

    extras = components[2:]
    if "" in extras:
        result.errors.append(Reason.MALFORMED_COMPONENT)
        return
    weight = 1
    divisor = 1.0
    for extra in extras:
        marker = extra[0]
        if marker == "@":
            rate = _parse_rate(extra[1:])
            if rate is None:
                # as upstream: counted, and the sample is kept unsampled
                result.errors.append(Reason.INVALID_SAMPLE_FACTOR)
                rate = 1.0
            elif rate < MIN_SAMPLE_RATE:
                # deviation: upstream repeats the event int(1/rate) times,
                # so one datagram can cost seconds; such a rate is refused
                result.errors.append(Reason.INVALID_SAMPLE_FACTOR)
                return
            if stat_type == "c":
                divisor = rate
            elif stat_type in _OBSERVER_TYPES:
                # as upstream, int(1/rate) observations, but as one weight
                weight = int(1.0 / rate)
        elif marker == "#":
            if dialects.dogstatsd:
                result.tag_errors += parse_dogstatsd_tags(extra[1:], labels)
        elif marker == "c":
            # DogStatsD 1.2 container id: c:<id>
            if len(extra) < 3 or extra[1] != ":":
                result.errors.append(Reason.MALFORMED_CONTAINER_ID)
                return
            labels["container_id"] = extra[2:]
        elif marker == "T":
            pass  # DogStatsD timestamps: Prometheus stamps at scrape time
        else:
            result.errors.append(Reason.INVALID_SAMPLE_FACTOR)
            return

    if labels:
        result.tagged_samples += 1
    if stat_type == "c":
        kind = Kind.COUNTER
    elif stat_type == "g":
        kind = Kind.GAUGE
    elif stat_type == "ms":
        kind = Kind.OBSERVER
        divisor = 1000.0
    elif stat_type in ("h", "d"):
        kind = Kind.OBSERVER
    else:
        # sets (|s) included: without a flush interval there is no window
        # to count distinct values in (see docs/protocol.md)
        result.errors.append(Reason.ILLEGAL_EVENT)
        return
    value /= divisor
    if value - value != 0.0:  # a finite value over a tiny rate overflows
        result.errors.append(Reason.NON_FINITE_VALUE)
        return
    result.divisor = divisor
    result.events.append(
        Event(kind, name, value, dict(labels), relative and kind is Kind.GAUGE, weight)
    )
