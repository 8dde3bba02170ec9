"""A datagram or stream chunk to lines."""

from __future__ import annotations


def split_lines(payload: str) -> list[str]:
    """Splits on ``\\n`` and drops one trailing ``\\r`` per line.

    deviation: upstream's UDP listener keeps the ``\\r`` (so ``foo:1|c\\r\\n``
    is refused as type ``c\\r``) while its TCP listener strips it; aerostat
    strips it on every transport, as the protocol's own line ending."""
    lines = payload.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]
