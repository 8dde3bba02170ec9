"""TopNames, the Space-Saving sketch behind the status page's name tables:
exact while names fit, bounded memory past that, and the heavy names kept
with an honest overcount."""

from __future__ import annotations

import random

import pytest

from aerostat.counters import TopNames


def counts(sketch: TopNames) -> dict[str, tuple[int, int]]:
    return {name: (tally.count, tally.error) for name, tally in sketch.tallies.items()}


@pytest.mark.parametrize(
    ("stream", "slots", "expected"),
    [
        pytest.param("aab", 4, {"a": (2, 0), "b": (1, 0)}, id="exact-while-it-fits"),
        # c takes the slot of b (least count 1): 1 + 1, at most 1 too many
        pytest.param("aabc", 2, {"a": (2, 0), "c": (2, 1)}, id="new-name-inherits-least"),
        # every slot at 1: the first new name evicts one of them, and the
        # next new name evicts another of the same scan, not the newcomer
        pytest.param("abcd", 2, {"c": (2, 1), "d": (2, 1)}, id="a-run-of-evictions"),
        pytest.param("a", 1, {"a": (1, 0)}, id="one-slot"),
    ],
)
def test_space_saving(stream: str, slots: int, expected: dict[str, tuple[int, int]]) -> None:
    sketch = TopNames(slots)
    for name in stream:
        sketch.add(name)
    assert counts(sketch) == expected
    assert sketch.total == len(stream)


def test_heavy_names_survive_a_flood_of_new_ones() -> None:
    """Space-Saving's guarantee: a name recorded more than total/slots times
    is kept, and its count is at most its error above the truth."""
    rng = random.Random(7)
    sketch = TopNames(16)
    truth: dict[str, int] = {}
    for step in range(20_000):
        name = f"heavy.{step % 3}" if rng.random() < 0.3 else f"noise.{rng.randrange(10**9)}"
        truth[name] = truth.get(name, 0) + 1
        sketch.add(name)
    assert len(sketch.tallies) == 16
    for name in ("heavy.0", "heavy.1", "heavy.2"):
        tally = sketch.tallies[name]
        assert tally.count - tally.error <= truth[name] <= tally.count
    assert [name for name, _ in sketch.top(3)] == sorted(["heavy.0", "heavy.1", "heavy.2"],
                                                          key=lambda n: -sketch.tallies[n].count)


def test_top_orders_by_count_then_name() -> None:
    sketch = TopNames(8)
    for name in ["b", "a", "c", "c"]:
        sketch.add(name, detail=f"rule for {name}", now=5.0)
    assert [(name, tally.count, tally.detail) for name, tally in sketch.top(2)] == [
        ("c", 2, "rule for c"), ("a", 1, "rule for a")]
