"""Workload rules for Pods and every controller that embeds a pod template.

Secret volume modes (incl. the implicit 0644 and YAML octal traps), secrets passed as env vars, and literal
secrets in `env[].value`.
"""

from __future__ import annotations

import re
from typing import Any

from kinko.k8s.manifests import PathKey
from kinko.k8s.objects import POD_SPEC_PATHS, as_list, get_in
from kinko.scan.misconfig_rules import (
    ENV_LITERAL_SECRET,
    ENV_SECRETKEYREF,
    SECRET_VOLUME_MODE,
    SECRET_VOLUME_MODE_FSGROUP,
    SECRET_VOLUME_MODE_INVALID,
    secret_name,
)
from kinko.scan.sources.kubernetes.rules import ObjectContext

DEFAULT_MODE = 0o644  # SecretVolumeSourceDefaultMode
_PLACEHOLDER = re.compile(
    r"^(?:|changeme|change-me|change_me|replace-?me|todo|tbd|xxx+|\*+|dummy|example|placeholder|none|null|"
    r"secret|password|true|false|yes|no|[0-9]+|/.*|\$\(.*\)|\$\{.*\}|\{\{.*\}\}|<.*>)$",
    re.IGNORECASE,
)


def parse_mode(value: object) -> int | None:
    """A file mode as Kubernetes reads it: YAML ints (0644 already became 420), or strings "0644"/"0o644"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 0o777 else None
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            if text.startswith("0o"):
                mode = int(text[2:], 8)
            elif text.startswith("0") and len(text) > 1:
                mode = int(text, 8)
            else:
                mode = int(text, 10)
        except ValueError:
            return None
        return mode if 0 <= mode <= 0o777 else None
    return None


def check_workload(ctx: ObjectContext, obj: dict[str, Any]) -> None:
    spec_path = POD_SPEC_PATHS[str(obj.get("kind"))]
    spec = get_in(obj, *spec_path)
    if not isinstance(spec, dict):
        return
    fs_group = get_in(spec, "securityContext", "fsGroup") is not None
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        if isinstance(volume, dict):
            _check_volume(ctx, volume, (*spec_path, "volumes", i), fs_group)
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for i, container in enumerate(as_list(spec.get(group))):
            if isinstance(container, dict):
                _check_container(ctx, container, (*spec_path, group, i))


def _check_volume(ctx: ObjectContext, volume: dict[str, Any], path: PathKey, fs_group: bool) -> None:
    name = volume.get("name", "?")
    if isinstance(volume.get("secret"), dict):
        _check_modes(ctx, volume["secret"], (*path, "secret"), f"secret volume {name!r}", fs_group)
    projected = volume.get("projected")
    if isinstance(projected, dict):
        for j, source in enumerate(as_list(projected.get("sources"))):
            secret = source.get("secret") if isinstance(source, dict) else None
            if isinstance(secret, dict):
                merged = {**secret, "defaultMode": projected.get("defaultMode")}
                where = (*path, "projected", "sources", j, "secret")
                what = f"projected volume {name!r}"
                _check_modes(ctx, merged, where, what, fs_group, mode_path=(*path, "projected"))


def _check_modes(
    ctx: ObjectContext,
    src: dict[str, Any],
    path: PathKey,
    what: str,
    fs_group: bool,
    *,
    mode_path: PathKey | None = None,
) -> None:
    """Flag each effective file mode that lets group or others read the secret."""
    raw_default = src.get("defaultMode")
    items = [it for it in as_list(src.get("items")) if isinstance(it, dict)]
    # defaultMode matters unless every listed item sets its own mode.
    if not items or any(it.get("mode") is None for it in items):
        where = mode_path or path
        implicit = raw_default is None
        _check_one(ctx, raw_default, (*where, "defaultMode"), f"{what} defaultMode", implicit, fs_group)
    for j, item in enumerate(items):
        if item.get("mode") is not None:
            _check_one(ctx, item["mode"], (*path, "items", j, "mode"), f"{what} items[{j}].mode", False, fs_group)


def _check_one(ctx: ObjectContext, raw: object, path: PathKey, what: str, implicit: bool, fs_group: bool) -> None:
    mode = DEFAULT_MODE if implicit else parse_mode(raw)
    if mode is None:
        ctx.add(SECRET_VOLUME_MODE_INVALID, path, f"{what} {str(raw)[:20]!r} is not a valid file mode (0-0777)")
        return
    if not mode & 0o077:
        if fs_group and mode & 0o400:
            # The kubelet ORs 0440 into read-only volume files when fsGroup is set (volume_linux.go).
            ctx.add(
                SECRET_VOLUME_MODE_FSGROUP, path, f"{what} is {mode:04o}, but the pod sets securityContext.fsGroup, "
                f"so the kubelet makes the files {mode | 0o440:04o} (readable by the fsGroup)",
            )  # fmt: skip
        return
    # Report in octal; YAML 0644 and JSON 420 are the same mode, so also show what was loaded.
    if implicit:
        said = "is unset and defaults to 0644"
    elif isinstance(raw, str):
        said = f"is {mode:04o} (string {raw!r})"
    else:
        said = f"is {mode:04o} (decimal {mode})"
    ctx.add(
        SECRET_VOLUME_MODE, path, f"{what} {said}: group or other users can read the secret files (more open than 0400)"
    )


def _check_container(ctx: ObjectContext, container: dict[str, Any], path: PathKey) -> None:
    cname = container.get("name", "?")
    for i, env in enumerate(as_list(container.get("env"))):
        if not isinstance(env, dict):
            continue
        ref = get_in(env, "valueFrom", "secretKeyRef")
        if isinstance(ref, dict):
            _env_ref(ctx, (*path, "env", i), f"env {env.get('name')} from secret {ref.get('name')!r}", cname)
        value = env.get("value")
        if isinstance(value, str) and value:
            _literal(ctx, str(env.get("name", "")), value, (*path, "env", i), cname)
    for i, source in enumerate(as_list(container.get("envFrom"))):
        ref = source.get("secretRef") if isinstance(source, dict) else None
        if isinstance(ref, dict):
            _env_ref(ctx, (*path, "envFrom", i), f"envFrom secret {ref.get('name')!r}", cname)


def _env_ref(ctx: ObjectContext, path: PathKey, what: str, container: str) -> None:
    ctx.add(
        ENV_SECRETKEYREF, path,
        f"container {container!r}: {what}; env vars leak to child processes, logs, crash dumps and /proc",
    )  # fmt: skip


def _literal(ctx: ObjectContext, name: str, value: str, path: PathKey, container: str) -> None:
    hits = ctx.secret_hits(value.encode(), (*path, "value"), name)
    if hits:
        why, secret = f"holds a {hits[0].title}", hits[0].secret
    elif secret_name(name) and not _PLACEHOLDER.match(value.strip()) and len(value.strip()) >= 4:
        why, secret = "has a secret-looking name and a literal value", value
    else:
        return
    ctx.add(ENV_LITERAL_SECRET, (*path, "value"), f"container {container!r}: env {name} {why}", secret=secret)
