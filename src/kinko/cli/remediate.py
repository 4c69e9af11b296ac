"""`kinko remediate REPORT.json`: from a scan's findings to a plan a user can apply.

The plan has four parts: values to import into the vault (`--apply` writes them with cas=0: a path that exists is
never overwritten; values are never printed), Dockerfile steps to rewrite (`COPY secret` + `RUN rm` →
`RUN --mount=type=secret`), a SecretProviderClass and a 0400 CSI volume for the workloads that held the values
(with --role and --address), and every value that must be rotated because it already leaked: what an image layer
or git history holds is compromised even when a later layer or commit deleted it.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from kinko.cli._common import handle_errors, vault_option
from kinko.errors import InvalidInput

_REDACTED = "********"
_SEGMENT = re.compile(r"[^A-Za-z0-9._-]+")
_DOCKERFILE_RULES = {"dockerfile-copy-then-rm", "dockerfile-credential-file-final-stage"}


@dataclass
class Plan:
    imports: list[dict[str, Any]] = field(default_factory=list)
    rotate: list[dict[str, Any]] = field(default_factory=list)
    dockerfile: list[dict[str, Any]] = field(default_factory=list)
    kubernetes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"import": self.imports, "rotate": self.rotate, "dockerfile": self.dockerfile,
                "kubernetes": self.kubernetes}  # fmt: skip


def _where(loc: dict[str, Any]) -> str:
    line = f":{loc['line']}" if loc.get("line") else ""
    layer = f" (layer {loc['layer_index']})" if loc.get("layer_index") is not None else ""
    return f"{loc.get('artifact')}!{loc.get('path')}{line}{layer}"


def _leak_reason(loc: dict[str, Any]) -> str:
    if loc.get("layer_index") is not None or str(loc.get("path", "")).startswith("config:"):
        deleted = loc.get("status") == "deleted"
        return "in an image layer" + (", deleted by a later layer but still recoverable" if deleted else "")
    if loc.get("status") == "deleted":
        return "in history only (removed since, still in every copy)"
    return "present in the artifact"


def _vault_path(prefix: str, finding: dict[str, Any]) -> str:
    loc = finding["location"]
    inner = str(loc.get("path") or loc.get("file") or "value").rsplit("!", 1)[-1]
    name = Path(inner).name or "value"
    parts = [prefix.strip("/"), _SEGMENT.sub("-", name).strip("-.") or "value", _SEGMENT.sub("-", finding["rule_id"])]
    return "/".join(p for p in parts if p)


def build_plan(report: dict[str, Any], prefix: str) -> tuple[Plan, dict[str, bytes]]:
    """The plan, and the values to import by vault path (only those the report holds unredacted)."""
    findings = report.get("findings")
    if not isinstance(findings, list):
        raise InvalidInput("not a kinko JSON scan report (no findings list); scan with -o json")
    plan, values, seen = Plan(), {}, set()
    k8s_paths: list[str] = []
    for f in findings:
        loc = f.get("location") or {}
        if f.get("kind") == "misconfig":
            if f.get("rule_id") in _DOCKERFILE_RULES:
                plan.dockerfile.append({"where": _where(loc), "rule": f["rule_id"], "instead": _mount_step(loc)})
            continue
        secret = str(f.get("secret") or "")
        known = bool(secret) and not secret.endswith(_REDACTED)
        key = secret if known else f.get("fingerprint")
        plan.rotate.append({"rule": f["rule_id"], "where": _where(loc), "why": _leak_reason(loc)})
        if key in seen:
            continue
        seen.add(key)
        path = _vault_path(prefix, f)
        while path in values or any(i["vault_path"] == path for i in plan.imports):
            path += "-2"
        plan.imports.append({"vault_path": path, "rule": f["rule_id"], "from": _where(loc), "value_in_report": known})
        if known:
            values[path] = secret.encode()
        if loc.get("object_ref") and str(loc.get("object_ref")).startswith("Secret/"):
            k8s_paths.append(path)
    plan.kubernetes = {"secret_paths": k8s_paths}
    return plan, values


def _mount_step(loc: dict[str, Any]) -> str:
    target = "/run/secrets/app" if not loc.get("path") else f"/run/secrets/{Path(str(loc['path'])).name}"
    return (f"drop the COPY of the credential and its RUN rm; mount it only where it is used: `RUN --mount=type=secret,"
            f"id=app,target={target} <command>` and build with `docker build --secret id=app,src=<file>` "
            "(the file is never in a layer)")


def _k8s(plan: Plan, role: str | None, address: str | None, namespace: str) -> None:
    from kinko.deliver.k8s.render import CsiObject, dump_yaml, render_spc, volume_snippet

    paths = plan.kubernetes.get("secret_paths") or [i["vault_path"] for i in plan.imports]
    if not paths or not role or not address:
        plan.kubernetes["hint"] = "give --role and --address to render a SecretProviderClass for these values"
        return
    objects = [CsiObject(object_name=p.rsplit("/", 1)[-1], secret_path=p) for p in paths]
    plan.kubernetes["secretProviderClass"] = dump_yaml([render_spc("kinko-remediated", namespace, objects, role=role,
                                                                   address=address)])  # fmt: skip
    plan.kubernetes["podSpec"] = dump_yaml([volume_snippet("kinko-remediated")])


def _apply(plan: Plan, values: dict[str, bytes], vault_path: str) -> None:
    from kinko.cli._session import open_session
    from kinko.errors import VersionConflict

    session = open_session(vault_path)
    for item in plan.imports:
        value = values.get(item["vault_path"])
        if value is None:
            item["applied"] = "skipped: the report holds no value (scan again with --show-secrets --output-file)"
            continue
        try:
            session.put(item["vault_path"], value, cas=0)
            item["applied"] = "imported"
        except VersionConflict:
            item["applied"] = "skipped: the path exists (never overwritten)"


def _text(plan: Plan) -> str:
    out = [f"import into the vault ({len(plan.imports)}):"]
    out += [f"  {i['vault_path']}  <- {i['from']} [{i['rule']}]" + (f"  {i['applied']}" if "applied" in i else "")
            for i in plan.imports]  # fmt: skip
    out.append(f"rotate, already leaked ({len(plan.rotate)}):")
    out += [f"  {r['where']} [{r['rule']}]: {r['why']}" for r in plan.rotate]
    if plan.dockerfile:
        out.append(f"rewrite Dockerfile steps ({len(plan.dockerfile)}):")
        out += [f"  {d['where']} [{d['rule']}]: {d['instead']}" for d in plan.dockerfile]
    if "secretProviderClass" in plan.kubernetes:
        out += ["deliver with the CSI provider (files 0400):", plan.kubernetes["secretProviderClass"].rstrip(),
                plan.kubernetes["podSpec"].rstrip()]
    elif plan.kubernetes.get("hint"):
        out.append(f"kubernetes: {plan.kubernetes['hint']}")
    return "\n".join(out) + "\n"


@click.command("remediate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("report", type=click.File("r"))
@click.option("--apply", "apply_", is_flag=True, help="Import the values into the vault (cas=0: never overwrite).")
@click.option("--prefix", default="imported", show_default=True, help="Vault folder for imported values.")
@click.option("--role", help="kinko Kubernetes auth role for the SecretProviderClass.")
@click.option("--address", help="kinko address pods reach, for the SecretProviderClass.")
@click.option("--namespace", default="default", show_default=True)
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True)
@vault_option
@handle_errors
def cli(report: Any, apply_: bool, prefix: str, role: str | None, address: str | None, namespace: str,
        output: str, vault_path: str) -> None:  # fmt: skip
    """Turn a JSON scan report (`kinko scan ... -o json`) into a plan: import, rewrite, deliver, rotate.

    Values are imported only from a report made with --show-secrets (keep it 0600 and delete it after); the plan
    never prints a value."""
    try:
        doc = json.load(report)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput(f"{report.name}: not JSON; scan with -o json") from None
    plan, values = build_plan(doc if isinstance(doc, dict) else {}, prefix)
    _k8s(plan, role, address, namespace)
    if apply_:
        _apply(plan, values, vault_path)
    sys.stdout.write(json.dumps(plan.to_dict(), indent=2) + "\n" if output == "json" else _text(plan))
