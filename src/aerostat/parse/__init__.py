"""StatsD text to events: the line protocol and its four tag dialects.

Pure functions; counting what was refused is the caller's job, from the
reasons returned."""

from aerostat.parse.line import Dialects, ParsedLine, parse_line, parse_value

__all__ = ["Dialects", "ParsedLine", "parse_line", "parse_value"]
