"""statsd_exporter's own mapper and escaping tests, run against aerostat.

Every case of ``mapper_cases`` and ``escape_cases`` in
data/statsd_exporter_cases.json. The ``observed*`` keys, upstream's real
output, are the oracle. Each config is loaded fresh (the Go test reuses one
mapper, and a config that fails to load leaves the previous one in place);
an invalid config must raise AerostatError.

Upstream leaves some fields zero for "use the default" (``observer_type: ""``,
``max_age: 0``); aerostat resolves them when loading, so those compare as the
resolved default. A case where aerostat means to differ goes in DEVIATIONS
with the reason, and asserts aerostat's behaviour instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aerostat.errors import AerostatError
from aerostat.events import Kind
from aerostat.mapper import Mapper, MappingConfig, Match, ObserverType, Rule, parse_mapping_config
from aerostat.names import escape_metric_name

CASES = json.loads((Path(__file__).parent / "data" / "statsd_exporter_cases.json").read_text())
MAPPER_CASES: list[dict[str, Any]] = CASES["mapper_cases"]
ESCAPE_CASES: list[dict[str, Any]] = CASES["escape_cases"]

# case id -> why aerostat differs. None of upstream's own mapper tests hits a
# deviation: they all sit in corners the upstream tests do not reach (see
# docs/deviations-mapper.md and tests/unit/mapper).
DEVIATIONS: dict[str, str] = {}

# How often each query of TestMultipleMatches runs: it guards against one
# name's expansion leaking into another's through the cache (upstream #273).
REPEATS = {"mapper/TestMultipleMatches/00-cache-with-variable-names": 3}

_YAML_LINE = re.compile(r"^yaml: line (\d+):")


def test_deviations_name_real_cases() -> None:
    assert set(DEVIATIONS) <= {case["id"] for case in MAPPER_CASES}


@pytest.mark.parametrize("case", MAPPER_CASES, ids=[case["id"] for case in MAPPER_CASES])
def test_mapper_case(case: dict[str, Any]) -> None:
    if not case["config_valid"]:
        check_refused(case)
        return
    config = parse_mapping_config(case["config_yaml"], "mapping.yml")
    first_action = case.get("observed_first_mapping_action")
    if first_action is not None:
        assert config.rules[0].action == first_action
    mapper = Mapper(config)
    for _ in range(REPEATS.get(case["id"], 1)):
        for query in case["queries"]:
            found = mapper.map(query["statsd_metric"], Kind.from_label(query["metric_type"]))
            check_query(config, query, found)


def check_refused(case: dict[str, Any]) -> None:
    with pytest.raises(AerostatError) as caught:
        parse_mapping_config(case["config_yaml"], "mapping.yml")
    error = caught.value
    assert error.source == "mapping.yml"
    assert error.line is not None and error.column is not None
    upstream_line = _YAML_LINE.match(case["observed_config_error"])
    if upstream_line:  # a YAML syntax error: both point at the same line
        assert error.line == int(upstream_line.group(1))


def check_query(config: MappingConfig, query: dict[str, Any], found: Match | None) -> None:
    observed = query["observed"]
    name = query["statsd_metric"]
    if not observed["matched"]:
        assert found is None, name
        assert escape_metric_name(name) == observed["escaped_name"]
        return
    assert found is not None, name
    assert found.name == observed["escaped_name"]
    assert found.labels == observed["labels"]
    check_rule(config, found.rule, observed)


def check_rule(config: MappingConfig, rule: Rule, observed: dict[str, Any]) -> None:
    assert rule.action == observed["action"]
    assert rule.match_type == observed["match_type"]
    assert rule.honor_labels == observed["honor_labels"]
    assert rule.ttl == observed["ttl_seconds"]
    metric_type = observed["match_metric_type"]
    assert rule.match_metric_type == (Kind.from_label(metric_type) if metric_type else None)
    assert rule.observer_type == (observed["observer_type"] or config.defaults.observer_type)
    assert rule.observer_type in (ObserverType.SUMMARY, ObserverType.HISTOGRAM)
    assert rule.scale == observed.get("scale")
    if "quantiles" in observed:
        quantiles = [{"quantile": q.quantile, "error": q.error} for q in rule.summary.quantiles]
        assert quantiles == observed["quantiles"]
    # 0 means client_golang's default, which aerostat fills in when loading.
    for ours, theirs, default in (
        (rule.summary.max_age, "max_age_seconds", 600),
        (rule.summary.age_buckets, "age_buckets", 5),
        (rule.summary.buf_cap, "buf_cap", 500),
    ):
        if theirs in observed:
            assert ours == (observed[theirs] or default)
    if "buckets" in observed:
        assert list(rule.histogram.buckets) == observed["buckets"]


@pytest.mark.parametrize(
    "case",
    ESCAPE_CASES,
    ids=[
        f"escape/{i:02d}-{escape_metric_name(c['input']) or 'empty'}"
        for i, c in enumerate(ESCAPE_CASES)
    ],
)
def test_escape_case(case: dict[str, str]) -> None:
    assert escape_metric_name(case["input"]) == case["observed"] == case["expected"]
