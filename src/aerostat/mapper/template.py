"""Name and label templates: ``$1``, ``${2}``, ``$name`` and friends,
compiled once into ``str.format`` strings.

statsd_exporter has two substitution dialects and aerostat keeps both:

* glob rules use its own formatter: ``$`` then an optional ``{``, a run of
  ``[A-Za-z0-9_]``, an optional ``}``. A run that is a number from 1 to the
  number of ``*`` in the match reads that component; any other run (``$0``,
  ``$9`` past the last ``*``, ``$1_total``, ``${a}``) reads nothing;
* regex rules use Go's ``Regexp.ExpandString``: ``$0`` is the whole match,
  ``$n``/``${n}`` a group, ``$name``/``${name}`` a named group, ``$$`` a
  dollar, and a malformed reference stays as written.

Both become a format string whose fields are positional indices: for a glob,
into the name's components; for a regex, into ``(whole match, *groups)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# upstream's token is [a-zA-Z0-9_$]+, so "$1$2" reads one variable named
# "1$2" and expands to nothing. deviation: "$" ends a reference here, so
# "$1$2" is the two components, as the name syntax upstream validates implies.
_GLOB_REF = re.compile(r"\$\{?([A-Za-z0-9_]+)\}?")

# Go refuses group numbers from 1e8 up and reads them as (missing) names.
_GO_MAX_GROUP = 100_000_000


def _literal(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def compile_glob_template(template: str, stars: Sequence[int]) -> tuple[str, bool]:
    """Compile a glob rule's template. ``stars`` holds the component index of
    each ``*`` in the match, in order. Returns the format string and whether
    it references anything at all."""
    out: list[str] = []
    pos = 0
    uses = False
    for ref in _GLOB_REF.finditer(template):
        out.append(_literal(template[pos : ref.start()]))
        pos = ref.end()
        var = ref.group(1)
        if var.isdigit() and 1 <= int(var) <= len(stars):
            out.append(f"{{{stars[int(var) - 1]}}}")
            uses = True
    out.append(_literal(template[pos:]))
    return "".join(out), uses


def _is_name_char(ch: str) -> bool:
    return ch.isalpha() or ch.isdecimal() or ch == "_"


def _go_reference(template: str, start: int) -> tuple[str, int] | None:
    """Read the reference after a ``$`` at ``start``, as Go's Regexp.Expand
    does: the longest run of letters, digits and ``_``, optionally inside
    braces. Returns the name and where the template goes on, or None when
    the ``$`` is not followed by a well-formed reference."""
    braced = template.startswith("{", start)
    end = start + 1 if braced else start
    first = end
    while end < len(template) and _is_name_char(template[end]):
        end += 1
    if end == first:
        return None
    name = template[first:end]
    if braced:
        if not template.startswith("}", end):
            return None
        end += 1
    return name, end


def _go_group(name: str, pattern: re.Pattern[str]) -> int | None:
    """The group a Go reference names, or None when it names none."""
    if name.isascii() and name.isdigit() and (name == "0" or name[0] != "0"):
        number = int(name)
        if number < _GO_MAX_GROUP:
            return number if number <= pattern.groups else None
    return pattern.groupindex.get(name)


def compile_regex_template(template: str, pattern: re.Pattern[str]) -> tuple[str, bool]:
    """Compile a regex rule's template against its pattern; format the
    result with ``(match.group(0), *match.groups(""))``."""
    out: list[str] = []
    pos = 0
    uses = False
    while (dollar := template.find("$", pos)) >= 0:
        out.append(_literal(template[pos:dollar]))
        pos = dollar + 1
        if template.startswith("$", pos):
            out.append("$")
            pos += 1
            continue
        ref = _go_reference(template, pos)
        if ref is None:
            out.append("$")
            continue
        name, pos = ref
        group = _go_group(name, pattern)
        if group is not None:
            out.append(f"{{{group}}}")
            uses = True
    out.append(_literal(template[pos:]))
    return "".join(out), uses
