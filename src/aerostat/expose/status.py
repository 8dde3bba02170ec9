"""The status page at ``/`` and its JSON twin at ``/api/status``: what
aerostat receives, from which processes, what it refuses and why, and which
names fell through the mapping or were dropped ("why isn't my metric
there?").

Three parts: ``Rates``, a ring of once-a-second snapshots of the own
counters (the server ticks it); ``gather_processes``, the senders the
store's heartbeat series know; and the pure renderers ``render_html`` and
``render_json`` of a ``Status``, which the server builds on the event loop
(the store's owner) when a page is asked for. Everything a sender chose
(names, labels, addresses) goes through ``html.escape``; links go through
``redact_url`` before they are kept."""

from __future__ import annotations

import dataclasses
import html
import json
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aerostat.counters import NameTally, Telemetry
from aerostat.store import Store

STATUS_JSON_PATH = "/api/status"

# the windows rates are shown over, in seconds, and how far back the ring goes
WINDOWS = (10, 60, 300)
RING_SECONDS = max(WINDOWS)
# rows of each name table
NAME_ROWS = 20

# the traffic rows, in the order shown: key, what it counts, the metric
TRAFFIC = (
    ("lines", "lines received", "statsd_exporter_lines_total"),
    ("events", "events (samples that parsed)", "statsd_exporter_events_total"),
    ("mapped", "mapped by a rule", 'statsd_exporter_events_actions_total{action="map"}'),
    ("unmapped", "unmapped (no rule matched; exported under their own names)",
     "statsd_exporter_events_unmapped_total"),
    ("dropped", "dropped (by a rule, or a twin counted once)",
     'statsd_exporter_events_actions_total{action="drop"}'),
)


def traffic_counts(telemetry: Telemetry) -> dict[str, float]:
    """The own counters the page shows, flat: traffic first, then every way
    input is lost, keyed ``sample_error:<reason>`` and the like. Run on the
    event loop (the counters' dicts grow there)."""
    counts: dict[str, float] = {
        "lines": telemetry.lines,
        "events": sum(telemetry.events),
        "mapped": telemetry.actions.get("map", 0),
        "unmapped": telemetry.events_unmapped,
        "dropped": telemetry.actions.get("drop", 0),
    }
    for reason, count in list(telemetry.sample_errors.items()):
        counts[f"sample_error:{reason}"] = count
    for reason, count in list(telemetry.events_error.items()):
        counts[f"event_error:{reason}"] = count
    for limit, count in list(telemetry.series_refused.items()):
        counts[f"series_refused:{limit}"] = count
    counts["type_conflict"] = sum(telemetry.conflicts.values())
    counts["udp_kernel_drops"] = telemetry.udp_kernel_drops
    counts["udp_packet_drops"] = telemetry.udp_packet_drops
    counts["tcp_too_long_lines"] = telemetry.tcp_too_long_lines
    counts["tag_errors"] = telemetry.tag_errors
    counts["internal_errors"] = telemetry.internal_errors
    # the OTLP receiver's refusals: whole requests by status, data points by reason
    for code, count in list(telemetry.otlp_requests.items()):
        if code != "200":
            counts[f"otlp_request:{code}"] = count
    for reason, count in list(telemetry.otlp_rejected_points.items()):
        counts[f"otlp_rejected:{reason}"] = count
    return counts


# how each kind of loss reads on the page, and the metric that counts it
_LOSSES = {
    "sample_error": ("refused sample: {}", "statsd_exporter_sample_errors_total{{reason=\"{}\"}}"),
    "event_error": ("refused event: {}", "statsd_exporter_events_error_total{{reason=\"{}\"}}"),
    "series_refused": ("new series refused: {} limit",
                       "aerostat_series_refused_total{{limit=\"{}\"}}"),
    "type_conflict": ("type or name conflict", "statsd_exporter_events_conflict_total"),
    "udp_kernel_drops": ("dropped by the kernel (receive buffer full)",
                         "aerostat_udp_kernel_drops_total"),
    "udp_packet_drops": ("UDP packets dropped inside the exporter",
                         "statsd_exporter_udp_packet_drops_total"),
    "tcp_too_long_lines": ("TCP lines too long", "statsd_exporter_tcp_too_long_lines_total"),
    "tag_errors": ("tags that did not parse", "statsd_exporter_tag_errors_total"),
    "internal_errors": ("skipped by an internal error (see the log)",
                        "aerostat_internal_errors_total"),
    "otlp_request": ("OTLP requests refused with HTTP {}",
                     "aerostat_otlp_requests_total{{code=\"{}\"}}"),
    "otlp_rejected": ("OTLP data points refused: {}",
                      "aerostat_otlp_rejected_data_points_total{{reason=\"{}\"}}"),
}


def _loss_label(key: str) -> tuple[str, str]:
    kind, _, reason = key.partition(":")
    label, metric = _LOSSES.get(kind, ("{}", "{}"))
    return label.format(reason), metric.format(reason)


class Rates:
    """Per-second rates over the last minutes from a ring of snapshots of
    ``traffic_counts``, one a tick: RING_SECONDS + 1 small dicts at most."""

    def __init__(self, seconds: int = RING_SECONDS) -> None:
        self._ring: deque[tuple[float, dict[str, float]]] = deque(maxlen=seconds + 1)

    def tick(self, now: float, counts: dict[str, float]) -> None:
        self._ring.append((now, counts))

    def per_second(self, now: float, counts: Mapping[str, float],
                   windows: Iterable[int] = WINDOWS) -> dict[str, dict[str, float | None]]:
        """key → window ("10s") → rate, from the oldest snapshot inside the
        window to ``counts`` now; None while the ring has no snapshot a
        second old (the first tick), or, for the longer windows, while it
        does not reach back over the whole window."""
        bases: dict[str, tuple[float, dict[str, float]] | None] = {}
        oldest = self._ring[0][0] if self._ring else now
        for rank, window in enumerate(sorted(windows)):
            base = None
            for when, snapshot in self._ring:
                if when >= now - window - 0.5:
                    base = (when, snapshot)
                    break
            if base is not None and now - base[0] < 0.5:
                base = None
            # a window the ring does not reach back over yet (a server up for
            # less) says nothing rather than repeat a shorter one; the
            # shortest window shows what there is
            if rank and oldest > now - window + 1.5:
                base = None
            bases[f"{window}s"] = base
        rates: dict[str, dict[str, float | None]] = {}
        for key, value in counts.items():
            row: dict[str, float | None] = {}
            for label, base in bases.items():
                if base is None:
                    row[label] = None
                else:
                    when, snapshot = base
                    row[label] = max(0.0, value - snapshot.get(key, 0.0)) / (now - when)
            rates[key] = row
        return rates


# -- the model -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Process:
    """A process that sends heartbeats (a series with a sender label)."""

    role: str
    sender: str
    last_seen: float  # Unix seconds
    silent_for: float  # seconds since its last heartbeat
    alive: bool


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str  # "" without a deployment label: all the traffic
    processes: tuple[Process, ...]


@dataclass(frozen=True, slots=True)
class Flow:
    """One counter: its total since the start and its rate per window."""

    key: str
    label: str
    metric: str
    total: float
    per_second: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class NameRow:
    name: str
    count: int  # slow-path resolutions, at most ``overcount`` too many
    overcount: int
    detail: str  # for a dropped name, the rule that dropped it
    first_seen: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class Names:
    """A TopNames, as shown: ``events`` is the exact counter of its kind
    (every line, cached or not; None for twins, which share the drop
    counter with the rules' drops), ``resolved`` what reached the slow
    path, ``rows`` the names with the most resolutions."""

    events: float | None
    resolved: int
    slots: int
    rows: tuple[NameRow, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    series: int
    max_series: int  # 0: none
    bytes: int
    max_bytes: int
    refused_series: int
    refused_bytes: int


@dataclass(frozen=True, slots=True)
class MappingState:
    path: str | None
    loaded_at: float  # Unix seconds
    rules: int  # every rule, a built-in mapping's included
    file_rules: int
    reloads: int
    reload_failures: int
    last_failure: str | None  # why the last reload failed; None when it did not
    last_failure_at: float | None


@dataclass(frozen=True, slots=True)
class Status:
    version: str
    generated_at: float  # Unix seconds
    uptime: float
    telemetry_path: str
    senders_known: bool  # whether source addresses are read at all
    deployments: tuple[Deployment, ...]
    traffic: tuple[Flow, ...]
    losses: tuple[Flow, ...]
    unmapped: Names
    dropped: Names  # by a rule of the mapping
    twins: Names  # by a frontend: the same event, counted under its other name
    limits: Limits
    mapping: MappingState
    links: tuple[tuple[str, str], ...]  # (name, url), credentials already out


# -- gathering (on the event loop) --------------------------------------------------------


def role_of(alive_name: str) -> str:
    """``airflow_dag_processor_alive`` → ``dag_processor``: the gauge's name
    without its namespace (first word) and its ``_alive``."""
    stem = alive_name.removesuffix("_alive")
    _, underscore, rest = stem.partition("_")
    return rest if underscore and rest else stem


def gather_processes(store: Store, now: float, wall_offset: float) -> tuple[Deployment, ...]:
    """The heartbeat series the store holds (families with a Liveness), by
    deployment label, each as one process; at least one (empty) section."""
    by_deployment: dict[str, list[Process]] = {}
    for family in list(store.families.values()):
        liveness = family.spec.liveness
        if liveness is None:
            continue
        role = role_of(liveness.alive)
        for labels, series in list(family.series.items()):
            pairs = dict(labels)
            silent = max(0.0, now - series.updated)
            by_deployment.setdefault(pairs.get("deployment", ""), []).append(Process(
                role, pairs.get("sender", "unknown"), series.updated + wall_offset, silent,
                silent <= liveness.silence,
            ))
    if not by_deployment:
        return (Deployment("", ()),)
    return tuple(
        Deployment(name, tuple(sorted(processes, key=lambda p: (p.role, p.sender))))
        for name, processes in sorted(by_deployment.items())
    )


def gather_flows(counts: Mapping[str, float], rates: Mapping[str, dict[str, float | None]]
                 ) -> tuple[tuple[Flow, ...], tuple[Flow, ...]]:
    """(traffic, losses): every traffic row, and the losses seen at all."""
    traffic = tuple(
        Flow(key, label, metric, counts.get(key, 0.0), dict(rates.get(key, {})))
        for key, label, metric in TRAFFIC
    )
    shown = {key for key, _, _ in TRAFFIC}
    losses = []
    for key in sorted(counts):
        if key in shown or not counts[key]:
            continue
        label, metric = _loss_label(key)
        losses.append(Flow(key, label, metric, counts[key], dict(rates.get(key, {}))))
    losses.sort(key=lambda flow: -flow.total)
    return traffic, tuple(losses)


def gather_names(tallies: Iterable[tuple[str, NameTally]], events: float | None, resolved: int,
                 slots: int, wall_offset: float) -> Names:
    return Names(events, resolved, slots, tuple(
        NameRow(name, tally.count, tally.error, tally.detail, tally.first_seen + wall_offset)
        for name, tally in tallies
    ))


# -- rendering (pure) ----------------------------------------------------------------------


def render_json(status: Status) -> str:
    return json.dumps(dataclasses.asdict(status), indent=1, sort_keys=False) + "\n"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _clock(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix))


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _ago(seconds: float) -> str:
    return f"{_duration(seconds)} ago"


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], table_id: str,
           numeric: Iterable[int] = ()) -> str:
    """Cells arrive escaped; the ``numeric`` columns align right."""
    right = set(numeric)

    def cell(tag: str, index: int, text: str) -> str:
        return f'<{tag}{" class=n" if index in right else ""}>{text}</{tag}>'

    headers = list(headers)
    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f'<table id="{table_id}">{thead}<tbody>{body}</tbody></table>'


def _flows_table(flows: Iterable[Flow], table_id: str) -> str:
    rows = [
        [f"{_e(flow.label)}<br><small><code>{_e(flow.metric)}</code></small>",
         _number(flow.total),
         *(_rate(flow.per_second.get(f"{window}s")) for window in WINDOWS)]
        for flow in flows
    ]
    headers = ["", "total", *(f"/s, last {_window(window)}" for window in WINDOWS)]
    return _table(headers, rows, table_id, numeric=range(1, 2 + len(WINDOWS)))


def _window(seconds: int) -> str:
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min"


def _percent(part: int, whole: int) -> str:
    return "no limit" if not whole else f"{100 * part / whole:.1f} % of {_number(whole)}"


def _processes(status: Status) -> str:
    parts = []
    for deployment in status.deployments:
        title = (f"Deployment <code>{_e(deployment.name)}</code>" if deployment.name
                 else "All traffic")
        parts.append(f"<h3>{title}</h3>")
        if not deployment.processes:
            why = ("No process has sent a heartbeat yet." if status.senders_known else
                   "Senders are known from the heartbeats of a built-in mapping "
                   "(<code>--airflow</code>): none is in use, so processes are not told apart.")
            parts.append(f'<p class="quiet">{why}</p>')
            continue
        rows = [
            [_e(p.role), f"<code>{_e(p.sender)}</code>",
             f'{_e(_clock(p.last_seen))} ({_e(_ago(p.silent_for))})',
             '<span class="ok">alive</span>' if p.alive else '<span class="bad">silent</span>']
            for p in deployment.processes
        ]
        alive = sum(p.alive for p in deployment.processes)
        parts.append(f"<p>{alive} of {len(deployment.processes)} alive.</p>")
        parts.append(_table(["role", "sender", "last heartbeat", "state"], rows,
                            f"processes-{_e(deployment.name) or 'all'}"))
    return "".join(parts)


def _names(names: Names, table_id: str, detail: str | None, now: float) -> str:
    """A name table; ``detail`` heads the column of each row's detail."""
    if not names.rows:
        return '<p class="quiet">None so far.</p>'
    headers = ["name", "resolved", "first seen"] + ([detail] if detail else [])
    rows = []
    for row in names.rows[:NAME_ROWS]:
        count = _number(row.count) + (f" <small>(≤{row.overcount} too many)</small>"
                                      if row.overcount else "")
        cells = [f"<code>{_e(row.name)}</code>", count,
                 f'<span title="{_e(_clock(row.first_seen))}">'
                 f"{_e(_ago(now - row.first_seen))}</span>"]
        if detail:
            cells.append(f"<code>{_e(row.detail)}</code>")
        rows.append(cells)
    return _table(headers, rows, table_id, numeric=(1, 2))


_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:70em;padding:0 1em}
body{color:#1b1f24}h1{font-size:1.5em;margin-bottom:.2em}
h2{margin-top:1.6em;border-bottom:1px solid #ccd;font-size:1.2em}
h3{font-size:1em;margin-bottom:.3em}table{border-collapse:collapse;margin:.4em 0}
th,td{padding:.2em .7em;border-bottom:1px solid #e4e6ea;text-align:left;vertical-align:top}
th{background:#f3f4f6}.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.92em;overflow-wrap:anywhere}td.n{white-space:nowrap}
summary{cursor:pointer;margin:.6em 0}.ok{color:#137333;font-weight:600}
.bad{color:#b3261e;font-weight:600}.quiet{color:#5f6368}nav a{margin-right:1em}
small{color:#5f6368}
"""


def render_html(status: Status) -> str:
    """The page: no script, no external resource; every value escaped."""
    links = [(name, url) for name, url in status.links]
    nav = "".join(f'<a href="{_e(url)}">{_e(name)}</a>' for name, url in [
        ("Metrics", status.telemetry_path), ("JSON", STATUS_JSON_PATH),
        ("Health", "/-/healthy"), *links])
    limits, mapping = status.limits, status.mapping
    if mapping.last_failure is None:
        reload_state = '<span class="ok">no reload has failed</span>'
    else:
        at = "" if mapping.last_failure_at is None else f" at {_e(_clock(mapping.last_failure_at))}"
        reload_state = (f'<span class="bad">the last reload failed</span>{at}: '
                        f"<code>{_e(mapping.last_failure)}</code>; the mapping loaded before "
                        "stays in use")
    mapping_rows = [
        ["file", f"<code>{_e(mapping.path)}</code>" if mapping.path else "none (every name "
         "unmapped unless a built-in mapping matches)"],
        ["loaded", f"{_e(_clock(mapping.loaded_at))} "
         f"({_e(_ago(status.generated_at - mapping.loaded_at))})"],
        ["rules", f"{mapping.rules:,} ({mapping.file_rules:,} from the file)"],
        ["reloads", f"{mapping.reloads:,} done, {mapping.reload_failures:,} failed; "
         f"{reload_state}"],
    ]
    limit_rows = [
        ["series", f"{limits.series:,}", _e(_percent(limits.series, limits.max_series)),
         f"{limits.refused_series:,} new series refused"],
        ["bytes (estimated)", f"{limits.bytes:,}", _e(_percent(limits.bytes, limits.max_bytes)),
         f"{limits.refused_bytes:,} new series refused"],
    ]
    losses = (_flows_table(status.losses, "losses") if status.losses
              else '<p class="quiet">Nothing refused or lost so far.</p>')
    unmapped, dropped, twins = status.unmapped, status.dropped, status.twins
    now = status.generated_at
    return "".join([
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        "<title>aerostat status</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>aerostat</h1>",
        f'<p class="quiet">StatsD to Prometheus bridge, version {_e(status.version)}; '
        f"as of {_e(_clock(status.generated_at))}, up {_e(_duration(status.uptime))}. "
        "Reload the page for new figures.</p>",
        f"<nav>{nav}</nav>",
        "<h2 id=senders>Who sends</h2>",
        _processes(status),
        "<h2 id=traffic>Traffic</h2>",
        _flows_table(status.traffic, "traffic"),
        "<h2 id=refused>Refused and lost, by reason</h2>",
        losses,
        "<h2 id=unmapped-names>Unmapped names</h2>",
        f"<p>{_number(unmapped.events or 0)} events matched no rule; they are exported under "
        "their own names, with the mapping's defaults.</p>",
        _names(unmapped, "unmapped", None, now),
        "<h2 id=dropped-names>Dropped names</h2>",
        f"<p>{_number(dropped.events or 0)} events were dropped, by a rule of the mapping or as "
        "twins.</p>",
        "<h3>By a rule</h3>",
        _names(dropped, "dropped", "dropped by", now),
        f"<details><summary>As twins ({twins.resolved:,} resolved): Airflow sends most "
        "events twice, under two names; one of them is counted</summary>",
        _names(twins, "twins", "built-in entry", now),
        "</details>",
        '<p class="quiet"><small>What "resolved" counts: how many times a line of the name '
        "went through the mapping. aerostat resolves each distinct line (name, tags and "
        "type, without the value) once and caches the answer, so later copies are not "
        "counted here: a name is counted once for each distinct line of it, and again "
        "whenever the cache forgot it (a reload, a full cache, an expired series). The "
        "totals above count every line. The tables keep the "
        f"{unmapped.slots} most resolved names of each kind (Space-Saving): a name that "
        "took the slot of another may show up to the stated number too many."
        "</small></p>",
        "<h2 id=limits>Limits</h2>",
        _table(["", "now", "of the limit", ""], limit_rows, "limits", numeric=(1, 2)),
        "<h2 id=mapping>Mapping</h2>",
        _table(["", ""], mapping_rows, "mapping"),
        "</body></html>\n",
    ])
