"""The OTLP/HTTP metrics receiver (``--otlp.listen-address``): a source on
the same seam as the StatsD sockets. decode.py reads a request into data
points (pure), streams.py turns cumulative streams into increments, and
source.py is the HTTP edge and the source the server runs."""

from aerostat.otlp.decode import DecodeLimits
from aerostat.otlp.source import EventSink, OtlpSettings, OtlpSource

__all__ = ["DecodeLimits", "EventSink", "OtlpSettings", "OtlpSource"]
