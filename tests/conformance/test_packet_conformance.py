"""Every packet case of statsd_exporter's bridge tests, sent through real
UDP and TCP sockets to a running aerostat with no mapping; the scrape must
hold the same series and values as upstream's exposition for that packet."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge import Bridge, running_bridge
from conformance.cases import case_input, dialects, params

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def assert_same_samples(actual: Samples, expected: Samples) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(actual[key], value, rel_tol=1e-9) or (
            math.isnan(actual[key]) and math.isnan(value)
        ), key


@pytest.fixture(params=["udp", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("case", params("packet_cases"))
def test_packet_case(case: dict[str, Any], transport: str) -> None:
    with running_bridge(dialects=dialects(case)) as bridge:
        send(bridge, transport, case_input(case))
        expected = parse_exposition(case["observed_exposition_unmapped"])
        assert_same_samples(bridge.samples(), expected)
        lines = bridge.counter("statsd_exporter_lines_total")
        assert lines == len([line for line in case_input(case).split(b"\n") if line])


def send(bridge: Bridge, transport: str, payload: bytes) -> None:
    if transport == "udp":
        bridge.send_udp(payload)
    else:
        bridge.send_tcp(payload)
