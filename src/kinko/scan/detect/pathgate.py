"""Cheap pre-check for path-scoped rules: the literal file-name endings their `path_regex`es require.

A layer holds tens of thousands of files and almost none match a path rule. `re.search` with a pattern such as
`(?:^|/)\\.?pgpass$` tries every position of the path (~1 µs); `str.endswith` on the literal tails the regexes
end with (`pgpass`, `.cnf`, ...) rejects most paths in ~50 ns. The tails are read from the regex's parse tree;
anything the analysis does not understand disables the pre-check (the regex then decides alone), so it can only
skip paths the regexes could not match.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any

_parser: Any
try:  # the parser behind `re.compile` (private, present since 3.11): a missing one just disables the pre-check
    _parser = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - other Python implementations
    _parser = None


def _alternatives(items: list[Any]) -> list[list[Any]]:
    """The ways a parsed pattern can end: a trailing `a|b` is expanded (the parser moves a common prefix of the
    alternatives in front of it), nested ones too."""
    if items and items[-1][0] is _parser.BRANCH:
        out: list[list[Any]] = []
        for branch in items[-1][1][1]:
            out.extend(_alternatives(items[:-1] + list(branch)))
        return out
    return [items]


def _literal_tail(items: list[Any]) -> str:
    """The literal text an alternative must end with right before its `$` / `\\Z`; "" when there is none."""
    if not items or items[-1] not in ((_parser.AT, _parser.AT_END), (_parser.AT, _parser.AT_END_STRING)):
        return ""
    tail: list[str] = []
    for op, arg in reversed(items[:-1]):
        if op is not _parser.LITERAL:
            break
        tail.append(chr(arg))
    return "".join(reversed(tail))


def required_suffixes(patterns: Sequence[re.Pattern[str]]) -> tuple[str, ...] | None:
    """Endings of which every path matched by any of `patterns` has one (ignoring a newline in the path).

    None when that cannot be shown for every pattern (case-insensitive, no `$`, no literal before it, ...).
    """
    if _parser is None or not patterns:
        return None
    suffixes: list[str] = []
    for pattern in patterns:
        if pattern.flags & re.IGNORECASE:
            return None
        try:
            tree = _parser.parse(pattern.pattern, pattern.flags)
        except Exception:  # any surprise in a private API: no pre-check
            return None
        for alternative in _alternatives(list(tree)):
            tail = _literal_tail(alternative)
            if not tail:
                return None
            suffixes.append(tail)
    return tuple(suffixes)


def may_match(path: str, suffixes: tuple[str, ...] | None) -> bool:
    """False only when no pattern the suffixes came from can match `path`.

    `$` also matches before a trailing newline (and before any newline under MULTILINE): such paths always pass.
    """
    return suffixes is None or path.endswith(suffixes) or "\n" in path
