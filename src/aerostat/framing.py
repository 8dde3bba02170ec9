"""StatsD framing: a datagram or stream chunk holds lines ended by ``\\n``.

deviation: upstream's UDP listener keeps a ``\\r`` before the ``\\n`` (so
``foo:1|c\\r\\n`` is refused as type ``c\\r``) while its TCP listener strips
it; aerostat strips it on every transport."""

from __future__ import annotations


def split_lines(payload: bytes) -> list[bytes]:
    """The non-empty lines of a payload, without their line endings."""
    lines = [line[:-1] if line.endswith(b"\r") else line for line in payload.split(b"\n")]
    return [line for line in lines if line]
