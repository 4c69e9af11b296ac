"""The Dockerfile parser: directives, continuations, comments, forms, heredocs, flags, stages, expansion."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinko.errors import ScanError
from kinko.scan.sources.dockerfile.parser import parse
from kinko.scan.sources.dockerfile.words import expand, name_values, split_words


def test_seed_dockerfile_parses_with_line_numbers() -> None:
    df = parse("FROM gcr.io/distroless/static\nCOPY secret /root/bad-secret\nRUN rm -f /root/bad-secret")
    assert [(i.cmd, i.line) for i in df.instructions] == [("FROM", 1), ("COPY", 2), ("RUN", 3)]
    assert df.instructions[1].args == ["secret", "/root/bad-secret"]
    assert df.instructions[2].args == ["rm -f /root/bad-secret"]
    assert df.stages[0].base == "gcr.io/distroless/static"


def test_continuations_comments_and_empty_lines_inside() -> None:
    text = "FROM a\nRUN echo one \\\n  # a comment inside\n\n  && echo two \\\n    && echo three\nUSER app\n"
    df = parse(text)
    run = df.instructions[1]
    assert (run.line, run.end_line) == (2, 6)
    assert "echo one" in run.rest and "echo three" in run.rest and "comment" not in run.rest
    assert df.instructions[2].line == 7


def test_escape_directive_backtick() -> None:
    df = parse("# escape=`\nFROM windows\nRUN dir c:\\ `\n  && echo done\n")
    assert df.escape == "`"
    assert df.instructions[1].rest == "dir c:\\   && echo done"


def test_directives_only_at_top() -> None:
    df = parse("FROM a\n# escape=`\nRUN x \\\n y\n")
    assert df.escape == "\\" and df.directives == {}
    assert df.instructions[1].rest.endswith("y")


def test_syntax_and_escape_directives_recorded_and_validated() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM a\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "\\"}
    with pytest.raises(ScanError, match=r":1: invalid escape token"):
        parse("# escape=x\nFROM a\n")
    with pytest.raises(ScanError, match="only one escape"):
        parse("# escape=`\n# escape=`\nFROM a\n")


def test_exec_and_shell_forms() -> None:
    df = parse('FROM a\nRUN ["sh", "-c", "echo hi"]\nCMD echo $HOME\nRUN [not json\n')
    assert df.instructions[1].json_form and df.instructions[1].args == ["sh", "-c", "echo hi"]
    assert not df.instructions[2].json_form and df.instructions[2].args == ["echo $HOME"]
    assert not df.instructions[3].json_form and df.instructions[3].args == ["[not json"]


def test_heredocs_quoted_chomped_and_several_on_one_line() -> None:
    text = (
        "FROM a\n"
        "RUN <<EOF cat >/a && cat <<-'END' >/b\n"
        "echo $X\n"
        "EOF\n"
        "\t\tliteral\n"
        "\tEND\n"
        'COPY <<"CONF" /etc/app.conf\n'
        "key=1\n"
        "CONF\n"
        "USER app\n"
    )
    df = parse(text)
    run, copy, user = df.instructions[1], df.instructions[2], df.instructions[3]
    first, second = run.heredocs
    assert (first.name, first.expand, first.chomp, first.content, first.first_line) == (
        "EOF",
        True,
        False,
        "echo $X\n",
        3,
    )
    assert (second.name, second.expand, second.chomp, second.content) == ("END", False, True, "literal\n")
    assert run.end_line == 6
    assert copy.heredocs[0].name == "CONF" and not copy.heredocs[0].expand
    assert copy.heredocs[0].content == "key=1\n"
    assert user.line == 10


def test_heredoc_not_parsed_in_json_form_or_other_instructions() -> None:
    df = parse('FROM a\nRUN ["cat", "<<EOF"]\nLABEL x="<<EOF"\n')
    assert df.instructions[1].heredocs == [] and df.instructions[2].heredocs == []


def test_unterminated_heredoc_is_an_error_with_line() -> None:
    with pytest.raises(ScanError, match=r"Dockerfile:2: unterminated heredoc 'EOF'"):
        parse("FROM a\nRUN <<EOF\necho hi\n")


def test_flags_extracted() -> None:
    text = (
        "FROM --platform=linux/amd64 a AS build\n"
        "COPY --from=build --chown=1:1 /x /y\n"
        "RUN --mount=type=secret,id=npm,env=NPM_TOKEN npm ci\n"
        "ADD --checksum=sha256:abc https://e.com/a /a\n"
    )
    df = parse(text)
    copy, run, add = df.instructions[1:]
    assert copy.flag_values("from") == ["build"] and copy.flag_values("chown") == ["1:1"]
    assert copy.args == ["/x", "/y"]
    assert run.flag_values("mount") == ["type=secret,id=npm,env=NPM_TOKEN"] and run.rest == "npm ci"
    assert add.flag_values("checksum") == ["sha256:abc"]
    assert df.stages[0].name == "build" and df.stages[0].base == "a"


def test_multi_stage_and_meta_args() -> None:
    df = parse("ARG BASE=alpine\nFROM $BASE AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n")
    assert [s.name for s in df.stages] == ["build", None]
    assert [i.cmd for i in df.meta_args] == ["ARG"]
    assert [i.stage for i in df.instructions] == [-1, 0, 0, 1, 1]


def test_onbuild_wraps_an_instruction() -> None:
    df = parse("FROM a\nONBUILD RUN echo hi\nONBUILD RUN <<EOF\necho in heredoc\nEOF\nUSER x\n")
    assert df.instructions[1].inner is not None and df.instructions[1].inner.cmd == "RUN"
    heredoc_inner = df.instructions[2].inner
    assert heredoc_inner is not None and heredoc_inner.heredocs[0].content == "echo in heredoc\n"
    assert df.instructions[3].line == 6


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no instructions"),
        ("# only a comment\n", "no instructions"),
        ("FROM a\nFROBNICATE x\n", r":2: unknown instruction: FROBNICATE"),
        ("RUN echo\n", r":1: RUN before FROM"),
        ("FROM a b\n", r":1: FROM requires"),
        ("FROM a\nCOPY onlyone\n", r":2: COPY requires at least two"),
        ("FROM a\nONBUILD FROM b\n", "isn't allowed"),
    ],
)
def test_malformed_input_gives_scan_error_with_line(text: str, error: str) -> None:
    with pytest.raises(ScanError, match=error):
        parse(text)


def test_lenient_like_buildkit() -> None:
    # trailing continuation at EOF, CRLF line endings, BOM, lower-case instructions
    df = parse("\ufefffrom a\r\nrun echo hi \\\r\n")
    assert [i.cmd for i in df.instructions] == ["FROM", "RUN"]
    assert df.instructions[1].rest.strip() == "echo hi"


def test_expansion_forms() -> None:
    env = {"A": "1", "EMPTY": ""}
    assert expand("$A-${A}-${B:-def}-${EMPTY:-d2}-${EMPTY-d3}-${A:+set}-${B:+no}", env) == "1-1-def-d2--set-"
    assert expand("'$A' \"$A\" \\$A", env) == "$A 1 $A"
    assert expand("${A:-${B:-nested}}", {}) == "nested"
    assert expand("`$A", env, escape="`") == "$A"


def test_deeply_nested_expansion_is_left_as_written_not_a_crash() -> None:
    """Found by tests/fuzz/test_scan_dockerfile.py: `${A:-${A:-...}}` a few hundred deep raised RecursionError."""
    from kinko.scan.sources.dockerfile.words import MAX_NESTING

    deep = "${A:-" * 400 + "x" + "}" * 400
    assert expand(deep, {}) == deep  # left as written
    huge = "${A:-" * 100_000 + "x" + "}" * 100_000
    start = time.monotonic()
    assert expand(huge, {}) == huge
    assert time.monotonic() - start < 2  # refused up front, not after 32 levels that each rescan the body
    shallow = "${A:-" * MAX_NESTING + "x" + "}" * MAX_NESTING
    assert expand(shallow, {}) == "x"  # every real nesting still expands
    df = parse(f"FROM alpine\nENV PASSWORD={deep}\nRUN echo {deep}\n")
    from kinko.scan.sources.dockerfile.rules import misconfig_findings

    assert "dockerfile-secret-arg-env" in {f.rule_id for f in misconfig_findings(df, "Dockerfile", "Dockerfile")}


def test_env_pairs_and_legacy_form() -> None:
    env: dict[str, str] = {"X": "x"}
    words = split_words('A=1 B="two words" C=$X', "\\")
    assert name_values(words, env, "\\", legacy_ok=True) == [("A", "1"), ("B", "two words"), ("C", "x")]
    legacy = split_words("NAME some value", "\\")
    assert name_values(legacy, env, "\\", legacy_ok=True) == [("NAME", "some value")]
    assert name_values(["TOKEN"], env, "\\", legacy_ok=False) == [("TOKEN", None)]


_PIECES = ["FROM a", "RUN ", "COPY ", "ADD ", "ENV ", "ARG ", "ONBUILD ", "# escape=`", "\\", "`", "\n", " ",
           "<<EOF", "<<-'E'", "EOF", "E", "[\"x\"]", "$A", "${A:-b}", "--from=x", "'", '"', "#", "\t", "=",
           "AS b"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_parser_never_crashes(pieces: list[str]) -> None:
    from kinko.scan.sources.dockerfile.rules import misconfig_findings

    try:
        df = parse("".join(pieces))
    except ScanError:
        return
    misconfig_findings(df, "Dockerfile", "Dockerfile")  # the rules cope with whatever parsed
