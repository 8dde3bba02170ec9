"""Series and families in memory; no I/O, no parsing, no mapping."""

from aerostat.store.buckets import fold
from aerostat.store.hold import FirstValueHold
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
    "Refusal",
    "ScalarSeries",
    "SenderGaugeSeries",
    "Series",
    "Store",
    "SummarySeries",
    "fold",
    "sender_text",
]
