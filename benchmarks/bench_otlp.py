#!/usr/bin/env python3
"""OTLP receiver benchmark: what one push of Airflow-shaped OpenTelemetry
metrics costs, in process (decode, then streams and pipeline) and end to
end (HTTP POSTs over loopback to a running server with --airflow, until its
event loop has applied them all).

    ./run bench otlp [--repeats 5] [--pushes 200]

The push holds one event of every Airflow 3 catalog metric, as Airflow's
OpenTelemetry mode sends it (legacy and tagged names, counters as
cumulative sums, gauges, timers as exponential histograms in ms), from one
process; each push raises every counter and adds one observation to every
histogram, so every data point is new work. Figures are medians of
--repeats passes."""

from __future__ import annotations

import argparse
import http.client
import math
import statistics
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: E402
    ExportMetricsServiceRequest,
)

from aerostat.airflow import airflow_built_in  # noqa: E402
from aerostat.airflow.catalog import load_catalog  # noqa: E402
from aerostat.counters import Telemetry  # noqa: E402
from aerostat.mapper import MappingConfig  # noqa: E402
from aerostat.options import ServerOptions  # noqa: E402
from aerostat.otlp.decode import decode  # noqa: E402
from aerostat.otlp.streams import Streams  # noqa: E402
from aerostat.pipeline import Pipeline  # noqa: E402
from aerostat.server import Server  # noqa: E402
from aerostat.store import Store  # noqa: E402
from airflow_wire import wire_lines  # noqa: E402

SCALE = 8


def push(round_: int) -> bytes:
    """Push number ``round_`` (from 1) of one process: cumulative totals."""
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    pair = resource.resource.attributes.add()
    pair.key, pair.value.string_value = "service.instance.id", "scheduler-1"
    scope = resource.scope_metrics.add()
    scope.scope.name = "airflow._shared.observability.metrics.otel_logger"
    for entry in load_catalog():
        if entry.line != "3.x":
            continue
        for line in wire_lines(entry, "dogstatsd"):
            name, _, rest = line.partition(":")
            value_text, kind, *tags = rest.split("|")
            attributes = (dict(tag.split(":", 1) for tag in tags[0][1:].split(","))
                          if tags else {})
            value = float(value_text)
            metric = scope.metrics.add()
            metric.name = name
            if kind == "c":
                metric.sum.is_monotonic = True
                metric.sum.aggregation_temporality = 2
                point = metric.sum.data_points.add()
                point.as_double = value * round_
            elif kind == "g":
                point = metric.gauge.data_points.add()
                point.as_double = value + round_
            else:
                metric.unit = "ms"
                metric.exponential_histogram.aggregation_temporality = 2
                point = metric.exponential_histogram.data_points.add()
                point.scale, point.count, point.sum = SCALE, round_, value * round_
                point.positive.offset = math.ceil(math.log2(value) * 2**SCALE) - 1
                point.positive.bucket_counts.append(round_)
            point.start_time_unix_nano = 1
            for key, text in attributes.items():
                attribute = point.attributes.add()
                attribute.key, attribute.value.string_value = key, text
    return request.SerializeToString()


def in_process(bodies: list[bytes]) -> tuple[float, float, int]:
    """Seconds to decode every body, seconds to apply them, data points."""
    built_in = airflow_built_in()
    pipeline = Pipeline(built_in.mapper(MappingConfig.empty()), Store(), Telemetry(),
                        frontend=built_in.frontend())
    streams = Streams()
    started = time.perf_counter()
    decoded = [decode(ExportMetricsServiceRequest.FromString(body)) for body in bodies]
    decoding = time.perf_counter() - started
    started = time.perf_counter()
    for batch in decoded:
        for point in batch.points:
            event = streams.events(point, 0.0)
            if event is not None:
                pipeline.apply(event, 0.0, point.sender)
    return decoding, time.perf_counter() - started, sum(len(b.points) for b in decoded)


def end_to_end(bodies: list[bytes]) -> float:
    """Seconds from the first POST to the loop having taken the last one."""
    options = replace(ServerOptions(), listen_udp="127.0.0.1:0", listen_tcp="",
                      web_listen_address="127.0.0.1:0", otlp_listen_address="127.0.0.1:0",
                      built_in=airflow_built_in(), new_series_hold=0.0)
    server = Server(options)
    server.start()
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    try:
        assert server.otlp is not None
        connection = http.client.HTTPConnection("127.0.0.1", server.otlp.address[1])
        started = time.perf_counter()
        for body in bodies:
            connection.request("POST", "/v1/metrics", body,
                               {"Content-Type": "application/x-protobuf"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
        while server.telemetry.otlp_requests.get("200", 0) < len(bodies):
            time.sleep(0.0005)
        elapsed = time.perf_counter() - started
        connection.close()
        return elapsed
    finally:
        server.stop()
        loop.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pushes", type=int, default=200)
    args = parser.parse_args()
    bodies = [push(round_) for round_ in range(1, args.pushes + 1)]
    points = len(decode(ExportMetricsServiceRequest.FromString(bodies[0])).points)
    print(f"one push: {points} data points, {len(bodies[0]):,} bytes of protobuf; "
          f"{args.pushes} pushes, median of {args.repeats} passes")
    decoding, applying, wall = [], [], []
    for _ in range(args.repeats):
        decode_s, apply_s, total = in_process(bodies)
        decoding.append(decode_s / total * 1e6)
        applying.append(apply_s / total * 1e6)
        wall.append(end_to_end(bodies))
    print(f"in process: decode {statistics.median(decoding):.2f} µs, "
          f"streams and pipeline {statistics.median(applying):.2f} µs per data point")
    seconds = statistics.median(wall)
    print(f"end to end over HTTP (one kept connection): {args.pushes / seconds:,.0f} pushes/s, "
          f"{args.pushes * points / seconds:,.0f} data points/s")


if __name__ == "__main__":
    main()
