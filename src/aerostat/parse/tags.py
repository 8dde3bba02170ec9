"""Tag dialects: DogStatsD (``|#k:v``), InfluxDB (``name,k=v``), Librato
(``name#k=v``) and SignalFX (``name[k=v]``), parsed as statsd_exporter does.

Tag keys are escaped like metric names; values are kept verbatim. A malformed
tag is skipped and counted, never fatal to its sample."""

from __future__ import annotations

from aerostat.names import escape_metric_name


def _add_tag(tag: str, separator: str, labels: dict[str, str]) -> int:
    """Adds one ``key<sep>value`` tag; returns the number of tag errors (0 or 1)."""
    key, found, value = tag.partition(separator)
    if not found or not key or not value:
        return 1
    labels[escape_metric_name(key)] = value
    return 0


def parse_dogstatsd_tags(section: str, labels: dict[str, str]) -> int:
    """``k:v,k2:v2`` (the text after ``|#``). The PHP client prefixes every
    tag with ``#``, so one leading ``#`` per tag is dropped. Returns tag errors."""
    pieces = section.split(",")
    if not pieces[-1]:
        # a trailing comma (or an empty section) ends the list; it is no tag
        pieces.pop()
    errors = 0
    for tag in pieces:
        errors += _add_tag(tag[1:] if tag.startswith("#") else tag, ":", labels)
    return errors


def _parse_name_tags(section: str, labels: dict[str, str]) -> int:
    if not section:
        return 0
    return sum(_add_tag(tag, "=", labels) for tag in section.split(","))


def split_name_tags(
    name: str,
    labels: dict[str, str],
    *,
    signalfx: bool,
    influxdb: bool,
    librato: bool,
) -> tuple[str, int]:
    """Separates tags carried inside the name part of a line.

    Returns the bare name and the number of tag errors. SignalFX brackets are
    looked for first; then the first ``#`` (Librato) or ``,`` (InfluxDB),
    whichever comes first among the enabled dialects."""
    if signalfx:
        start = name.find("[")
        end = name.find("]")
        if start != -1 and end != -1:
            errors = _parse_name_tags(name[start + 1 : end], labels)
            return name[:start] + name[end + 1 :], errors
        if start != -1 or end != -1:
            # one bracket only: the name stays as it is, brackets and all
            return name, 1
    for index, char in enumerate(name):
        if (char == "#" and librato) or (char == "," and influxdb):
            return name[:index], _parse_name_tags(name[index + 1 :], labels)
    return name, 0
