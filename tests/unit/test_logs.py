"""Log formats, and the rate limit that keeps bad input from flooding the log."""

from __future__ import annotations

import json
import logging

import pytest

from aerostat import logs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limited_debug(monkeypatch: pytest.MonkeyPatch,
                            caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    monkeypatch.setattr(logs.time, "monotonic", clock)
    logger = logging.getLogger("test.ratelimit")
    limited = logs.RateLimited(logger, per_second=5)
    with caplog.at_level(logging.DEBUG, logger="test.ratelimit"):
        for number in range(100):
            limited.debug("Bad line", line=str(number))
        assert len(caplog.records) == 5
        clock.now += 1.0
        limited.debug("Bad line", line="next second")
    last = caplog.records[-1]
    assert len(caplog.records) == 6
    assert last.fields == {"line": "next second", "suppressed_since_last": 95}  # type: ignore[attr-defined]


def test_rate_limited_costs_nothing_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    limited = logs.RateLimited(logging.getLogger("test.quiet"))
    with caplog.at_level(logging.INFO, logger="test.quiet"):
        limited.debug("Bad line")
    assert not caplog.records


def record(**fields: object) -> logging.LogRecord:
    made = logging.LogRecord("aerostat", logging.WARNING, "server.py", 7, "Reload %s", ("failed",),
                             None)
    made.fields = fields
    return made


def test_logfmt_quotes_what_needs_it() -> None:
    line = logs.LogfmtFormatter().format(record(path="/etc/a b.yml", count=3))
    assert 'level=warn' in line and 'msg="Reload failed"' in line
    assert 'path="/etc/a b.yml"' in line and line.endswith("count=3")


def test_json_format() -> None:
    parsed = json.loads(logs.JsonFormatter().format(record(count=3)))
    assert parsed["level"] == "warn" and parsed["msg"] == "Reload failed" and parsed["count"] == 3


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_an_internal_error_carries_its_traceback_in_both_formats(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("info", fmt)
    limited = logs.RateLimited(logging.getLogger("aerostat"), per_second=1)
    try:
        {}["missing"]  # the bug being logged
    except KeyError:
        limited.exception("Internal error while processing a line", line=b"x:1|c")
        limited.exception("the same second: suppressed")
    output = capsys.readouterr().err.strip().splitlines()
    if fmt == "json":
        [record] = [json.loads(line) for line in output]
        assert record["level"] == "error"
        assert "KeyError: 'missing'" in record["traceback"]
        assert "Traceback (most recent call last)" in record["traceback"]
    else:
        [record] = output
        assert "level=error" in record
        assert "traceback=\"Traceback (most recent call last):\\n" in record
        assert "KeyError: 'missing'" in record
