"""The Mapper: a StatsD name and kind in, the matching rule with its
templates expanded out, behind an LRU cache.

Glob rules are all tried first, through the trie in glob.py; regex rules
after them, in file order (statsd_exporter #349). Whether a DROP match or an
unmapped name is dropped, counted or exposed is the caller's business.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence

from aerostat.events import Kind
from aerostat.mapper.glob import GlobIndex
from aerostat.mapper.rules import Defaults, MappingConfig, Match, MatchType, Rule
from aerostat.mapper.template import compile_glob_template, compile_regex_template
from aerostat.names import escape_metric_name


class _Expander:
    """A rule's name and label templates as format strings. A rule whose
    templates reference nothing answers with one prebuilt Match."""

    __slots__ = ("fixed", "labels", "name", "rule")

    def __init__(
        self, rule: Rule, name: tuple[str, bool], labels: list[tuple[str, tuple[str, bool]]]
    ) -> None:
        self.rule = rule
        self.name = name[0]
        self.labels = [(key, template) for key, (template, _) in labels]
        self.fixed: Match | None = None
        if not (name[1] or any(used for _, (_, used) in labels)):
            self.fixed = self.expand(())

    def expand(self, args: Sequence[str]) -> Match:
        if self.fixed is not None:
            return self.fixed
        return Match(
            self.rule,
            escape_metric_name(self.name.format(*args)),
            {key: template.format(*args) for key, template in self.labels},
        )


class _Regex:
    __slots__ = ("expander", "kind", "search")

    def __init__(self, rule: Rule) -> None:
        pattern = re.compile(rule.match)
        self.search = pattern.search  # unanchored, as upstream
        self.kind = rule.match_metric_type
        self.expander = _Expander(
            rule,
            compile_regex_template(rule.name, pattern),
            [(key, compile_regex_template(value, pattern)) for key, value in rule.labels],
        )


def _glob_expander(rule: Rule) -> _Expander:
    components = rule.match.split(".")
    stars = [i for i, component in enumerate(components) if component == "*"]
    return _Expander(
        rule,
        compile_glob_template(rule.name, stars),
        [(key, compile_glob_template(value, stars)) for key, value in rule.labels],
    )


class Mapper:
    """Maps StatsD names through one MappingConfig.

    ``cache_size`` bounds the LRU cache of answers, misses included
    (statsd_exporter's ``--statsd.cache-size``); 0 turns it off.
    ``cache_gets`` and ``cache_hits`` count lookups through the cache, as
    ``statsd_metric_mapper_cache_gets_total``/``_hits_total`` do.
    """

    __slots__ = (
        "_base",
        "_cache",
        "_cache_size",
        "_glob_expanders",
        "_globs",
        "_regexes",
        "cache_gets",
        "cache_hits",
        "config",
        "defaults",
    )

    def __init__(
        self, config: MappingConfig, cache_size: int = 1000, base: Mapper | None = None
    ) -> None:
        self.config = config
        # a built-in mapping under the user's: asked only for names the
        # user's rules leave unmatched, so a user rule can rename or drop
        # anything the base maps
        self._base = base
        # a user file without a defaults section keeps the base's
        self.defaults: Defaults = (
            base.defaults
            if base is not None and config.defaults == MappingConfig.empty().defaults
            else config.defaults
        )
        self.cache_gets = 0
        self.cache_hits = 0
        self._cache: OrderedDict[tuple[str, Kind], Match | None] = OrderedDict()
        self._cache_size = max(cache_size, 0)
        globs = [rule for rule in config.rules if rule.match_type is MatchType.GLOB]
        self._glob_expanders = [_glob_expander(rule) for rule in globs]
        self._globs = (
            GlobIndex(
                ((rule.match.split("."), rule.match_metric_type) for rule in globs),
                ordered=not config.defaults.glob_disable_ordering,
            )
            if globs
            else None
        )
        self._regexes = [
            _Regex(rule) for rule in config.rules if rule.match_type is MatchType.REGEX
        ]

    @property
    def cache_length(self) -> int:
        return len(self._cache)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule a name can meet: the user's, then the base's."""
        if self._base is None:
            return self.config.rules
        return self.config.rules + self._base.rules

    def map(self, name: str, kind: Kind) -> Match | None:
        """The rule ``name`` of ``kind`` falls under, expanded; None when no
        rule matches."""
        if not self._cache_size:
            return self._lookup(name, kind)
        self.cache_gets += 1
        key = (name, kind)
        cache = self._cache
        try:
            found = cache[key]
        except KeyError:
            found = self._lookup(name, kind)
            if len(cache) >= self._cache_size:
                cache.popitem(last=False)
            cache[key] = found
            return found
        cache.move_to_end(key)
        self.cache_hits += 1
        return found

    def _lookup(self, name: str, kind: Kind) -> Match | None:
        if self._globs is not None:
            parts = name.split(".")
            found = self._globs.find(parts, kind)
            if found >= 0:
                return self._glob_expanders[found].expand(parts)
        for regex in self._regexes:
            if regex.kind is not None and regex.kind is not kind:
                continue
            matched = regex.search(name)
            if matched is not None:
                return regex.expander.expand((matched.group(0), *matched.groups("")))
        if self._base is not None:
            return self._base._lookup(name, kind)
        return None
