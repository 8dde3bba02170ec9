"""Reading a mapping file: YAML text into a MappingConfig, validated as
statsd_exporter (master) validates it.

The file is composed into YAML nodes rather than loaded into plain Python
values, so that every mistake becomes an AerostatError naming the file, the
line and column of the offending node and its key path
(``mappings[3].observer_type``). Unknown keys are errors, as upstream's
strict decoding makes them.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import warnings
from collections.abc import Sequence
from typing import NoReturn, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aerostat.errors import AerostatError
from aerostat.events import Kind
from aerostat.mapper.rules import (
    DEFAULT_HISTOGRAM,
    DEFAULT_SUMMARY,
    Action,
    Defaults,
    HistogramOptions,
    MappingConfig,
    MatchType,
    ObserverType,
    Quantile,
    Rule,
    SenderPolicy,
    SummaryOptions,
)
from aerostat.names import LABEL_NAME, is_reserved_label_name

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"

_TOP_KEYS = ("defaults", "mappings")
_DEFAULTS_KEYS = (
    "observer_type",
    "match_type",
    "glob_disable_ordering",
    "ttl",
    "summary_options",
    "histogram_options",
)
_RULE_KEYS = (
    "match",
    "name",
    "labels",
    "honor_labels",
    "help",
    "action",
    "match_metric_type",
    "match_type",
    "observer_type",
    "histogram_options",
    "summary_options",
    "ttl",
    "scale",
    # aerostat's extensions
    "senders",
    "sender_ttl",
    "sender_label",
)
_SUMMARY_KEYS = ("quantiles", "max_age", "age_buckets", "buf_cap")
_HISTOGRAM_KEYS = ("buckets", "native_histogram_bucket_factor", "native_histogram_max_buckets")
_QUANTILE_KEYS = ("quantile", "error")
# Keys statsd_exporter v0.30 still read (in defaults and in mappings) and
# master refuses.
_REMOVED = {
    "timer_type": "'timer_type' was renamed to 'observer_type'",
    "buckets": "top-level 'buckets' is no longer read: use 'histogram_options.buckets'",
    "quantiles": "top-level 'quantiles' is no longer read: use 'summary_options.quantiles'",
}

# statsd_exporter's checks, with \d spelled [0-9] as Go's \d is ASCII only.
_GLOB_MATCH = re.compile(
    r"(\*|[a-zA-Z_][a-zA-Z0-9_-]*)(\.\*|\.[a-zA-Z0-9_][a-zA-Z0-9_-]*)*"
).fullmatch
_NAME_TEMPLATE = re.compile(r"([a-zA-Z_]|\$\{?[0-9]+\}?)([a-zA-Z0-9_]|\$\{?[0-9]+\}?)*").fullmatch

# Go's time.ParseDuration: [sign] then (number unit)+, or a bare "0".
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# A plain scalar PyYAML leaves as a string but Go's YAML reads as a float.
_GO_FLOAT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?").fullmatch

_E = TypeVar("_E", ObserverType, MatchType, Action, SenderPolicy)


def parse_duration(text: str) -> float | None:
    """Seconds in a Go duration string (``1m30s``, ``500ms``, ``0``), or
    None if it is not one. The sign is kept; callers refuse negatives."""
    sign = 1.0
    if text[:1] in ("-", "+"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        return None
    total = 0.0
    pos = 0
    while pos < len(text):
        part = _DURATION_PART.match(text, pos)
        if part is None or part.end() == pos:
            return None
        whole, fraction, unit = part.groups()
        if not whole and not fraction:
            return None
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            return None
        total += float(f"{whole or 0}.{fraction or 0}") * scale
        pos = part.end()
    return sign * total


class _Reader:
    """Walks the composed YAML; every check that fails raises through
    ``fail`` with the node's position."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader

    def fail(self, node: Node, field: str | None, message: str) -> NoReturn:
        mark = node.start_mark
        raise AerostatError(
            message, source=self.source, line=mark.line + 1, column=mark.column + 1, field=field
        )

    # -- structure --------------------------------------------------------

    def pairs(self, node: Node, field: str | None) -> list[tuple[str, Node, Node]]:
        """The entries of a mapping node, in file order; null reads as empty."""
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, MappingNode):
            self.fail(node, field, f"expected a mapping of keys to values, got {_describe(node)}")
        seen: dict[str, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            if not isinstance(key_node, ScalarNode):
                self.fail(
                    key_node,
                    _join(field, "<key>"),
                    f"a key must be a plain value, got {_describe(key_node)}",
                )
            key = key_node.value
            if key in seen:
                first = seen[key].start_mark.line + 1
                self.fail(
                    key_node, _join(field, key), f"key '{key}' repeated (first on line {first})"
                )
            seen[key] = key_node
        # "<<" merge keys: PyYAML puts the merged entries first, so the last
        # entry for a key is the one that counts.
        self.loader.flatten_mapping(node)
        entries: dict[str, tuple[str, Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.fail(key_node, _join(field, "<key>"), "a merged key must be a plain value")
            entries[key_node.value] = (key_node.value, key_node, value_node)
        return list(entries.values())

    def fields(self, node: Node, field: str | None, allowed: Sequence[str]) -> dict[str, Node]:
        """A mapping with a fixed set of keys: unknown ones are errors."""
        out: dict[str, Node] = {}
        for key, key_node, value_node in self.pairs(node, field):
            if key not in allowed:
                self.fail(key_node, _join(field, key), _unknown_key(key, allowed))
            out[key] = value_node
        return out

    def items(self, node: Node, field: str) -> list[Node]:
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, SequenceNode):
            self.fail(node, field, f"expected a list, got {_describe(node)}")
        return list(node.value)

    # -- scalars ----------------------------------------------------------

    def string(self, node: Node, field: str) -> str | None:
        """Any scalar as written (Go's YAML does the same for a string
        field); None for null."""
        if not isinstance(node, ScalarNode):
            self.fail(node, field, f"expected a string, got {_describe(node)}")
        return None if node.tag == _NULL else str(node.value)

    def number(self, node: Node, field: str) -> float:
        value: float | None = None
        if isinstance(node, ScalarNode):
            if node.tag == _INT:
                value = float(self.loader.construct_yaml_int(node))
            elif node.tag == _FLOAT:
                value = float(self.loader.construct_yaml_float(node))
            elif node.tag == _STR and node.style is None and _GO_FLOAT(node.value):
                value = float(node.value)  # 1e-6: YAML 1.1 wants a dot, Go does not
        if value is None:
            self.fail(node, field, f"expected a number, got {_describe(node)}")
        return value

    def finite(self, node: Node, field: str) -> float:
        value = self.number(node, field)
        if not math.isfinite(value):
            self.fail(node, field, f"expected a finite number, got {value}")
        return value

    def count(self, node: Node, field: str) -> int:
        if not (isinstance(node, ScalarNode) and node.tag == _INT):
            self.fail(node, field, f"expected a whole number, got {_describe(node)}")
        value = int(self.loader.construct_yaml_int(node))
        if value < 0:
            self.fail(node, field, f"must not be negative, got {value}")
        return value

    def boolean(self, node: Node, field: str) -> bool:
        if not (isinstance(node, ScalarNode) and node.tag == _BOOL):
            self.fail(node, field, f"expected true or false, got {_describe(node)}")
        return bool(self.loader.construct_yaml_bool(node))

    def duration(self, node: Node, field: str) -> float:
        """Seconds. A Go duration string (``1m30s``) as upstream; a bare
        number is read as seconds."""
        seconds: float | None
        if isinstance(node, ScalarNode) and node.tag in (_INT, _FLOAT):
            # deviation: upstream reads a bare number as nanoseconds.
            seconds = self.number(node, field)
        elif isinstance(node, ScalarNode) and node.tag == _STR:
            seconds = parse_duration(node.value)
            if seconds is None:
                self.fail(
                    node,
                    field,
                    f"invalid duration '{node.value}': write a number with a unit, "
                    "as in 30s, 1m30s, 500ms, 2h",
                )
        else:
            self.fail(node, field, f"expected a duration such as 30s, got {_describe(node)}")
        if not math.isfinite(seconds) or seconds < 0:
            self.fail(node, field, f"a duration must be zero or more, got {node.value}")
        return seconds

    def choice(self, node: Node, field: str, enum_type: type[_E], what: str) -> _E:
        text = self.string(node, field) or ""
        try:
            return enum_type(text)
        except ValueError:
            allowed = " or ".join(member.value for member in enum_type)
            self.fail(node, field, f"invalid {what} '{text}': expected {allowed}")

    # -- sections ---------------------------------------------------------

    def summary(self, node: Node, field: str, base: SummaryOptions) -> SummaryOptions:
        """summary_options, each field unset or 0 taken from ``base``."""
        found = self.fields(node, field, _SUMMARY_KEYS)
        quantiles = base.quantiles
        max_age = base.max_age
        age_buckets = base.age_buckets
        buf_cap = base.buf_cap
        if "quantiles" in found:
            where = _join(field, "quantiles")
            listed = tuple(
                self.quantile(item, f"{where}[{i}]")
                for i, item in enumerate(self.items(found["quantiles"], where))
            )
            quantiles = listed or quantiles
        if "max_age" in found:
            max_age = self.duration(found["max_age"], _join(field, "max_age")) or max_age
        if "age_buckets" in found:
            age_buckets = (
                self.count(found["age_buckets"], _join(field, "age_buckets")) or age_buckets
            )
        if "buf_cap" in found:
            buf_cap = self.count(found["buf_cap"], _join(field, "buf_cap")) or buf_cap
        return SummaryOptions(quantiles, max_age, age_buckets, buf_cap)

    def quantile(self, node: Node, field: str) -> Quantile:
        found = self.fields(node, field, _QUANTILE_KEYS)
        if "quantile" not in found:
            self.fail(node, field, "missing 'quantile'")
        quantile = self.finite(found["quantile"], _join(field, "quantile"))
        error = self.finite(found["error"], _join(field, "error")) if "error" in found else 0.0
        if not 0.0 <= quantile <= 1.0:
            self.fail(found["quantile"], _join(field, "quantile"), "must be between 0 and 1")
        if not 0.0 <= error <= 1.0:
            self.fail(found["error"], _join(field, "error"), "must be between 0 and 1")
        return Quantile(quantile, error)

    def histogram(self, node: Node, field: str, base: HistogramOptions) -> HistogramOptions:
        """histogram_options, each field unset, empty or 0 taken from ``base``."""
        found = self.fields(node, field, _HISTOGRAM_KEYS)
        buckets = base.buckets
        factor = base.native_histogram_bucket_factor
        max_buckets = base.native_histogram_max_buckets
        if "buckets" in found:
            buckets = self.buckets(found["buckets"], _join(field, "buckets")) or buckets
        key = "native_histogram_bucket_factor"
        if key in found:
            factor = self.finite(found[key], _join(field, key)) or factor
        key = "native_histogram_max_buckets"
        if key in found:
            max_buckets = self.count(found[key], _join(field, key)) or max_buckets
        return HistogramOptions(buckets, factor, max_buckets)

    def buckets(self, node: Node, field: str) -> tuple[float, ...]:
        items = self.items(node, field)
        bounds: list[float] = []
        for i, item in enumerate(items):
            where = f"{field}[{i}]"
            bound = self.number(item, where)
            if bound == math.inf and i == len(items) - 1:
                break  # +Inf is implicit, as in client_golang
            if not math.isfinite(bound):
                self.fail(item, where, f"expected a finite bucket bound, got {bound}")
            if bounds and bound <= bounds[-1]:
                # deviation: client_golang panics on the first observation instead.
                self.fail(item, where, "bucket bounds must be in increasing order")
            bounds.append(bound)
        return tuple(bounds)

    def refuse_removed(self, node: Node, field: str | None) -> None:
        """Point at a key v0.30 read and master refuses, with what to write."""
        if isinstance(node, MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value in _REMOVED:
                    key = key_node.value
                    self.fail(key_node, _join(field, key), _REMOVED[key])


def _join(field: str | None, key: str) -> str:
    return key if field is None else f"{field}.{key}"


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    return f"'{node.value}'"


def _unknown_key(key: str, allowed: Sequence[str]) -> str:
    message = f"unknown key '{key}'"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        message += f" (did you mean '{close[0]}'?)"
    return message + "; known keys: " + ", ".join(allowed)


class _Config:
    """Builds a MappingConfig; keeps what defaults said explicitly, which
    the observer option checks need."""

    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.defaults = Defaults()
        self.explicit_observer: ObserverType | None = None

    def read_defaults(self, node: Node) -> None:
        r = self.r
        field = "defaults"
        r.refuse_removed(node, field)
        found = r.fields(node, field, _DEFAULTS_KEYS)
        observer_type = ObserverType.SUMMARY
        match_type = MatchType.GLOB
        if "observer_type" in found:
            self.explicit_observer = r.choice(
                found["observer_type"], "defaults.observer_type", ObserverType, "observer type"
            )
            observer_type = self.explicit_observer
        if "match_type" in found:
            match_type = r.choice(
                found["match_type"], "defaults.match_type", MatchType, "match type"
            )
        ordering_off = False
        if "glob_disable_ordering" in found:
            ordering_off = r.boolean(
                found["glob_disable_ordering"], "defaults.glob_disable_ordering"
            )
        ttl = r.duration(found["ttl"], "defaults.ttl") if "ttl" in found else 0.0
        summary = DEFAULT_SUMMARY
        if "summary_options" in found:
            summary = r.summary(found["summary_options"], "defaults.summary_options", summary)
        histogram = DEFAULT_HISTOGRAM
        if "histogram_options" in found:
            histogram = r.histogram(
                found["histogram_options"], "defaults.histogram_options", histogram
            )
        self.defaults = Defaults(observer_type, match_type, ordering_off, ttl, histogram, summary)

    def read_rule(self, node: Node, index: int) -> Rule:
        r = self.r
        d = self.defaults
        field = f"mappings[{index}]"
        r.refuse_removed(node, field)
        found = r.fields(node, field, _RULE_KEYS)

        def at(key: str) -> str:
            return f"{field}.{key}"

        match = r.string(found["match"], at("match")) if "match" in found else None
        if not match:
            r.fail(found.get("match", node), at("match"), "missing or empty 'match'")
        match_type = d.match_type
        if "match_type" in found:
            match_type = r.choice(found["match_type"], at("match_type"), MatchType, "match type")
        if match_type is MatchType.GLOB:
            if not _GLOB_MATCH(match):
                r.fail(
                    found["match"],
                    at("match"),
                    f"invalid glob '{match}': each dot-separated part is a whole '*' or "
                    "letters, digits, '_' and '-', not starting with '-' (nor, for the first "
                    "part, with a digit); for anything else use match_type: regex",
                )
        else:
            _check_regex(r, found["match"], at("match"), match)

        name = r.string(found["name"], at("name")) if "name" in found else None
        if not name:
            r.fail(found.get("name", node), at("name"), "missing or empty 'name'")
        if not _NAME_TEMPLATE(name):
            r.fail(
                found["name"],
                at("name"),
                f"invalid name '{name}': a metric name is letters, digits and '_', not "
                "starting with a digit, with $1 or ${1} where a matched part goes",
            )

        labels: list[tuple[str, str]] = []
        if "labels" in found:
            for key, key_node, value_node in r.pairs(found["labels"], at("labels")):
                where = f"{field}.labels.{key}"
                if not LABEL_NAME(key):
                    r.fail(
                        key_node,
                        where,
                        f"invalid label name '{key}': letters, digits and '_', "
                        "not starting with a digit",
                    )
                if is_reserved_label_name(key):
                    # deviation: upstream loads it; the registry refuses it later.
                    r.fail(
                        key_node,
                        where,
                        f"label name '{key}' is reserved: '__' names are Prometheus's",
                    )
                labels.append((key, r.string(value_node, where) or ""))

        action = Action.MAP
        if "action" in found:
            action = r.choice(found["action"], at("action"), Action, "action")
        kind: Kind | None = None
        if "match_metric_type" in found:
            kind = _kind(r, found["match_metric_type"], at("match_metric_type"))
        help_text = r.string(found["help"], at("help")) if "help" in found else None
        honor_labels = (
            r.boolean(found["honor_labels"], at("honor_labels"))
            if "honor_labels" in found
            else False
        )
        ttl = d.ttl
        if "ttl" in found:
            ttl = r.duration(found["ttl"], at("ttl")) or d.ttl
        scale: float | None = None
        if "scale" in found and not _is_null(found["scale"]):
            scale = r.finite(found["scale"], at("scale"))

        senders: SenderPolicy | None = None
        sender_ttl = 60.0
        sender_label: str | None = None
        if "senders" in found:
            senders = r.choice(found["senders"], at("senders"), SenderPolicy, "sender policy")
            if senders is not SenderPolicy.SEPARATE and kind is not Kind.GAUGE:
                r.fail(
                    found["senders"],
                    at("senders"),
                    f"senders: {senders.value} combines gauges: add match_metric_type: gauge "
                    "(or use senders: separate)",
                )
        for extension in ("sender_ttl", "sender_label"):
            if extension in found and senders is None:
                r.fail(found[extension], at(extension), f"{extension} needs senders")
        if "sender_ttl" in found:
            sender_ttl = r.duration(found["sender_ttl"], at("sender_ttl"))
            if sender_ttl <= 0:
                r.fail(found["sender_ttl"], at("sender_ttl"), "sender_ttl must be above zero")
        if "sender_label" in found:
            sender_label = r.string(found["sender_label"], at("sender_label")) or None
            if sender_label is None or not LABEL_NAME(sender_label):
                r.fail(found["sender_label"], at("sender_label"),
                       "sender_label must be a label name")

        explicit = self.explicit_observer
        if "observer_type" in found:
            explicit = r.choice(
                found["observer_type"], at("observer_type"), ObserverType, "observer type"
            )
        histogram = d.histogram
        if "histogram_options" in found:
            if explicit is ObserverType.SUMMARY:
                r.fail(
                    found["histogram_options"],
                    at("histogram_options"),
                    "histogram_options given but observer_type is summary",
                )
            histogram = r.histogram(found["histogram_options"], at("histogram_options"), histogram)
        summary = d.summary
        if "summary_options" in found:
            if explicit is ObserverType.HISTOGRAM:
                r.fail(
                    found["summary_options"],
                    at("summary_options"),
                    "summary_options given but observer_type is histogram",
                )
            summary = r.summary(found["summary_options"], at("summary_options"), summary)

        return Rule(
            index=index,
            line=node.start_mark.line + 1,
            match=match,
            match_type=match_type,
            name=name,
            labels=tuple(labels),
            match_metric_type=kind,
            action=action,
            help=help_text,
            observer_type=explicit or ObserverType.SUMMARY,
            histogram=histogram,
            summary=summary,
            ttl=ttl,
            honor_labels=honor_labels,
            scale=scale,
            senders=senders,
            sender_ttl=sender_ttl,
            sender_label=sender_label,
        )


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _kind(r: _Reader, node: Node, field: str) -> Kind:
    text = r.string(node, field) or ""
    try:
        return Kind.from_label(text)
    except KeyError:
        r.fail(node, field, f"invalid metric type '{text}': expected counter, gauge or observer")


def _check_regex(r: _Reader, node: Node, field: str, pattern: str) -> None:
    """The pattern must compile with Python's re, without warnings: a warning
    there (a '[[' read as a nested set) means RE2 would read it otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        r.fail(node, field, f"invalid regular expression '{pattern}': {exc.msg}{where}")
    except Warning as exc:
        r.fail(node, field, f"regular expression '{pattern}' is ambiguous in Python: {exc}")


def _syntax_error(exc: yaml.YAMLError, source: str) -> AerostatError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        if exc.context == "while scanning an alias":
            what += " (a value starting with '*' must be quoted: \"*.foo\")"
        return AerostatError(
            f"invalid YAML: {what}",
            source=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
    return AerostatError(f"invalid YAML: {exc}", source=source)


def _unreadable(exc: yaml.reader.ReaderError, text: str, source: str) -> AerostatError:
    """A character YAML does not allow (a control character, say), located."""
    before = text[: exc.position]
    return AerostatError(
        f"invalid YAML: the control character U+{exc.character:04X} is not allowed",
        source=source,
        line=before.count("\n") + 1,
        column=exc.position - (before.rfind("\n") + 1) + 1,
    )


def parse_mapping_config(text: str, source: str = "<config>") -> MappingConfig:
    """Parse and check a statsd_exporter mapping file; raise AerostatError
    naming ``source``, the line and column, and the key at fault."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # checked up front, before any parsing
        raise _unreadable(exc, text, source) from None
    try:
        root = loader.get_single_node()
        reader = _Reader(source, loader)
        config = _Config(reader)
        if root is None:
            return MappingConfig(config.defaults, (), source)
        top = reader.fields(root, None, _TOP_KEYS)
        if "defaults" in top:
            config.read_defaults(top["defaults"])
        rules: list[Rule] = []
        if "mappings" in top:
            for index, item in enumerate(reader.items(top["mappings"], "mappings")):
                rules.append(config.read_rule(item, index))
        return MappingConfig(config.defaults, tuple(rules), source)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, text, source) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, source) from None
    finally:
        loader.dispose()


def load_mapping_config(path: str | os.PathLike[str]) -> MappingConfig:
    """Read a mapping file and parse it."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise AerostatError(f"cannot read mapping file: {exc.strerror}", source=source) from None
    except UnicodeDecodeError as exc:
        raise AerostatError(f"mapping file is not UTF-8: {exc.reason}", source=source) from None
    return parse_mapping_config(text, source)
