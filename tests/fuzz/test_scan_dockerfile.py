"""Fuzz the Dockerfile parser (parser.py), its word handling (words.py) and shell reading (shell.py), and the rules.

Properties: ScanError is the only error of parsing and of the rules over a parse; instructions and heredocs keep
consistent line numbers; word splitting only removes unquoted whitespace; expansion and shell reading never raise.
"""

from __future__ import annotations

import posixpath

from hypothesis import given
from hypothesis import strategies as st

from kinko.errors import ScanError
from kinko.scan.sources.dockerfile.parser import Dockerfile, parse
from kinko.scan.sources.dockerfile.shell import exec_removed_paths, looks_secret, removed_paths, resolve
from kinko.scan.sources.dockerfile.source import dockerfile_misconfigs
from kinko.scan.sources.dockerfile.words import expand, name_values, split_words
from tests.fuzz.budget import fuzz

_PIECES = [
    "FROM ", "FROM alpine AS build", "FROM scratch", "ARG ", "ENV ", "RUN ", "COPY ", "ADD ", "ONBUILD ", "LABEL ",
    "USER ", "WORKDIR ", "CMD ", "SHELL ", "HEALTHCHECK ", "EXPOSE ", "VOLUME ", "MAINTAINER ", "BOGUS ",
    "# escape=`\n", "# syntax=docker/dockerfile:1\n", "# comment\n", "\n", "\r\n", " ", "\t", "\\\n", "`\n", "\ufeff",
    "<<EOF", "<<-EOF", "<<'EOF'", '<<"EOF"', "EOF\n", "\tEOF\n", "--mount=type=secret,id=x", "--chmod=600",
    "--from=build",
    "--", '["sh", "-c", "rm -f /x"]', "[1, 2]", "[", "]", '"', "'", "$", "${", "}", "${A:-x}", "${A:+y}", "${A?}",
    "$A", "A=1", "PASSWORD=hunter2", "TOKEN", "=", "id_rsa", "/root/.ssh/id_rsa", "rm -rf /root/.ssh", "&&", ";", "|",
    "unlink x", "shred -u .env", "sudo rm ~/.aws/credentials", "https://example.com/x.tgz", "git@github.com:a/b",
    "AS", "as", "x", "/", "..", "*", ".env",
]  # fmt: skip
_COMMANDS = ["ARG", "ENV", "RUN", "COPY", "ADD", "ONBUILD RUN", "ONBUILD COPY", "LABEL", "USER", "WORKDIR", "CMD",
             "ENTRYPOINT", "SHELL", "HEALTHCHECK CMD", "EXPOSE", "VOLUME", "FROM", "STOPSIGNAL", "run", "copy"]
_WORDS = [p.strip() for p in _PIECES if p.strip()] + ["secret.txt", "/app/", "$HOME/x", "${TOKEN}", "a b", "\\ "]
_LINE = st.builds(lambda cmd, words: cmd + " " + " ".join(words), st.sampled_from(_COMMANDS),
                  st.lists(st.sampled_from(_WORDS), max_size=6))
_HEREDOC = st.builds(lambda cmd, name, body: f"{cmd} <<{name} /x\n{body}\n{name.strip(chr(39) + chr(34) + '-')}",
                     st.sampled_from(["RUN", "COPY", "RUN cat", "ONBUILD RUN"]),
                     st.sampled_from(["EOF", "-EOF", "'EOF'", '"EOF"']), st.text(max_size=30))
#: Dockerfiles that mostly parse (a FROM, known instructions, heredocs, continuations), so the rules run too
DOCKERFILES = st.builds(
    lambda head, lines, sep: head + sep.join(lines) + "\n",
    st.sampled_from(["FROM alpine\n", "ARG V=1\nFROM alpine:$V AS build\n", "# escape=`\nFROM scratch\n", ""]),
    st.lists(st.one_of(_LINE, _HEREDOC), max_size=15),
    st.sampled_from(["\n", "\r\n", " \\\n  ", "\n# c\n"]),
)
TEXT = st.one_of(
    DOCKERFILES,
    st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=8)), max_size=40).map("".join),
)


def _check_lines(df: Dockerfile, text: str) -> None:
    last = len(text.split("\n"))
    previous = 0
    for inst in df.instructions:
        assert previous < inst.line <= inst.end_line <= last
        previous = inst.end_line
        for doc in inst.heredocs:
            assert inst.line < doc.first_line <= inst.end_line + 1
        assert inst.stage == -1 or 0 <= inst.stage < len(df.stages)
        df.stage_ref(inst)
    assert df.stages and all(stage.line >= 1 for stage in df.stages)


@fuzz
@given(TEXT)
def test_parse_raises_only_scan_errors_and_keeps_lines(text: str) -> None:
    try:
        df = parse(text, source="Dockerfile")
    except ScanError as exc:
        assert exc.message.startswith("Dockerfile")  # names the file (and the line, where there is one)
        return
    _check_lines(df, text)


@fuzz
@given(TEXT)
def test_rules_over_any_parse_raise_only_scan_errors(text: str) -> None:
    try:
        findings = dockerfile_misconfigs(text.encode("utf-8", "surrogatepass"), "img", "Dockerfile")
    except ScanError:
        return
    assert all(f.location.line is not None and f.location.line >= 1 for f in findings)


_WORD_TEXT = st.text(st.sampled_from(" \t\n\"'\\`$ab={}:-+?"), max_size=60)


def _only_whitespace_removed(text: str, joined: str) -> bool:
    """`joined` is `text` with some whitespace characters deleted and nothing else changed."""
    i = 0
    for ch in text:
        if i < len(joined) and joined[i] == ch:
            i += 1
        elif ch not in " \t\v\f\r\n":
            return False
    return i == len(joined)


@fuzz
@given(_WORD_TEXT, st.sampled_from(["\\", "`"]), st.integers(0, 4))
def test_split_words_removes_only_separating_whitespace(text: str, escape: str, limit: int) -> None:
    words = split_words(text, escape, keep_quotes=True)
    assert all(words) and _only_whitespace_removed(text, "".join(words))
    assert split_words(text, escape, keep_quotes=True, limit=limit) == (words[:limit] if limit else words)
    split_words(text, escape, keep_quotes=False)


_NESTED = st.integers(0, 400).map(lambda n: "${A:-" * n + "x" + "}" * n)


@fuzz
@given(st.one_of(_WORD_TEXT, _NESTED), st.dictionaries(st.sampled_from(["A", "b", "a_1"]), _WORD_TEXT, max_size=3),
       st.sampled_from(["\\", "`"]))  # fmt: skip
def test_expand_never_raises(word: str, env: dict[str, str], escape: str) -> None:
    assert isinstance(expand(word, env, escape), str)
    name_values(split_words(word, escape), env, escape, legacy_ok=True)
    if not set(word) & set("'\"$" + escape):
        assert expand(word, env, escape) == word  # nothing to remove or expand: the word itself


@fuzz
@given(TEXT, st.dictionaries(st.sampled_from(["A", "HOME"]), st.text(max_size=10), max_size=2),
       st.sampled_from(["", "/", "/app", "/a/../b/"]))  # fmt: skip
def test_shell_reading_never_raises(text: str, env: dict[str, str], workdir: str) -> None:
    for path in removed_paths(text, env, workdir) + exec_removed_paths(text.split(" "), env, workdir):
        assert path.startswith("/") and not path.startswith("//") and posixpath.normpath(path) == path
        looks_secret(path)
    assert resolve(resolve(text, workdir), "/") == resolve(text, workdir)
