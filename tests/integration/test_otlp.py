"""The OTLP/HTTP receiver through real sockets: the OpenTelemetry Python SDK
and its OTLP/HTTP exporter push to aerostat, as Airflow's OpenTelemetry mode
does (one meter provider per process, cumulative temporality, timers as
exponential histograms in ms), and what a scrape returns is parsed with
prometheus_client. Beside it, hand-made requests for JSON, gzip and every
error the specification names."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from aerostat.airflow import airflow_built_in
from bridge import Bridge, running_bridge

SCOPE = "airflow._shared.observability.metrics.otel_logger"
SDK_SCOPE = "airflow.sdk._shared.observability.metrics.otel_logger"


# meter providers of the running test, shut down while their bridge still
# listens (else the SDK's exit hook retries a closed port for seconds)
_PROVIDERS: list[MeterProvider] = []


@contextmanager
def otlp_bridge(**overrides: Any) -> Iterator[Bridge]:
    with running_bridge(otlp_listen_address="127.0.0.1:0", **overrides) as bridge:
        try:
            yield bridge
        finally:
            while _PROVIDERS:
                _PROVIDERS.pop().shutdown(timeout_millis=2_000)


def endpoint(bridge: Bridge, path: str = "/v1/metrics") -> str:
    assert bridge.server.otlp is not None
    return f"http://127.0.0.1:{bridge.server.otlp.address[1]}{path}"


class Process:
    """One Airflow process in OTel mode: its own meter provider (as
    Airflow's otel_logger makes it), pushing when told (force_flush)."""

    def __init__(self, bridge: Bridge, instance: str | None, *, delta: bool = False,
                 gzip_body: bool = False, scope: str = SCOPE,
                 resource: dict[str, str] | None = None) -> None:
        self.bridge = bridge
        temporality = {Counter: AggregationTemporality.DELTA,
                       Histogram: AggregationTemporality.DELTA} if delta else None
        exporter = OTLPMetricExporter(
            endpoint=endpoint(bridge), preferred_temporality=temporality,
            compression=Compression.Gzip if gzip_body else Compression.NoCompression)
        self.reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        attributes = {"service.name": "airflow", **(resource or {})}
        if instance is not None:
            attributes["service.instance.id"] = instance
        self.provider = MeterProvider(
            metric_readers=[self.reader], resource=Resource.create(attributes),
            views=[View(instrument_type=Histogram,
                        aggregation=ExponentialBucketHistogramAggregation())])
        self.meter = self.provider.get_meter(scope)
        _PROVIDERS.append(self.provider)
        self._instruments: dict[str, Any] = {}

    def counter(self, name: str, amount: float = 1, **attributes: str) -> None:
        if name not in self._instruments:
            self._instruments[name] = self.meter.create_counter(name)
        self._instruments[name].add(amount, attributes)

    def up_down(self, name: str, amount: float, **attributes: str) -> None:
        if name not in self._instruments:
            self._instruments[name] = self.meter.create_up_down_counter(name)
        self._instruments[name].add(amount, attributes)

    def gauge(self, name: str, value: float, **attributes: str) -> None:
        if name not in self._instruments:
            self._instruments[name] = self.meter.create_gauge(name)
        self._instruments[name].set(value, attributes)

    def timing(self, name: str, ms: float, **attributes: str) -> None:
        if name not in self._instruments:
            self._instruments[name] = self.meter.create_histogram(name, unit="ms")
        self._instruments[name].record(ms, attributes)

    def push(self) -> None:
        before = answered(self.bridge)
        assert self.provider.force_flush(5_000)
        deadline = time.monotonic() + 5
        while answered(self.bridge) < before + 1:
            assert time.monotonic() < deadline, "the push was not answered"
            time.sleep(0.01)

    def exit(self) -> None:
        self.provider.shutdown()  # a last push, as at a process's exit
        _PROVIDERS.remove(self.provider)


def sample(bridge: Bridge, name: str, **labels: str) -> float | None:
    return bridge.samples().get((name, frozenset(labels.items())))


def post(bridge: Bridge, body: bytes, content_type: str = "application/x-protobuf",
         method: str = "POST", path: str = "/v1/metrics",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        endpoint(bridge, path), data=body if method == "POST" else None, method=method,
        headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def answered(bridge: Bridge) -> float:
    return bridge.counter("aerostat_otlp_requests_total", code="200")


def settle(bridge: Bridge) -> None:
    """Waits until the loop took every answered request."""
    last = -1.0
    for _ in range(100):
        total = sum(value for (name, _), value in bridge.samples(own=True).items()
                    if name == "aerostat_otlp_requests_total")
        if total == last:
            return
        last = total
        time.sleep(0.03)


TI = {"dag_id": "etl", "task_id": "load", "state": "success"}
FINISHED = "airflow_ti_finish_total"
FINISHED_LABELS = {**TI, "deployment": "default"}


def test_short_lived_task_processes_are_summed_once_each_and_never_go_down() -> None:
    """Twelve task processes, each with its own service.instance.id, each
    pushing its cumulative count several times before it exits: the counter
    is the sum of their last totals, and every scrape reads at least the
    last one."""
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        seen = []
        for index in range(12):
            task = Process(bridge, f"task-{index}")
            task.counter("airflow.ti.finish", 1, **TI)
            task.counter("airflow.ti.finish.etl.load.success", 1)  # its legacy twin
            task.push()
            task.push()  # the same cumulative total again: adds nothing
            task.exit()
            settle(bridge)
            seen.append(sample(bridge, FINISHED, **FINISHED_LABELS))
        assert seen == [float(n) for n in range(1, 13)]


def test_a_restarted_process_adds_a_new_contribution() -> None:
    """The same service.instance.id after a restart: a new start time, so
    its total starts from zero without taking the old one back."""
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        first = Process(bridge, "scheduler-1")
        first.counter("airflow.ti.finish", 5, **TI)
        first.push()
        first.exit()
        time.sleep(0.01)  # a later start time
        again = Process(bridge, "scheduler-1")
        again.counter("airflow.ti.finish", 2, **TI)
        again.push()
        settle(bridge)
        assert sample(bridge, FINISHED, **FINISHED_LABELS) == 7.0
        again.counter("airflow.ti.finish", 1, **TI)
        again.push()
        settle(bridge)
        assert sample(bridge, FINISHED, **FINISHED_LABELS) == 8.0


def test_two_meter_providers_of_one_process_both_count() -> None:
    """Airflow 3.3.2 runs two meter providers per process (its core's and
    its task SDK's), under one service.instance.id: their scopes differ."""
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        core = Process(bridge, "worker-1", scope=SCOPE)
        sdk = Process(bridge, "worker-1", scope=SDK_SCOPE)
        core.counter("airflow.ti.finish", 1, **TI)
        sdk.counter("airflow.ti.finish", 1, **TI)
        core.push()
        sdk.push()
        settle(bridge)
        assert sample(bridge, FINISHED, **FINISHED_LABELS) == 2.0


def _sum_request(instance: str, value: float, start: int, name: str = "airflow.ti.finish",
                 attributes: dict[str, str] | None = None) -> bytes:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    attribute = resource.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.instance.id", instance
    scope = resource.scope_metrics.add()
    scope.scope.name = SCOPE
    metric = scope.metrics.add()
    metric.name = name
    metric.sum.is_monotonic = True
    metric.sum.aggregation_temporality = 2
    point = metric.sum.data_points.add()
    point.start_time_unix_nano = start
    point.time_unix_nano = start + 10**9
    point.as_int = int(value)
    for key, text in (attributes if attributes is not None else TI).items():
        pair = point.attributes.add()
        pair.key, pair.value.string_value = key, text
    return request.SerializeToString()


def test_a_forked_workers_frozen_copy_adds_nothing() -> None:
    """LocalExecutor workers forked from the scheduler push a frozen copy of
    its meters under its id and start time: a total below the stream's
    highest is that copy, counted as stale, and the counter stays put."""
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        start = time.time_ns()
        for value in (10, 4, 12, 4, 12, 13):
            status, _, _ = post(bridge, _sum_request("scheduler-1", value, start))
            assert status == 200
        settle(bridge)
        assert sample(bridge, FINISHED, **FINISHED_LABELS) == 13.0
        assert bridge.counter("aerostat_otlp_stale_data_points_total") == 2


def test_silent_streams_are_forgotten_and_the_counter_kept() -> None:
    with otlp_bridge(built_in=airflow_built_in(), otlp_stream_ttl=0.5) as bridge:
        for index in range(5):
            status, _, _ = post(bridge, _sum_request(f"task-{index}", 1, time.time_ns()))
            assert status == 200
        settle(bridge)
        assert bridge.counter("aerostat_otlp_streams") == 5
        deadline = time.monotonic() + 5
        while bridge.counter("aerostat_otlp_streams") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bridge.counter("aerostat_otlp_streams") == 0
        assert sample(bridge, FINISHED, **FINISHED_LABELS) == 5.0


def test_a_gauge_of_several_schedulers_is_their_sum() -> None:
    """executor.open_slots, summed over schedulers as over StatsD: the
    processes are told apart by service.instance.id, not by address."""
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        for instance, slots in (("scheduler-a", 16), ("scheduler-b", 32)):
            process = Process(bridge, instance)
            process.gauge("airflow.executor.open_slots", slots, executor_class_name="Local")
            process.push()
        process.gauge("airflow.executor.open_slots", 30, executor_class_name="Local")
        process.push()
        settle(bridge)
        assert sample(bridge, "airflow_executor_open_slots", executor="Local",
                      deployment="default") == 46.0


def test_an_up_down_counter_is_the_sum_of_the_processes_levels() -> None:
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        one, two = Process(bridge, "dag-processor-1"), Process(bridge, "dag-processor-2")
        one.up_down("airflow.dag_processing.processes", 3)
        two.up_down("airflow.dag_processing.processes", 2)
        one.push()
        two.push()
        one.up_down("airflow.dag_processing.processes", -2)
        one.push()
        settle(bridge)
        assert sample(bridge, "airflow_dag_processing_processes", deployment="default") == 3.0


def test_delta_temporality_is_added_as_it_comes() -> None:
    with otlp_bridge() as bridge:
        process = Process(bridge, "p", delta=True)
        for _ in range(3):
            process.counter("jobs", 2)
            process.push()
        process.timing("job.duration", 250.0)
        process.push()
        settle(bridge)
        assert sample(bridge, "jobs_total") == 6.0
        assert sample(bridge, "job_duration_count") == 1.0
        assert sample(bridge, "job_duration_sum") == pytest.approx(0.25)


def test_timers_become_the_classic_histogram_in_seconds() -> None:
    """Exponential histograms in ms: the count and the sum exact, each
    bucket's count at the smallest classic bound at or above its upper
    bound (never below the observation's own classic bucket)."""
    observations_ms = [40.0, 90.0, 400.0, 1500.0, 1500.0, 70_000.0]
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        process = Process(bridge, "scheduler-1")
        for ms in observations_ms[:3]:
            process.timing("airflow.dagrun.duration.success", ms, dag_id="etl")
        process.push()
        for ms in observations_ms[3:]:
            process.timing("airflow.dagrun.duration.success", ms, dag_id="etl")
        process.push()
        settle(bridge)
        labels = {"dag_id": "etl", "state": "success", "deployment": "default"}
        name = "airflow_dagrun_duration_seconds"
        assert sample(bridge, f"{name}_count", **labels) == 6.0
        assert sample(bridge, f"{name}_sum", **labels) == pytest.approx(
            sum(observations_ms) / 1000)
        buckets = {float(dict(key)["le"]): value for (sample_name, key), value
                   in bridge.samples().items()
                   if sample_name == f"{name}_bucket" and ("dag_id", "etl") in key}
        for bound, count in buckets.items():
            true_count = sum(1 for ms in observations_ms if ms / 1000 <= bound)
            assert count <= true_count, bound
        # the SDK's scale for this range puts no bucket across these bounds
        assert buckets[0.1] == 2 and buckets[0.5] == 3 and buckets[2.5] == 5


def test_gzip_bodies_from_the_sdk() -> None:
    with otlp_bridge() as bridge:
        process = Process(bridge, "p", gzip_body=True)
        process.counter("jobs", 4)
        process.push()
        settle(bridge)
        assert sample(bridge, "jobs_total") == 4.0


def _json_request(**point: Any) -> bytes:
    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [
            {"key": "service.instance.id", "value": {"stringValue": "json-1"}}]},
        "scopeMetrics": [{"scope": {"name": "s"}, "metrics": [{
            "name": "jobs", "sum": {"isMonotonic": True, "aggregationTemporality": 2,
                                    "dataPoints": [{"startTimeUnixNano": "1",
                                                    "timeUnixNano": "2", **point}]}}]}],
    }]}).encode()


def test_json_bodies_get_json_answers() -> None:
    with otlp_bridge() as bridge:
        status, headers, body = post(bridge, _json_request(asInt="7"), "application/json")
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == {}
        settle(bridge)
        assert sample(bridge, "jobs_total") == 7.0


def _summary_and_crowded_request() -> bytes:
    request = ExportMetricsServiceRequest.FromString(
        _sum_request("p", 3, 1, name="jobs", attributes={}))
    scope = request.resource_metrics[0].scope_metrics[0]
    summary = scope.metrics.add()
    summary.name = "latency"
    summary.summary.data_points.add().count = 1
    crowded = scope.metrics.add()
    crowded.name = "crowded"
    crowded.gauge.data_points.add().as_double = 1.0
    for index in range(200):
        pair = crowded.gauge.data_points[0].attributes.add()
        pair.key, pair.value.string_value = f"k{index}", "v"
    return request.SerializeToString()


def test_points_it_cannot_take_are_a_partial_success_and_the_rest_lands() -> None:
    with otlp_bridge() as bridge:
        status, headers, body = post(bridge, _summary_and_crowded_request())
        assert status == 200
        assert headers["Content-Type"] == "application/x-protobuf"
        answer = ExportMetricsServiceResponse.FromString(body)
        assert answer.partial_success.rejected_data_points == 2
        assert "summaries" in answer.partial_success.error_message
        settle(bridge)
        assert sample(bridge, "jobs_total") == 3.0
        assert bridge.counter("aerostat_otlp_rejected_data_points_total",
                              reason="unsupported_type") == 1
        assert bridge.counter("aerostat_otlp_rejected_data_points_total",
                              reason="too_many_attributes") == 1
        assert bridge.counter("aerostat_otlp_data_points_total") == 1


BOMB = gzip.compress(b"\0" * (1 << 20))  # 1 MiB of zeros in about 1 KiB


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "method", "path", "code", "words"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", {}, "POST", "/v1/metrics", 400,
         "malformed OTLP protobuf"),
        (b"{not json", "application/json", {}, "POST", "/v1/metrics", 400,
         "malformed OTLP JSON"),
        (b"x" * 5000, "application/x-protobuf", {}, "POST", "/v1/metrics", 413, "over the limit"),
        (BOMB, "application/x-protobuf", {"Content-Encoding": "gzip"}, "POST", "/v1/metrics",
         413, "decompresses to more than"),
        (b"not gzip", "application/x-protobuf", {"Content-Encoding": "gzip"}, "POST",
         "/v1/metrics", 400, "not gzip"),
        (b"", "text/plain", {}, "POST", "/v1/metrics", 415, "unsupported content type"),
        (b"", "application/x-protobuf", {"Content-Encoding": "br"}, "POST", "/v1/metrics",
         415, "Content-Encoding"),
        (b"", "application/x-protobuf", {}, "POST", "/v1/traces", 404, "no such path"),
        (b"", "application/x-protobuf", {}, "GET", "/v1/metrics", 405, None),
    ],
    ids=["bad-protobuf", "bad-json", "too-large", "gzip-bomb", "bad-gzip", "wrong-type",
         "wrong-encoding", "other-path", "wrong-method"],
)
def test_every_error_is_an_otlp_answer_and_counted(
    body: bytes, content_type: str, headers: dict[str, str], method: str, path: str,
    code: int, words: str | None,
) -> None:
    with otlp_bridge(otlp_max_body_bytes=4096) as bridge:
        status, answer_headers, answer = post(bridge, body, content_type, method, path, headers)
        assert status == code
        if words is not None:
            if content_type == "application/json":
                message = json.loads(answer)["message"]
            else:
                message = Status.FromString(answer).message
            assert words in message
        else:
            assert answer_headers["Allow"] == "POST"
        settle(bridge)
        assert bridge.counter("aerostat_otlp_requests_total", code=str(code)) == 1
        # nothing else lost: the receiver still takes a good request
        status, _, _ = post(bridge, _sum_request("p", 1, 1, name="jobs", attributes={}))
        assert status == 200
        settle(bridge)
        assert sample(bridge, "jobs_total") == 1.0


def test_a_resource_attribute_names_the_deployment() -> None:
    with otlp_bridge(built_in=airflow_built_in()) as bridge:
        process = Process(bridge, "s-1", resource={"deployment": "prod"})
        process.counter("airflow.ti.finish", 1, **TI)
        process.push()
        settle(bridge)
        assert sample(bridge, FINISHED, **{**TI, "deployment": "prod"}) == 1.0


def test_observable_instruments_are_taken_too() -> None:
    """An observable counter (cumulative by nature) reads as a counter."""
    with otlp_bridge() as bridge:
        process = Process(bridge, "p")
        process.meter.create_observable_counter(
            "reads", callbacks=[lambda options: [_observation(11)]])
        assert ObservableCounter is not None
        process.push()
        settle(bridge)
        assert sample(bridge, "reads_total") == 11.0


def _observation(value: float) -> Any:
    from opentelemetry.metrics import Observation
    return Observation(value)


def test_the_up_down_counter_class_is_what_airflow_uses() -> None:
    assert UpDownCounter is not None  # imported for the SDK's own type check


@pytest.mark.parametrize("address", ["nope", "127.0.0.1:99999", "taken"])
def test_a_bad_listen_address_is_a_one_line_error(address: str) -> None:
    import socket
    from dataclasses import replace

    from aerostat.errors import AerostatError
    from aerostat.server import Server
    from bridge import LOOPBACK

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        if address == "taken":
            address = f"127.0.0.1:{holder.getsockname()[1]}"
        server = Server(replace(LOOPBACK, otlp_listen_address=address))
        with pytest.raises(AerostatError) as raised:
            server.start()
    assert str(raised.value).startswith("--otlp.listen-address: ")
    assert "\n" not in str(raised.value)


def test_a_client_that_resets_its_kept_connection_prints_no_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An exporter keeps its connection between pushes; a task process that
    exits resets it while aerostat waits for the next request."""
    import socket
    import struct

    with otlp_bridge() as bridge:
        assert bridge.server.otlp is not None
        body = _sum_request("p", 1, 1, name="jobs", attributes={})
        with socket.create_connection(("127.0.0.1", bridge.server.otlp.address[1])) as sock:
            sock.sendall(b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/x-protobuf\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.2)  # the handler is waiting for the next request
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.3)
        settle(bridge)
        assert sample(bridge, "jobs_total") == 1.0
    # socketserver's own report of a handler that raised (a logging handler
    # another test left on a closed stream may print its own complaints)
    assert "Exception occurred during processing of request" not in capfd.readouterr().err


def test_the_status_page_shows_otlp_refusals_as_losses() -> None:
    with otlp_bridge() as bridge:
        assert post(bridge, b"\xff\xff", "application/x-protobuf")[0] == 400
        assert post(bridge, _summary_and_crowded_request())[0] == 200
        settle(bridge)
        _, _, body = bridge.get("/api/status")
        losses = {flow["key"]: (flow["total"], flow["metric"])
                  for flow in json.loads(body)["losses"]}
        assert losses == {
            "otlp_request:400": (1, 'aerostat_otlp_requests_total{code="400"}'),
            "otlp_rejected:too_many_attributes": (
                1, 'aerostat_otlp_rejected_data_points_total{reason="too_many_attributes"}'),
            "otlp_rejected:unsupported_type": (
                1, 'aerostat_otlp_rejected_data_points_total{reason="unsupported_type"}'),
        }
