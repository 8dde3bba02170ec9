"""The store rendered as Prometheus text format 0.0.4 or OpenMetrics 1.0.

Hand-written rather than built from prometheus_client's Metric objects so
that a scrape only joins label strings rendered once per series:
# perf: 4 ms against 46 ms for 10,000 series, 59 ms against 581 ms for
# 100,000 (benchmarks/bench_stages.py). The output of both formats
is checked against prometheus_client's parsers and ``promtool check
metrics`` in the tests."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Iterator
from decimal import Decimal
from typing import NamedTuple

from aerostat.store import (
    BY_SENDER,
    Family,
    HistogramSeries,
    Liveness,
    MetricType,
    ScalarSeries,
    SenderGaugeSeries,
    Series,
    Store,
    SummarySeries,
    sender_text,
)
from aerostat.store.series import escape_label_value

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def format_value(value: float) -> str:
    """A float as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, so
    aerostat's output reads like statsd_exporter's."""
    if value.is_integer() and -1e6 < value < 1e6:
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if not 1e6 <= abs(value) < 1e16:
        return repr(value)  # same digits and exponent style as Go here
    # between 1e6 and 1e16 Python writes fixed point, Go an exponent
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    power = len(mantissa) - 1 + exponent
    head = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    return f"{'-' if sign else ''}{head}e+{power:02d}"


def tidy_values(text: str) -> str:
    """The exporter's own lines as prometheus_client writes them (every
    value a Python float: ``16.0``, ``1.7964974939e+09``) with each value as
    ``format_value`` writes the store's (``16``), so that one scrape reads
    alike throughout. Comments and lines whose last field is no number
    (none of aerostat's own) pass unchanged."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or " " not in line:
            lines.append(line)
            continue
        head, _, value = line.rstrip("\n").rpartition(" ")
        try:
            number = float(value)
        except ValueError:
            lines.append(line)
            continue
        lines.append(f"{head} {format_value(number)}\n")
    return "".join(lines)


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def _with_label(labels_text: str, name: str, value: str) -> str:
    if labels_text:
        return f'{labels_text[:-1]},{name}="{value}"}}'
    return f'{{{name}="{value}"}}'


class Shown(NamedTuple):
    """What a scrape shows beyond the values: series born at or after
    ``horizon`` (monotonic) show zero (store/hold.py), and with
    ``created_offset`` (Unix time minus monotonic time) OpenMetrics gets
    each counter's, histogram's and summary's ``_created``."""

    horizon: float = math.inf
    created_offset: float | None = None
    # Unix time minus monotonic time: when a process was last heard, in
    # the gauges of a family's Liveness
    wall_offset: float = 0.0


EVERYTHING = Shown()


def _family_lines(
    family: Family, openmetrics: bool, now: float, shown: Shown = EVERYTHING
) -> Iterable[str]:
    spec = family.spec
    name = spec.name
    type_name = spec.type.value
    exposed = name
    horizon = shown.horizon
    # OpenMetrics only, and only where the format defines it
    created = shown.created_offset if openmetrics else None
    if openmetrics and spec.type is MetricType.COUNTER:
        if name.endswith("_total"):
            exposed = name[: -len("_total")]
        else:
            created = None
            # deviation: OpenMetrics counters must end in _total; a counter
            # called foo stays the series foo, typed unknown, so dashboards
            # see the same name whichever format Prometheus negotiates.
            type_name = "unknown"
    yield f"# HELP {exposed} {_escape_help(spec.help, openmetrics)}\n"
    yield f"# TYPE {exposed} {type_name}\n"
    series_list = list(family.series.values())
    if spec.senders:
        yield from _sender_gauge_lines(family, series_list, openmetrics, now)
    elif spec.type is MetricType.GAUGE:
        for series in series_list:
            assert isinstance(series, ScalarSeries)
            yield f"{name}{series.labels_text} {format_value(series.value)}\n"
    elif spec.type is MetricType.COUNTER:
        for series in series_list:
            assert isinstance(series, ScalarSeries)
            text = format_value(series.value) if series.born < horizon else "0"
            yield f"{name}{series.labels_text} {text}\n"
            if created is not None:
                yield f"{exposed}_created{series.labels_text} {_created(series.born, created)}\n"
        if spec.liveness is not None:
            yield from _liveness_lines(spec.liveness, series_list, openmetrics, now, shown)
    elif spec.type is MetricType.HISTOGRAM:
        bounds = [format_value(b) for b in spec.buckets] + ["+Inf"]
        # deviation: OpenMetrics forbids a _sum that is negative or that sits
        # beside negative buckets, and _count without _sum; such a histogram
        # is sent as its buckets alone (the +Inf bucket is its count)
        negative_buckets = bool(spec.buckets) and spec.buckets[0] < 0
        if openmetrics:
            bounds = [_openmetrics_bound(b) for b in spec.buckets] + ["+Inf"]
        for series in series_list:
            assert isinstance(series, HistogramSeries)
            labels_text = series.labels_text
            held = series.born >= horizon
            counts = [0] * len(bounds) if held else series.counts
            cumulative = 0
            for bound, count in zip(bounds, counts, strict=True):
                cumulative += count
                yield f"{name}_bucket{_with_label(labels_text, 'le', bound)} {cumulative}\n"
            if held:
                yield f"{name}_sum{labels_text} 0\n"
                yield f"{name}_count{labels_text} 0\n"
            elif not (openmetrics and (negative_buckets or series.sum < 0)):
                yield f"{name}_sum{labels_text} {format_value(series.sum)}\n"
                yield f"{name}_count{labels_text} {series.count}\n"
            if created is not None:
                yield f"{name}_created{labels_text} {_created(series.born, created)}\n"
    else:
        quantile_names = [format_value(q) for q in spec.quantiles]
        for series in series_list:
            assert isinstance(series, SummarySeries)
            labels_text = series.labels_text
            if series.born >= horizon:
                for quantile in quantile_names:
                    yield f"{name}{_with_label(labels_text, 'quantile', quantile)} NaN\n"
                yield f"{name}_sum{labels_text} 0\n"
                yield f"{name}_count{labels_text} 0\n"
                if created is not None:
                    yield f"{name}_created{labels_text} {_created(series.born, created)}\n"
                continue
            values = series.quantile_values(now)
            for quantile, value in zip(quantile_names, values, strict=True):
                if openmetrics and value < 0:
                    continue  # deviation: OpenMetrics quantiles are never negative
                yield (
                    f"{name}{_with_label(labels_text, 'quantile', quantile)} "
                    f"{format_value(value)}\n"
                )
            if not (openmetrics and series.sum < 0):
                yield f"{name}_sum{labels_text} {format_value(series.sum)}\n"
            yield f"{name}_count{labels_text} {series.count}\n"
            if created is not None:
                yield f"{name}_created{labels_text} {_created(series.born, created)}\n"


def _liveness_lines(liveness: Liveness, series_list: list[Series], openmetrics: bool,
                    now: float, shown: Shown) -> Iterator[str]:
    """Whether each process of a per-process counter still sends, and when it
    last did: in one scrape, which process stopped and since when."""
    silence = liveness.silence
    what = (f"1 while the process sent within the last {format_value(silence)} s, "
            "else 0; a stopped process stays at 0 until its series expires.")
    yield f"# HELP {liveness.alive} {_escape_help(what, openmetrics)}\n"
    yield f"# TYPE {liveness.alive} gauge\n"
    for series in series_list:
        alive = "1" if now - series.updated <= silence else "0"
        yield f"{liveness.alive}{series.labels_text} {alive}\n"
    what = "When the process last sent, in Unix seconds."
    yield f"# HELP {liveness.last_seen} {_escape_help(what, openmetrics)}\n"
    yield f"# TYPE {liveness.last_seen} gauge\n"
    offset = shown.wall_offset
    for series in series_list:
        yield f"{liveness.last_seen}{series.labels_text} {series.updated + offset:.3f}\n"


def _sender_gauge_lines(
    family: Family, series_list: list[Series], openmetrics: bool, now: float
) -> Iterator[str]:
    """The combined value of each series, then, as the family
    <name>_by_sender, every live sender's own value for drill-down."""
    name = family.spec.name
    live: list[tuple[SenderGaugeSeries, list[tuple[Hashable, float]]]] = []
    for series in series_list:
        assert isinstance(series, SenderGaugeSeries)
        value = series.value_at(now)
        if value is not None:
            yield f"{name}{series.labels_text} {format_value(value)}\n"
            live.append((series, series.live(now)))
    drill_down = name + BY_SENDER
    what = f"{family.spec.help} One series per sender ({family.spec.senders} in {name})."
    yield f"# HELP {drill_down} {_escape_help(what, openmetrics)}\n"
    yield f"# TYPE {drill_down} gauge\n"
    for series, senders in live:
        for sender, value in senders:
            labels = _with_label(series.labels_text, "sender",
                                 escape_label_value(sender_text(sender)))
            yield f"{drill_down}{labels} {format_value(value)}\n"


def _created(born: float, offset: float) -> str:
    # milliseconds are what Prometheus keeps of a created timestamp; fixed
    # point, which OpenMetrics reads as well: format_value's Go-style
    # exponent made a scrape of 100,000 counters 5 times slower (bench_stages.py)
    return f"{born + offset:.3f}"


def _openmetrics_bound(bound: float) -> str:
    # OpenMetrics wants canonical floats for le: 1.0, not 1
    return repr(float(bound))


def exposition_lines(
    store: Store, *, openmetrics: bool, now: float, shown: Shown = EVERYTHING
) -> Iterator[str]:
    """Every family, sorted by name (series in the order they were born),
    line by line, so that the event loop can render a large store in slices
    between reads of its sockets."""
    for name in sorted(store.families):
        family = store.families.get(name)
        if family is not None:  # expired while an earlier slice was rendered
            yield from _family_lines(family, openmetrics, now, shown)


def render_store(
    store: Store, *, openmetrics: bool, now: float, shown: Shown = EVERYTHING
) -> str:
    return "".join(exposition_lines(store, openmetrics=openmetrics, now=now, shown=shown))
