"""Dockerfile word handling: splitting with quotes/escapes and `$VAR` / `${VAR:-x}` expansion (buildkit shlex)."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9_]+")
_BRACE = re.compile(r"[{}]")
_NOT_BRACE = re.compile(r"[^{}]+")
_WHITESPACE = " \t\v\f\r\n"
#: `${A:-${B:-...}}` nested deeper than this is left as written (real Dockerfiles nest one or two levels; a
#: hostile one nested thousands deep would exhaust Python's stack).
MAX_NESTING = 32


def split_words(text: str, escape: str = "\\", *, keep_quotes: bool = True, limit: int = 0) -> list[str]:
    """Split on unquoted whitespace (buildkit `parseWords`); quotes and escapes are kept in the words.

    `limit` > 0 stops after that many words.
    """
    words: list[str] = []
    word: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and quote != "'" and i + 1 < len(text):
            word += [ch, text[i + 1]] if keep_quotes else [text[i + 1]]
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
                if not keep_quotes:
                    i += 1
                    continue
        elif ch in "'\"":
            quote = ch
            if not keep_quotes:
                i += 1
                continue
        elif ch in _WHITESPACE:
            if word:
                words.append("".join(word))
                word = []
                if limit and len(words) >= limit:
                    return words
            i += 1
            continue
        word.append(ch)
        i += 1
    if word:
        words.append("".join(word))
    return words


def expand(word: str, env: dict[str, str], escape: str = "\\", *, depth: int = 0) -> str:
    """Process one word like buildkit's ProcessWord: remove quotes, apply escapes, expand variables.

    Unknown variables expand to "" (as in buildkit). Single-quoted text is literal. `depth` counts the `${...}`
    modifiers this word is nested in: a word whose braces nest deeper than MAX_NESTING is returned as written.
    """
    if depth > MAX_NESTING or (depth == 0 and _too_deep(word)):
        return word
    return _Expander(word, env, escape, depth).run()


def _too_deep(word: str) -> bool:
    """Whether braces nest deeper than MAX_NESTING, found at C speed (one layer of `{}` pairs stripped per pass):
    each nested `${...}` rescans its body, so a word nested thousands deep is refused before any of that."""
    braces = _NOT_BRACE.sub("", word)
    for _ in range(MAX_NESTING + 1):
        if "{}" not in braces:
            return False
        braces = braces.replace("{}", "")
    return "{}" in braces


class _Expander:
    def __init__(self, text: str, env: dict[str, str], escape: str, depth: int = 0) -> None:
        self.text = text
        self.env = env
        self.escape = escape
        self.depth = depth
        self.i = 0

    def run(self) -> str:
        out: list[str] = []
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == "'":
                end = text.find("'", self.i + 1)
                end = len(text) if end < 0 else end
                out.append(text[self.i + 1 : end])
                self.i = end + 1
            elif ch == '"':
                self.i += 1
                out.append(self._double_quoted())
            elif ch == self.escape and self.i + 1 < len(text):
                out.append(text[self.i + 1])
                self.i += 2
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
                self.i += 1
        return "".join(out)

    def _double_quoted(self) -> str:
        out: list[str] = []
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == '"':
                self.i += 1
                break
            if ch == self.escape and self.i + 1 < len(text) and text[self.i + 1] in ('"', "$", self.escape):
                out.append(text[self.i + 1])
                self.i += 2
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)
                self.i += 1
        return "".join(out)

    def _dollar(self) -> str:
        text = self.text
        self.i += 1  # past '$'
        if self.i < len(text) and text[self.i] == "{":
            return self._braced()
        match = _NAME.match(text, self.i)
        if not match:
            return "$"
        self.i = match.end()
        return self.env.get(match.group(0), "")

    def _braced(self) -> str:
        text = self.text
        depth, j = 1, self.i + 1
        while depth:  # from brace to brace (a regex search), not character by character
            brace = _BRACE.search(text, j)
            if brace is None:
                j = len(text) + 1  # unterminated: the body runs to the end
                break
            depth += 1 if brace.group() == "{" else -1
            j = brace.end()
        body = text[self.i + 1 : j - 1]
        self.i = min(j, len(text))
        match = _NAME.match(body)
        if not match:
            return ""
        name, op = match.group(0), body[match.end() :]
        value = self.env.get(name)
        return _modifier(value, op, self.env, self.escape, self.depth)


def _modifier(value: str | None, op: str, env: dict[str, str], escape: str, depth: int) -> str:
    """`${VAR<op>}`: :- - :+ + :? ? (others, such as # % /, keep the value as is)."""
    for prefix in (":-", ":+", ":?", "-", "+", "?"):
        if op.startswith(prefix):
            word = expand(op[len(prefix) :], env, escape, depth=depth + 1)
            unset = value is None or (prefix.startswith(":") and value == "")
            if prefix.endswith("-"):
                return word if unset else str(value)
            if prefix.endswith("+"):
                return "" if unset else word
            return value or ""
    return value or ""


def name_values(args: list[str], env: dict[str, str], escape: str, *, legacy_ok: bool) -> list[tuple[str, str | None]]:
    """ENV/ARG/LABEL words -> (name, expanded value) pairs; value None for a bare `ARG NAME`.

    Legacy `ENV name value` (no `=` in the first word) when `legacy_ok`.
    """
    if not args:
        return []
    if legacy_ok and "=" not in args[0]:
        value = " ".join(args[1:])
        return [(args[0], expand(value, env, escape))]
    pairs: list[tuple[str, str | None]] = []
    for word in args:
        name, sep, value = word.partition("=")
        pairs.append((expand(name, env, escape), expand(value, env, escape) if sep else None))
    return pairs
