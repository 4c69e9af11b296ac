"""A Dockerfile parser modelled on moby/buildkit's `frontend/dockerfile/parser`.

Directives, continuations, comments, exec/shell forms, heredocs, flags and stages. Word expansion lives in `words.py`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kinko.errors import ScanError
from kinko.scan.sources.dockerfile.words import split_words

#: Every instruction buildkit's instruction parser knows; anything else is "unknown instruction".
KNOWN = frozenset(
    [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ]
)
HEREDOC_CAPABLE = frozenset({"ADD", "COPY", "RUN"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"^<<(-?)\s*([^<]*)$")
_WS = re.compile(r"[\t\v\f\r ]+")


@dataclass(frozen=True)
class Heredoc:
    """One here-document: `<<EOF` (expand), `<<'EOF'` (literal), `<<-EOF` (leading tabs stripped)."""

    name: str
    content: str = field(repr=False)
    chomp: bool
    expand: bool
    first_line: int  # line number of the first content line


@dataclass
class Instruction:
    """One logical instruction. `rest` is the text after the flags; `args` its parsed form."""

    cmd: str
    line: int
    end_line: int
    rest: str = field(repr=False)
    flags: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list, repr=False)
    json_form: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    stage: int = -1  # -1: a meta ARG before the first FROM
    inner: Instruction | None = None  # the wrapped instruction of ONBUILD

    def flag_values(self, name: str) -> list[str]:
        """Values of `--name=value` flags (a bare `--name` gives "")."""
        out: list[str] = []
        for flag in self.flags:
            key, _, value = flag[2:].partition("=")
            if key.lower() == name:
                out.append(value)
        return out


@dataclass
class Stage:
    index: int
    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    directives: dict[str, str]
    escape: str
    instructions: list[Instruction]
    stages: list[Stage]
    meta_args: list[Instruction]

    def stage_ref(self, inst: Instruction) -> str | None:
        """How findings name the stage of `inst`: its `AS` name or "stage N"; None before the first FROM."""
        stage = self.stages[inst.stage] if inst.stage >= 0 else None
        return (stage.name or f"stage {stage.index}") if stage else None


def parse(text: str, *, source: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile. Raises ScanError naming `source` and the line for malformed input."""
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    directives, start = _directives(lines, source)
    escape = directives.get("escape", "\\")
    instructions = _Reader(lines, start, escape, source).read()
    if not instructions:
        raise ScanError(f"{source}: file with no instructions")
    return _stages(instructions, directives, escape, source)


def _directives(lines: list[str], source: str) -> tuple[dict[str, str], int]:
    """Parser directives: `# key=value` comment lines at the very top, before anything else."""
    found: dict[str, str] = {}
    for index, raw in enumerate(lines):
        match = _DIRECTIVE.match(raw.lstrip())
        if not match:
            return found, index
        key = match.group(1).lower()
        if key in found:
            raise ScanError(f"{source}:{index + 1}: only one {key} parser directive can be used")
        value = match.group(2)
        if key == "escape" and value not in ("\\", "`"):
            raise ScanError(f"{source}:{index + 1}: invalid escape token {value!r} does not match ` or \\")
        found[key] = value
    return found, len(lines)


class _Reader:
    """Joins physical lines into instructions the way buildkit's Parse loop does."""

    def __init__(self, lines: list[str], start: int, escape: str, source: str) -> None:
        self.lines = lines
        self.pos = start
        self.escape = escape
        self.source = source
        self.continuation = re.compile(re.escape(escape) + r"[ \t]*$")

    def _trim_continuation(self, line: str) -> tuple[str, bool]:
        """(line without the trailing escape, whether the logical line ended here)."""
        if self.continuation.search(line):
            return self.continuation.sub("", line), False
        return line, True

    def read(self) -> list[Instruction]:
        out: list[Instruction] = []
        while self.pos < len(self.lines):
            raw = self.lines[self.pos].lstrip(" \t")
            self.pos += 1
            start_line = self.pos
            if raw.startswith("#"):
                continue
            line, ended = self._trim_continuation(raw)
            if ended and not line.strip():
                continue
            while not ended and self.pos < len(self.lines):
                nxt = self.lines[self.pos]
                self.pos += 1
                stripped = nxt.lstrip(" \t")
                # Comment lines and empty lines inside a continuation are skipped (buildkit is lenient).
                if stripped.startswith("#") or not stripped.strip():
                    continue
                part, ended = self._trim_continuation(nxt)
                line += part
            out.append(self._instruction(line, start_line))
        return out

    def _instruction(self, line: str, start_line: int) -> Instruction:
        cmd, flags, rest = _split_command(line, self.escape, self.source, start_line)
        inst = Instruction(cmd=cmd, line=start_line, end_line=self.pos, rest=rest, flags=flags)
        if cmd == "ONBUILD":
            inner_cmd, inner_flags, inner_rest = _split_command(rest, self.escape, self.source, start_line)
            if inner_cmd in ("ONBUILD", "FROM", "MAINTAINER"):
                raise ScanError(f"{self.source}:{start_line}: {inner_cmd} isn't allowed as an ONBUILD trigger")
            inst.inner = Instruction(inner_cmd, start_line, self.pos, inner_rest, inner_flags)
            _parse_args(inst.inner, self.escape)
            if inner_cmd in HEREDOC_CAPABLE and not inst.inner.json_form and "<<" in inner_rest:
                inst.inner.heredocs = self._heredocs(inner_rest, start_line)  # ONBUILD RUN <<EOF is allowed
                inst.end_line = inst.inner.end_line = self.pos
            return inst
        _parse_args(inst, self.escape)
        if cmd in HEREDOC_CAPABLE and not inst.json_form and "<<" in rest:
            inst.heredocs = self._heredocs(rest, start_line)
            inst.end_line = self.pos
        return inst

    def _heredocs(self, rest: str, start_line: int) -> list[Heredoc]:
        docs: list[Heredoc] = []
        for word in split_words(rest, self.escape, keep_quotes=True):
            match = _HEREDOC.match(word)
            if not match or not match.group(2):
                continue
            chomp, spec = match.group(1) == "-", match.group(2)
            name = spec.replace('"', "").replace("'", "")
            if not name:
                continue
            docs.append(self._heredoc_body(name, chomp, expand=name == spec, start_line=start_line))
        return docs

    def _heredoc_body(self, name: str, chomp: bool, *, expand: bool, start_line: int) -> Heredoc:
        first = self.pos + 1
        body: list[str] = []
        while self.pos < len(self.lines):
            raw = self.lines[self.pos]
            self.pos += 1
            candidate = raw.lstrip("\t") if chomp else raw
            if candidate == name:
                content = "".join(ln + "\n" for ln in body)
                return Heredoc(name=name, content=content, chomp=chomp, expand=expand, first_line=first)
            body.append(candidate)
        raise ScanError(f"{self.source}:{start_line}: unterminated heredoc {name!r}")


def _split_command(line: str, escape: str, source: str, line_no: int) -> tuple[str, list[str], str]:
    """(upper-case instruction, leading `--flags`, remaining text)."""
    parts = _WS.split(line.strip(), maxsplit=1)
    cmd = parts[0].upper()
    if cmd not in KNOWN:
        raise ScanError(f"{source}:{line_no}: unknown instruction: {parts[0][:40]}")
    rest = parts[1] if len(parts) > 1 else ""
    flags: list[str] = []
    while rest.startswith("--"):
        words = split_words(rest, escape, keep_quotes=True, limit=1)
        if not words or words[0] == "--":
            break
        flags.append(words[0])
        rest = rest[len(words[0]) :].lstrip(" \t")
    return cmd, flags, rest


def _parse_args(inst: Instruction, escape: str) -> None:
    """Exec (JSON) form when `rest` is a JSON array of strings; otherwise shell form, like buildkit."""
    rest = inst.rest.strip()
    if inst.cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME", "HEALTHCHECK"):
        as_json = _json_list(rest)
        if as_json is not None:
            inst.args, inst.json_form = as_json, True
            return
    if inst.cmd in ("RUN", "CMD", "ENTRYPOINT", "HEALTHCHECK"):
        inst.args = [rest] if rest else []
    elif inst.cmd in ("ENV", "ARG", "LABEL"):
        inst.args = split_words(rest, escape, keep_quotes=True)
    else:
        inst.args = [w for w in _WS.split(rest) if w]


def _json_list(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _stages(instructions: list[Instruction], directives: dict[str, str], escape: str, source: str) -> Dockerfile:
    stages: list[Stage] = []
    meta: list[Instruction] = []
    for inst in instructions:
        if inst.cmd == "FROM":
            stages.append(_from(inst, len(stages), source))
        elif not stages:
            if inst.cmd != "ARG":
                raise ScanError(f"{source}:{inst.line}: {inst.cmd} before FROM: no build stage in current context")
            meta.append(inst)
            continue
        inst.stage = len(stages) - 1
        stages[-1].instructions.append(inst)
        _check(inst, source)
    if not stages:
        raise ScanError(f"{source}: no FROM instruction")
    return Dockerfile(directives, escape, instructions, stages, meta)


def _from(inst: Instruction, index: int, source: str) -> Stage:
    args = inst.args
    if len(args) == 3 and args[1].lower() == "as":
        return Stage(index, args[0], args[2].lower(), inst.line)
    if len(args) != 1:
        raise ScanError(f"{source}:{inst.line}: FROM requires either one or three arguments")
    return Stage(index, args[0], None, inst.line)


def _check(inst: Instruction, source: str) -> None:
    """The argument-count errors buildkit's instruction parser reports."""
    if inst.cmd in ("COPY", "ADD") and len(inst.args) < 2 and not inst.heredocs:
        raise ScanError(f"{source}:{inst.line}: {inst.cmd} requires at least two arguments")
    if inst.cmd in ("ENV", "WORKDIR", "USER") and not inst.args:
        raise ScanError(f"{source}:{inst.line}: {inst.cmd} requires at least one argument")
    if inst.cmd == "ARG" and not inst.args:
        raise ScanError(f"{source}:{inst.line}: ARG requires exactly one argument")
