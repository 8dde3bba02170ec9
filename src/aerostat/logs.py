"""Log output in statsd_exporter's two formats, logfmt and JSON.

Structured fields travel in ``extra={"fields": {...}}``. Warnings about bad
input go through ``RateLimited`` so a flood of garbage cannot flood the log."""

from __future__ import annotations

import json
import logging
import time

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _fields(record: logging.LogRecord, time_key: str) -> dict[str, object]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    fields = {
        time_key: f"{stamp}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower().replace("warning", "warn"),
        "source": f"{record.module}.py:{record.lineno}",
        "msg": record.getMessage(),
        **getattr(record, "fields", {}),
    }
    if record.exc_info:
        # the traceback of an internal error: a bug report needs it
        fields["traceback"] = logging.Formatter().formatException(record.exc_info)
    return {key: value for key, value in fields.items() if value is not None}


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record, "ts").items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, "time"), default=str)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger("aerostat")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    root.propagate = False


class RateLimited:
    """At most ``per_second`` records a second reach the log; the rest are
    counted and summed up in the next record that passes."""

    def __init__(self, logger: logging.Logger, per_second: int = 5) -> None:
        self.logger = logger
        self.per_second = per_second
        self._second = 0
        self._sent = 0
        self._suppressed = 0

    def debug(self, message: str, **fields: object) -> None:
        if self.logger.isEnabledFor(logging.DEBUG) and self._passes(fields):
            self.logger.debug(message, extra={"fields": fields})

    def exception(self, message: str, **fields: object) -> None:
        """An error with the traceback of the exception being handled."""
        if self._passes(fields):
            self.logger.error(message, exc_info=True, extra={"fields": fields})

    def _passes(self, fields: dict[str, object]) -> bool:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._sent = second, 0
        if self._sent >= self.per_second:
            self._suppressed += 1
            return False
        self._sent += 1
        if self._suppressed:
            fields["suppressed_since_last"] = self._suppressed
            self._suppressed = 0
        return True
