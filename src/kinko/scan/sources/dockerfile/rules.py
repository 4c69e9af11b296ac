"""The Dockerfile misconfiguration rules, evaluated by simulating each stage's WORKDIR/ARG/ENV.

COPY-then-rm, ADD of a URL, secret-looking ARG/ENV, credential files in the final stage, inline RUN credentials.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from kinko.scan.interface import Finding, Location
from kinko.scan.misconfig_rules import (
    ADD_REMOTE_URL,
    COPY_THEN_RM,
    COPY_THEN_RM_SECRET,
    CREDENTIAL_FILE_FINAL_STAGE,
    SECRET_ARG,
    SECRET_ENV,
    MisconfigRule,
    secret_name,
)
from kinko.scan.sources.dockerfile.inline import inline_credential_findings
from kinko.scan.sources.dockerfile.parser import Dockerfile, Instruction, Stage
from kinko.scan.sources.dockerfile.shell import (
    exec_removed_paths,
    looks_secret,
    removed_paths,
    removes,
    resolve,
    script_text,
)
from kinko.scan.sources.dockerfile.words import expand, name_values

_REMOTE = re.compile(r"^(?:https?://|git@|git://|ssh://)", re.IGNORECASE)


@dataclass
class _Copy:
    inst: Instruction
    stage: Stage
    sources: list[str]
    paths: list[tuple[str, bool]]  # (absolute destination, may be a directory)
    removed: list[tuple[Instruction, str]] = field(default_factory=list)


class _Analysis:
    def __init__(self, df: Dockerfile, artifact: str, path: str) -> None:
        self.df = df
        self.artifact = artifact
        self.path = path
        self.findings: list[Finding] = []
        self.meta_env: dict[str, str] = {}
        self.shipped = _shipped_stages(df)

    def finding(self, rule: MisconfigRule, inst: Instruction, msg: str, **fix_values: str) -> None:
        loc = Location(artifact=self.artifact, path=self.path, line=inst.line, object_ref=self.df.stage_ref(inst))
        self.findings.append(rule.finding(loc, msg, **fix_values))

    def run(self) -> list[Finding]:
        for inst in self.df.meta_args:
            for name, value in name_values(inst.args, self.meta_env, self.df.escape, legacy_ok=False):
                if value is not None:
                    self.meta_env[name] = value
                self._arg_env(inst, name, value)
        for stage in self.df.stages:
            self._stage(stage)
        return self.findings

    def _stage(self, stage: Stage) -> None:
        env: dict[str, str] = {}
        workdir = "/"
        copies: list[_Copy] = []
        for inst in stage.instructions:
            if inst.cmd in ("ARG", "ENV"):
                pairs = name_values(inst.args, env, self.df.escape, legacy_ok=inst.cmd == "ENV")
                for name, value in pairs:
                    self._arg_env(inst, name, value)
                    default = self.meta_env.get(name) if inst.cmd == "ARG" else None
                    env[name] = value if value is not None else (default or env.get(name, ""))
            elif inst.cmd == "WORKDIR" and inst.args:
                workdir = resolve(expand(inst.args[0], env, self.df.escape), workdir)
            elif inst.cmd in ("COPY", "ADD"):
                copies.append(self._copy(inst, stage, env, workdir))
            elif inst.cmd == "RUN":
                self._run(inst, env, workdir, copies)
        self._report_copies(stage, copies)

    def _copy(self, inst: Instruction, stage: Stage, env: dict[str, str], workdir: str) -> _Copy:
        words = [expand(a, env, self.df.escape) for a in inst.args] if not inst.json_form else list(inst.args)
        sources, dest = words[:-1], words[-1] if words else "."
        if inst.cmd == "ADD" and not inst.flag_values("checksum"):
            for src in sources:
                if _REMOTE.match(src):
                    message = f"ADD at line {inst.line} fetches a remote URL whose content is not verified"
                    self.finding(ADD_REMOTE_URL, inst, message)
        dest_is_dir = dest.endswith("/") or len(sources) > 1 or dest in (".", "./")
        base = resolve(dest, workdir)
        paths: list[tuple[str, bool]] = []
        for src in sources:
            if dest_is_dir and src.rstrip("/") not in ("", ".") and not src.endswith("/"):
                paths.append((posixpath.join(base, posixpath.basename(src.rstrip("/"))), True))
            else:
                paths.append((base, True))
        return _Copy(inst, stage, sources, paths)

    def _run(self, inst: Instruction, env: dict[str, str], workdir: str, copies: list[_Copy]) -> None:
        if inst.json_form:
            targets = exec_removed_paths(inst.args, env, workdir)
        else:
            bodies = [doc.content for doc in inst.heredocs]
            targets = removed_paths(script_text(inst.rest, bodies), env, workdir)
        for target in targets:
            for copy in copies:
                if any(removes(target, p, may_dir) for p, may_dir in copy.paths):
                    copy.removed.append((inst, target))

    def _report_copies(self, stage: Stage, copies: list[_Copy]) -> None:
        shipped = stage.index in self.shipped
        for copy in copies:
            names = copy.sources + [p for p, _ in copy.paths]
            secretish = any(looks_secret(n) for n in names)
            if copy.removed:
                self._copy_then_rm(copy, secretish or any(looks_secret(t) for _, t in copy.removed), shipped)
            elif secretish and stage.index == len(self.df.stages) - 1:
                dest = copy.paths[0][0] if copy.paths else "?"
                self.finding(
                    CREDENTIAL_FILE_FINAL_STAGE,
                    copy.inst,
                    f"{copy.inst.cmd} at line {copy.inst.line} puts a credential-looking file at {dest} "
                    "in the final stage; anyone who can pull the image can read it",
                )

    def _copy_then_rm(self, copy: _Copy, secretish: bool, shipped: bool) -> None:
        rm_inst, target = copy.removed[0]
        dest = copy.paths[0][0] if copy.paths else "?"
        rule = COPY_THEN_RM_SECRET if secretish and shipped else COPY_THEN_RM
        where = "" if shipped else f" (stage {copy.stage.name or copy.stage.index} is not in the final image)"
        message = (
            f"{copy.inst.cmd} at line {copy.inst.line} adds {dest}; RUN at line {rm_inst.line} deletes {target}, "
            f"but the layer created by line {copy.inst.line} still contains it (docker save exposes it){where}"
        )
        self.finding(rule, copy.inst, message)

    def _arg_env(self, inst: Instruction, name: str, value: str | None) -> None:
        if not secret_name(name):
            return
        if inst.cmd == "ENV":
            why = "ENV values are stored in the image config (docker inspect shows them)"
        elif value:
            why = "the ARG default is recorded in the image history of every RUN that uses it"
        else:
            why = "--build-arg values are recorded in the image history of every RUN that uses them"
        rule = SECRET_ENV if inst.cmd == "ENV" else SECRET_ARG
        self.finding(rule, inst, f"{inst.cmd} {name} at line {inst.line} looks like a secret: {why}", name=name)


def _shipped_stages(df: Dockerfile) -> set[int]:
    """The final stage and every stage it is built FROM (their layers are part of the final image)."""
    by_name = {s.name: s for s in df.stages if s.name}
    shipped: set[int] = set()
    stage: Stage | None = df.stages[-1]
    while stage is not None and stage.index not in shipped:
        shipped.add(stage.index)
        stage = by_name.get(stage.base.lower())
    return shipped


def misconfig_findings(df: Dockerfile, artifact: str, path: str) -> list[Finding]:
    """All rule findings for one parsed Dockerfile, plus inline-credential RUN findings."""
    findings = _Analysis(df, artifact, path).run()
    findings.extend(inline_credential_findings(df, artifact, path))
    return findings
