"""Series and families in memory; no I/O, no parsing, no mapping."""

from aerostat.store.registry import (
    Family,
    FamilySpec,
    LabelPairs,
    MetricType,
    Refusal,
    Store,
    sample_names,
)
from aerostat.store.series import HistogramSeries, ScalarSeries, Series, SummarySeries

__all__ = [
    "Family",
    "FamilySpec",
    "HistogramSeries",
    "LabelPairs",
    "MetricType",
    "Refusal",
    "ScalarSeries",
    "Series",
    "Store",
    "SummarySeries",
    "sample_names",
]
