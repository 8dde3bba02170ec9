"""The glob trie: which pattern wins in each ordering mode, checked against
tables and against a brute-force reading of the rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aerostat.events import Kind
from aerostat.mapper.glob import GlobIndex


def index(patterns: list[str], ordered: bool, kinds: list[Kind | None] | None = None) -> GlobIndex:
    only = kinds or [None] * len(patterns)
    return GlobIndex(((p.split("."), k) for p, k in zip(patterns, only, strict=True)), ordered)


# (id, patterns, name, winner when ordered, winner literal-first); -1 = no match
CASES: list[tuple[str, list[str], str, int, int]] = [
    ("exact", ["a.b.c"], "a.b.c", 0, 0),
    ("star-one-component", ["a.*.c"], "a.b.c", 0, 0),
    ("star-empty-component", ["h.*.z"], "h..z", 0, 0),
    ("star-not-two-components", ["a.*"], "a.b.c", -1, -1),
    ("fewer-components", ["a.*.*"], "a.b", -1, -1),
    ("single-star-empty-name", ["*"], "", 0, 0),
    ("literal-star-in-name", ["a.*"], "a.*", 0, 0),
    ("superset-first", ["order.*.*", "order.*.bbb"], "order.good.bbb", 0, 1),
    ("three-levels", ["noorder.*.*", "noorder.*.bbb", "noorder.ccc.bbb"], "noorder.ccc.bbb", 0, 2),
    (
        "backtrack-to-star",
        ["backtrack.*.bbb", "backtrack.justatest.aaa"],
        "backtrack.justatest.bbb",
        0,
        0,
    ),
    ("literal-dead-end", ["a.*.c", "*.*.*", "a.b.d"], "a.b.c", 0, 0),
    ("earlier-rule-behind-star", ["*.b.c", "a.b.*"], "a.b.c", 0, 1),
    ("prefix-after-longer", ["a.b.c", "a.b"], "a.b", 1, 1),  # deviation: upstream never matches
    ("longer-after-prefix", ["a.b", "a.b.c"], "a.b.c", 1, 1),
    ("repeated-pattern", ["a.*", "*.b", "a.*"], "a.b", 0, 0),  # deviation: upstream picks 1 ordered
    ("repeated-pattern-last", ["x.y", "x.y"], "x.y", 0, 0),
    ("no-match", ["a.b"], "a.c", -1, -1),
    ("star-branch-pruned", ["a.b.c", "*.x.y"], "a.b.c", 0, 0),
    ("both-ways-later-literal", ["*.*.z", "a.b.z"], "a.b.z", 0, 1),
    ("deep-backtrack", ["a.b.c.d", "a.b.*.e", "a.*.c.e", "*.*.*.e"], "a.b.c.e", 1, 1),
]


@pytest.mark.parametrize(
    ("patterns", "name", "ordered_winner", "literal_winner"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_winner(patterns: list[str], name: str, ordered_winner: int, literal_winner: int) -> None:
    parts = name.split(".")
    assert index(patterns, ordered=True).find(parts, Kind.COUNTER) == ordered_winner
    assert index(patterns, ordered=False).find(parts, Kind.COUNTER) == literal_winner


KIND_CASES: list[tuple[str, Kind, int]] = [
    ("counter-rule", Kind.COUNTER, 0),
    ("gauge-rule", Kind.GAUGE, 1),
    ("untyped-rule-for-observer", Kind.OBSERVER, 2),
]


@pytest.mark.parametrize(
    ("kind", "winner"), [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES]
)
def test_match_metric_type(kind: Kind, winner: int) -> None:
    found = index(["a.*", "a.*", "a.*"], True, [Kind.COUNTER, Kind.GAUGE, None])
    assert found.find(["a", "b"], kind) == winner


# -- against a brute-force reading of the same rules --------------------------

COMPONENTS = st.sampled_from(["a", "b", "c", ""])
PATTERN_COMPONENTS = st.sampled_from(["a", "b", "c", "*"])


def matches(pattern: list[str], parts: list[str]) -> bool:
    return len(pattern) == len(parts) and all(
        p in ("*", c) for p, c in zip(pattern, parts, strict=True)
    )


def brute_ordered(patterns: list[list[str]], parts: list[str]) -> int:
    return next((i for i, p in enumerate(patterns) if matches(p, parts)), -1)


def brute_literal_first(patterns: list[list[str]], parts: list[str]) -> int:
    # Read left to right, a literal sorts before '*'; ties go to the earliest.
    found = [(tuple(c == "*" for c in p), i) for i, p in enumerate(patterns) if matches(p, parts)]
    return min(found)[1] if found else -1


@given(
    st.lists(st.lists(PATTERN_COMPONENTS, min_size=1, max_size=4), min_size=1, max_size=12),
    st.lists(COMPONENTS, min_size=1, max_size=4),
)
def test_same_winner_as_brute_force(patterns: list[list[str]], parts: list[str]) -> None:
    ordered = GlobIndex(((p, None) for p in patterns), ordered=True)
    literal_first = GlobIndex(((p, None) for p in patterns), ordered=False)
    assert ordered.find(parts, Kind.GAUGE) == brute_ordered(patterns, parts)
    assert literal_first.find(parts, Kind.GAUGE) == brute_literal_first(patterns, parts)
