"""Series and families in memory; no I/O, no parsing, no mapping."""

from aerostat.store.buckets import fold
from aerostat.store.hold import FirstValueHold
from aerostat.store.native import NativeHistogram, schema_for_factor
from aerostat.store.registry import (
    BY_SENDER,
    Family,
    FamilySpec,
    LabelPairs,
    Liveness,
    MetricType,
    Refusal,
    Store,
)
from aerostat.store.series import (
    HistogramSeries,
    NativeHistogramSeries,
    ScalarSeries,
    SenderGaugeSeries,
    Series,
    SummarySeries,
    sender_text,
)

__all__ = [
    "BY_SENDER",
    "Family",
    "FamilySpec",
    "FirstValueHold",
    "HistogramSeries",
    "LabelPairs",
    "Liveness",
    "MetricType",
    "NativeHistogram",
    "NativeHistogramSeries",
    "Refusal",
    "ScalarSeries",
    "SenderGaugeSeries",
    "Series",
    "Store",
    "SummarySeries",
    "fold",
    "schema_for_factor",
    "sender_text",
]
