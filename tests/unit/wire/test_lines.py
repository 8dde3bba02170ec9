"""TCP stream reassembly and listener address flags."""

from __future__ import annotations

import socket

import pytest

from aerostat.addresses import parse_address
from aerostat.errors import AerostatError
from aerostat.framing import split_lines
from aerostat.wire import LineAssembler


def test_lines_across_chunks() -> None:
    assembler = LineAssembler()
    assert assembler.feed(b"a:1|c\nb:") == [b"a:1|c"]
    assert assembler.feed(b"2|g\n") == [b"b:2|g"]
    assert assembler.feed(b"c:3|g") == []
    assert assembler.finish() == b"c:3|g"


def test_an_overlong_line_is_counted_once_and_skipped() -> None:
    assembler = LineAssembler(max_line=10)
    assert assembler.feed(b"x" * 8) == []
    assert assembler.feed(b"x" * 8) == []  # now too long: dropped up to its newline
    assert assembler.feed(b"x" * 50) == []
    assert assembler.feed(b"xx\nok:1|c\n") == [b"ok:1|c"]
    assert assembler.too_long == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(":9125", (socket.AF_INET, "0.0.0.0", 9125), id="all-interfaces"),
        pytest.param("127.0.0.1:0", (socket.AF_INET, "127.0.0.1", 0), id="ipv4"),
        pytest.param("[::1]:9102", (socket.AF_INET6, "::1", 9102), id="ipv6"),
        pytest.param("localhost:9102", (socket.AF_INET, "localhost", 9102), id="hostname"),
    ],
)
def test_addresses(text: str, expected: tuple[socket.AddressFamily, str, int]) -> None:
    assert parse_address(text, "--flag") == expected


@pytest.mark.parametrize("text", ["9125", ":port", ":70000"])
def test_bad_addresses_name_the_flag(text: str) -> None:
    with pytest.raises(AerostatError, match=r"--statsd\.listen-udp"):
        parse_address(text, "--statsd.listen-udp")


@pytest.mark.parametrize(
    ("payload", "lines"),
    [
        pytest.param(b"a:1|c", [b"a:1|c"], id="one"),
        pytest.param(b"a:1|c\nb:2|g\n", [b"a:1|c", b"b:2|g"], id="trailing-newline"),
        pytest.param(b"a:1|c\r\nb:2|g", [b"a:1|c", b"b:2|g"], id="crlf"),
        pytest.param(b"\n\r\n\n", [], id="only-line-endings"),
    ],
)
def test_split_lines(payload: bytes, lines: list[bytes]) -> None:
    assert split_lines(payload) == lines


def test_tcp_lines_lose_their_carriage_returns() -> None:
    assembler = LineAssembler()
    assert assembler.feed(b"a:1|c\r\n\r\nb:2|g\r") == [b"a:1|c"]
    assert assembler.finish() == b"b:2|g"
