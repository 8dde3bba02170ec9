"""The mapping stage: statsd_exporter's mapping YAML read into rules, and a
Mapper that turns a StatsD name into a Prometheus name and labels.

Pure: no I/O besides ``load_mapping_config`` reading the file it is given.
"""

from aerostat.mapper.config import load_mapping_config, parse_mapping_config
from aerostat.mapper.mapper import Mapper
from aerostat.mapper.rules import (
    Action,
    BuiltInRule,
    Defaults,
    HistogramOptions,
    MappingConfig,
    Match,
    MatchType,
    ObserverType,
    Quantile,
    Rule,
    SenderPolicy,
    SummaryOptions,
    describe_rule,
)
from aerostat.mapper.yamlnodes import parse_duration

__all__ = [
    "Action",
    "BuiltInRule",
    "Defaults",
    "HistogramOptions",
    "Mapper",
    "MappingConfig",
    "Match",
    "MatchType",
    "ObserverType",
    "Quantile",
    "Rule",
    "SenderPolicy",
    "SummaryOptions",
    "describe_rule",
    "load_mapping_config",
    "parse_duration",
    "parse_mapping_config",
]
