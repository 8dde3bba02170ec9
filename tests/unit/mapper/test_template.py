"""Template expansion in both of upstream's dialects: the glob formatter and
Go's Regexp.ExpandString."""

from __future__ import annotations

import re

import pytest

from aerostat.mapper.template import compile_glob_template, compile_regex_template

# Name "a.one.two.three" against a glob with '*' at components 1, 2 and 3.
GLOB_PARTS = ["a", "one", "two", "three"]
GLOB_STARS = [1, 2, 3]

GLOB: list[tuple[str, str, str]] = [
    ("plain", "name", "name"),
    ("dollar-n", "$1", "one"),
    ("braced", "${2}", "two"),
    ("braced-then-text", "${1}_total", "one_total"),
    ("n-then-underscore-reads-variable-1_total", "$1_total", ""),
    ("zero", "$0", ""),
    ("past-last-star", "$4", ""),
    ("leading-zero-is-a-number", "$01", "one"),
    ("named", "${name}", ""),
    ("two-in-a-row", "$1$2", "onetwo"),  # deviation: upstream reads "1$2" and gives ""
    ("dash-separated", "$1-$2-$3", "one-two-three"),
    ("ten-not-one", "$1_$10", ""),  # "$1_" is the variable "1_"; "$10" is past the last star
    ("closing-brace-eaten", "$1}", "one"),
    ("open-brace-unclosed", "${1", "one"),
    ("lone-dollar", "a$", "a$"),
    ("dollar-dash", "$-", "$-"),
    ("empty-braces", "${}", "${}"),
    ("percent-and-braces-literal", "{x}%s$1%", "{x}%sone%"),
]


@pytest.mark.parametrize(("template", "expected"), [c[1:] for c in GLOB], ids=[c[0] for c in GLOB])
def test_glob_template(template: str, expected: str) -> None:
    fmt, _ = compile_glob_template(template, GLOB_STARS)
    assert fmt.format(*GLOB_PARTS) == expected


PATTERN = re.compile(r"x\.(?P<app>\w+)\.(\w+)(\.(zzz))?")
SUBJECT = "pre.x.foo.bar.baz"

REGEX: list[tuple[str, str, str]] = [
    ("whole-match", "$0", "x.foo.bar"),
    ("group", "$2", "bar"),
    ("braced-group", "${1}x", "foox"),
    ("named-group", "$app", "foo"),
    ("braced-named-group", "${app}_total", "foo_total"),
    ("longest-name-1x", "$1x", ""),
    ("longest-name-2_", "$2_total", ""),
    ("unknown-name", "$nope", ""),
    ("group-past-last", "$9", ""),
    ("group-did-not-take-part", "[$4]", "[]"),
    ("double-dollar", "$$1", "$1"),
    ("leading-zero-is-a-name", "$01", ""),
    ("unclosed-brace-stays", "${1", "${1"),
    ("empty-braces-stay", "${}", "${}"),
    ("lone-dollar", "a$", "a$"),
    ("dollar-dash", "$-x", "$-x"),
    ("literal-braces", "{$1}", "{foo}"),
    ("unicode-name-char", "$1é", ""),
]


@pytest.mark.parametrize(
    ("template", "expected"), [c[1:] for c in REGEX], ids=[c[0] for c in REGEX]
)
def test_regex_template(template: str, expected: str) -> None:
    fmt, _ = compile_regex_template(template, PATTERN)
    found = PATTERN.search(SUBJECT)
    assert found is not None
    assert fmt.format(found.group(0), *found.groups("")) == expected


USES: list[tuple[str, str, bool]] = [
    ("constant", "abc", False),
    ("reference", "a$1", True),
    ("only-empty-references", "$0$9", False),
]


@pytest.mark.parametrize(("template", "uses"), [c[1:] for c in USES], ids=[c[0] for c in USES])
def test_glob_template_reports_references(template: str, uses: bool) -> None:
    assert compile_glob_template(template, GLOB_STARS)[1] is uses


def test_glob_template_ten_is_not_one() -> None:
    # deviation: upstream replaces the "$1" inside "$10" too and gives "c1-c100".
    parts = [f"c{i}" for i in range(11)]
    fmt, _ = compile_glob_template("$1-$10", list(range(1, 11)))
    assert fmt.format(*parts) == "c1-c10"
