"""Reading a mapping file: the schema of statsd_exporter's mapping YAML
(master), checked as upstream checks it, into a MappingConfig.

The file is read as YAML nodes (yamlnodes.py), so that every mistake
becomes an AerostatError naming the file, the line and column of the
offending node and its key path (``mappings[3].observer_type``). Unknown
keys are errors, as upstream's strict decoding makes them.
"""

from __future__ import annotations

import math
import os
import re
import warnings

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

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
from aerostat.mapper.yamlnodes import (
    NodeReader,
    is_null,
    join,
    syntax_error,
    unreadable,
)
from aerostat.names import LABEL_NAME, is_reserved_label_name

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


class _Reader(NodeReader):
    """The mapping schema's sections, on the node reader."""

    # -- sections ---------------------------------------------------------

    def summary(self, node: Node, field: str, base: SummaryOptions) -> SummaryOptions:
        """summary_options, each field unset or 0 taken from ``base``."""
        found = self.fields(node, field, _SUMMARY_KEYS)
        quantiles = base.quantiles
        max_age = base.max_age
        age_buckets = base.age_buckets
        buf_cap = base.buf_cap
        if "quantiles" in found:
            where = join(field, "quantiles")
            listed = tuple(
                self.quantile(item, f"{where}[{i}]")
                for i, item in enumerate(self.items(found["quantiles"], where))
            )
            quantiles = listed or quantiles
        if "max_age" in found:
            max_age = self.duration(found["max_age"], join(field, "max_age")) or max_age
        if "age_buckets" in found:
            age_buckets = (
                self.count(found["age_buckets"], join(field, "age_buckets")) or age_buckets
            )
        if "buf_cap" in found:
            buf_cap = self.count(found["buf_cap"], join(field, "buf_cap")) or buf_cap
        return SummaryOptions(quantiles, max_age, age_buckets, buf_cap)

    def quantile(self, node: Node, field: str) -> Quantile:
        found = self.fields(node, field, _QUANTILE_KEYS)
        if "quantile" not in found:
            self.fail(node, field, "missing 'quantile'")
        quantile = self.finite(found["quantile"], join(field, "quantile"))
        error = self.finite(found["error"], join(field, "error")) if "error" in found else 0.0
        if not 0.0 <= quantile <= 1.0:
            self.fail(found["quantile"], join(field, "quantile"), "must be between 0 and 1")
        if not 0.0 <= error <= 1.0:
            self.fail(found["error"], join(field, "error"), "must be between 0 and 1")
        return Quantile(quantile, error)

    def histogram(self, node: Node, field: str, base: HistogramOptions) -> HistogramOptions:
        """histogram_options, each field unset, empty or 0 taken from ``base``."""
        found = self.fields(node, field, _HISTOGRAM_KEYS)
        buckets = base.buckets
        factor = base.native_histogram_bucket_factor
        max_buckets = base.native_histogram_max_buckets
        if "buckets" in found:
            buckets = self.buckets(found["buckets"], join(field, "buckets")) or buckets
        key = "native_histogram_bucket_factor"
        if key in found:
            factor = self.finite(found[key], join(field, key)) or factor
        key = "native_histogram_max_buckets"
        if key in found:
            max_buckets = self.count(found[key], join(field, key)) or max_buckets
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
                    self.fail(key_node, join(field, key), _REMOVED[key])



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
        if "scale" in found and not is_null(found["scale"]):
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




def parse_mapping_config(text: str, source: str = "<config>") -> MappingConfig:
    """Parse and check a statsd_exporter mapping file; raise AerostatError
    naming ``source``, the line and column, and the key at fault."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # checked up front, before any parsing
        raise unreadable(exc, text, source) from None
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
        raise unreadable(exc, text, source) from None
    except yaml.YAMLError as exc:
        raise syntax_error(exc, source) from None
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
