"""An OTLP/HTTP metrics request → data points (pure: no I/O, no state).

The body is read with the OpenTelemetry project's own definitions
(opentelemetry-proto), as protobuf or as OTLP's JSON. Each data point comes
out as a ``Point``: who sent it (the process its resource names), the
stream it belongs to, and what it says; a point that cannot be used is
counted by reason (the response's partial success), the rest go on."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf.json_format import ParseError
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from aerostat.events import Buckets
from aerostat.names import escape_metric_name

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

DELTA, CUMULATIVE = 1, 2
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

# the units of a timer, as OpenTelemetry's semantic conventions spell them
# (UCUM): a histogram in one of them reaches the pipeline in seconds, as a
# StatsD timer does
TIME_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}

# where the sending process is named, in order of preference
INSTANCE, HOST, PID = "service.instance.id", "host.name", "process.pid"
SERVICE = "service.name"


class BadRequest(ValueError):
    """The body as a whole cannot be read (the answer is 400)."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_data_points: int = 100_000  # per request
    max_attributes: int = 128  # per data point, resource's included


class Point(NamedTuple):
    """One data point. ``kind``: sum, gauge or histogram; ``stream``: what
    identifies its series at the sender (process, scope, start time, name,
    attributes); ``value``: a number's value, a histogram's sum (in base
    units); ``observations`` and ``buckets``: a histogram's."""

    kind: str
    name: str
    labels: dict[str, str]
    sender: Hashable
    stream: Hashable
    start: int
    monotonic: bool
    cumulative: bool
    value: float
    observations: int = 0
    buckets: Buckets | None = None


@dataclass(slots=True)
class Decoded:
    points: list[Point]
    rejected: Counter[str]
    # a few words on the first thing rejected, for the response
    message: str = ""

    def reject(self, reason: str, amount: int, detail: str) -> None:
        if amount <= 0:
            return
        self.rejected[reason] += amount
        if not self.message:
            self.message = detail


def read_request(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    """The request in ``body``; BadRequest when it is not one."""
    request = ExportMetricsServiceRequest()
    try:
        if content_type == PROTOBUF:
            request.ParseFromString(body)
        else:
            from google.protobuf.json_format import Parse
            Parse(body.decode("utf-8"), request, ignore_unknown_fields=True)
    except (DecodeError, ParseError, UnicodeDecodeError, RecursionError, ValueError) as error:
        words = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        kind = "protobuf" if content_type == PROTOBUF else "JSON"
        raise BadRequest(f"malformed OTLP {kind} body: {words}") from None
    return request


def _text(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return repr(value.double_value)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return json.dumps(_plain(value), separators=(",", ":"), sort_keys=True)


def _plain(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {item.key: _plain(item.value) for item in value.kvlist_value.values}
    return None if which is None else _text(value)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, str]:
    return {escape_metric_name(pair.key): _text(pair.value) for pair in pairs if pair.key}


def sender_of(resource: dict[str, str]) -> Hashable:
    """The process a resource names: ``service.instance.id``, else host
    and pid, else the service's name (several processes then share one
    identity, as they would share one address over StatsD)."""
    instance = resource.get(INSTANCE)
    if instance:
        return instance
    host, pid = resource.get(HOST), resource.get(PID)
    if host or pid:
        return f"{host or ''}:{pid or ''}"
    return resource.get(SERVICE, "")


def decode(
    request: ExportMetricsServiceRequest,
    limits: DecodeLimits = DecodeLimits(),
    deployment_keys: tuple[str, ...] = (),
    deployment_label: str = "deployment",
) -> Decoded:
    """Every usable data point of ``request``. ``deployment_keys``: resource
    attributes that name the deployment, first found wins; it becomes the
    ``deployment_label`` of each point that has no such attribute itself."""
    decoded = Decoded([], Counter())
    budget = limits.max_data_points
    for resource_metrics in request.resource_metrics:
        raw = {pair.key: _text(pair.value) for pair in resource_metrics.resource.attributes}
        sender = sender_of(raw)
        deployment = next((raw[key] for key in deployment_keys if raw.get(key)), None)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = (scope_metrics.scope.name, scope_metrics.scope.version)
            for metric in scope_metrics.metrics:
                budget = _metric(metric, sender, scope, deployment, deployment_label,
                                 limits, budget, decoded)
    return decoded


def _metric(metric: Any, sender: Hashable, scope: tuple[str, str], deployment: str | None,
            deployment_label: str, limits: DecodeLimits, budget: int,
            decoded: Decoded) -> int:
    which = metric.WhichOneof("data")
    name = metric.name
    if which is None:
        decoded.reject("unknown_type", 1, f"metric {name!r} has no data of a known type")
        return budget
    data = getattr(metric, which)
    points = data.data_points
    if which == "summary":
        decoded.reject("unsupported_type", len(points),
                       f"metric {name!r}: summaries are not taken (send a histogram)")
        return budget
    if not name:
        decoded.reject("missing_name", len(points), "a metric has no name")
        return budget
    if len(points) > budget:
        decoded.reject("too_many_data_points", len(points) - budget,
                       f"more than {limits.max_data_points} data points in one request")
        points = points[:max(budget, 0)]
    budget -= len(points)
    temporality = getattr(data, "aggregation_temporality", 0)
    if which != "gauge" and temporality not in (DELTA, CUMULATIVE):
        decoded.reject("unknown_temporality", len(points),
                       f"metric {name!r} has no aggregation temporality")
        return budget
    cumulative = temporality == CUMULATIVE
    monotonic = which == "sum" and data.is_monotonic
    factor = TIME_UNITS.get(metric.unit, 1.0) if which.endswith("histogram") else 1.0
    for point in points:
        if point.flags & _NO_RECORDED_VALUE:
            continue  # a stream's end, not a value
        if len(point.attributes) > limits.max_attributes:
            decoded.reject("too_many_attributes", 1,
                           f"metric {name!r}: a data point has more than "
                           f"{limits.max_attributes} attributes")
            continue
        labels = _attributes(point.attributes)
        if deployment is not None and deployment_label not in labels:
            labels[deployment_label] = deployment
        stream = (sender, scope, point.start_time_unix_nano, name, which,
                  tuple(sorted(labels.items())))
        start = point.start_time_unix_nano
        if which in ("sum", "gauge"):
            kind = point.WhichOneof("value")
            if kind is None:
                decoded.reject("missing_value", 1, f"metric {name!r}: a data point has no value")
                continue
            value = float(point.as_double if kind == "as_double" else point.as_int)
            if not math.isfinite(value):
                decoded.reject("non_finite_value", 1, f"metric {name!r}: a value is not finite")
                continue
            decoded.points.append(Point(which, name, labels, sender, stream, start, monotonic,
                                        cumulative, value))
            continue
        if not point.HasField("sum"):
            decoded.reject("missing_sum", 1, f"histogram {name!r}: a data point has no sum")
            continue
        total = point.sum
        if not math.isfinite(total):
            decoded.reject("non_finite_value", 1, f"histogram {name!r}: a sum is not finite")
            continue
        if which == "histogram":
            counts = tuple(point.bucket_counts)
            bounds = tuple(point.explicit_bounds)
            if counts and len(counts) != len(bounds) + 1:
                decoded.reject("malformed_histogram", 1,
                               f"histogram {name!r}: {len(counts)} bucket counts for "
                               f"{len(bounds)} bounds")
                continue
            if not counts:  # count and sum only: every observation up to +Inf
                counts = (point.count,)
            buckets = Buckets(counts, bounds, factor=factor)
        else:
            buckets = Buckets(
                tuple(point.positive.bucket_counts), (), point.scale, point.positive.offset,
                point.zero_count, point.negative.offset, tuple(point.negative.bucket_counts),
                factor,
            )
        if sum(buckets.counts) + sum(buckets.negative) + buckets.zero_count != point.count:
            decoded.reject("malformed_histogram", 1,
                           f"histogram {name!r}: bucket counts do not add up to its count")
            continue
        decoded.points.append(Point("histogram", name, labels, sender, stream, start, False,
                                    cumulative, total * factor, point.count, buckets))
    return budget
