"""Glob matching: which glob rule, if any, a dotted name falls under.

Rules are split on ``.`` into a trie per event kind and per number of
components, so a lookup walks at most one path per ``*`` branch it must try
and never looks at rules of another length or kind. How the two ordering
modes search the trie, and why, is in README.md next to this file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from aerostat.events import Kind

STAR = "*"
_NONE = sys.maxsize  # "no rule": larger than any rule position


class _Node:
    """One trie state. ``best`` is the earliest rule below it, which lets the
    ordered search skip a subtree that cannot beat what it already found;
    ``rule`` is set on the last level only."""

    __slots__ = ("best", "literal", "rule", "star")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.star: _Node | None = None
        self.rule = _NONE
        self.best = _NONE


def _earliest(node: _Node, parts: Sequence[str], i: int, bound: int) -> int:
    """The earliest rule below ``node`` matching ``parts[i:]`` that comes
    before ``bound``; ``bound`` itself if there is none."""
    n = len(parts)
    while i < n:
        lit = node.literal.get(parts[i])
        star = node.star
        if lit is not None and lit.best < bound:
            if star is not None and star.best < bound:
                # Both ways go on: try the one holding the earlier rule first,
                # then the other only if it can still beat what was found.
                first, second = (lit, star) if lit.best < star.best else (star, lit)
                bound = _earliest(first, parts, i + 1, bound)
                if second.best < bound:
                    bound = _earliest(second, parts, i + 1, bound)
                return bound
            node = lit
        elif star is not None and star.best < bound:
            node = star
        else:
            return bound
        i += 1
    return node.rule


def _literal_first(node: _Node, parts: Sequence[str], i: int) -> int:
    """The first rule reached by preferring a literal component over ``*``
    at every level, backtracking to ``*`` when the literal way dead-ends;
    -1 if none."""
    n = len(parts)
    while i < n:
        lit = node.literal.get(parts[i])
        star = node.star
        if lit is not None:
            if star is not None:
                found = _literal_first(lit, parts, i + 1)
                if found >= 0:
                    return found
                node = star
            else:
                node = lit
        elif star is not None:
            node = star
        else:
            return -1
        i += 1
    return node.rule


class GlobIndex:
    """All glob rules of a config, ready to search.

    ``patterns`` holds, in file order, each rule's components and the only
    kind it applies to (None for all). ``find`` answers with the position of
    the winning pattern in that sequence, or -1.

    ``ordered`` (the default, ``glob_disable_ordering: false``): the earliest
    matching rule wins. Otherwise a literal component beats ``*`` at each
    level, the earliest rule breaking a tie between identical patterns.
    """

    __slots__ = ("_ordered", "_roots")

    def __init__(
        self, patterns: Iterable[tuple[Sequence[str], Kind | None]], ordered: bool
    ) -> None:
        self._ordered = ordered
        self._roots: list[dict[int, _Node]] = [{} for _ in Kind]
        for position, (components, only) in enumerate(patterns):
            kinds = list(Kind) if only is None else [only]
            for kind in kinds:
                self._add(self._roots[kind], components, position)

    @staticmethod
    def _add(roots: dict[int, _Node], components: Sequence[str], position: int) -> None:
        node = roots.get(len(components))
        if node is None:
            node = roots[len(components)] = _Node()
        node.best = min(node.best, position)
        for component in components:
            if component == STAR:
                if node.star is None:
                    node.star = _Node()
                node = node.star
            else:
                child = node.literal.get(component)
                if child is None:
                    child = node.literal[component] = _Node()
                node = child
            node.best = min(node.best, position)
        # A repeated pattern keeps its first rule.
        node.rule = min(node.rule, position)

    def find(self, parts: Sequence[str], kind: Kind) -> int:
        root = self._roots[kind].get(len(parts))
        if root is None:
            return -1
        if self._ordered:
            found = _earliest(root, parts, 0, _NONE)
            return -1 if found == _NONE else found
        return _literal_first(root, parts, 0)
