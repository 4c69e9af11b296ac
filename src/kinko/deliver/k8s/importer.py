"""`kinko k8s import`: read Secret manifests, plan storing them in kinko, and rewrite their consumers to use CSI."""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.core.model import VersionInfo
from kinko.core.names import validate_path, validate_prefix
from kinko.deliver.k8s.patch import SecretRef, namespace_of, patch_workload, pinned_secrets
from kinko.deliver.k8s.render import ANNOTATION_PREFIX, DEFAULT_MOUNT_PATH, CsiObject, dump_yaml, render_spc
from kinko.deliver.k8s.secrets import ImportedSecret, parse_secret
from kinko.errors import AlreadyExists, InvalidInput, KinkoError, NotFound, UsageError, VersionConflict
from kinko.k8s.manifests import MAX_MANIFEST_BYTES, DocError, load
from kinko.k8s.objects import POD_SPEC_PATHS
from kinko.vault import VaultSession

SUFFIXES = (".yaml", ".yml", ".json")
SPC_FILE = "kinko-secretproviderclasses.yaml"
MAX_FILES = 10_000
_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)
_REMOVED = object()


@dataclass
class Unit:
    """One YAML document (or a whole JSON file) as read, and what it becomes."""

    label: str
    text: str = field(repr=False)
    data: Any = field(repr=False)
    new: Any = field(default=None, repr=False)
    changed: bool = False


@dataclass
class ManifestFile:
    rel: str
    is_json: bool
    units: list[Unit]


@dataclass(frozen=True)
class FileChange:
    """Old and new text of one output file. `*_display` redact Secret data; `new_text` is what gets written."""

    rel: str
    old_display: str = field(repr=False)
    new_display: str = field(repr=False)
    new_text: str | None = field(repr=False)


@dataclass
class ImportPlan:
    secrets: list[ImportedSecret]
    files: list[FileChange]
    moved: list[str]
    warnings: list[str]

    def diff(self) -> str:
        out: list[str] = []
        for change in self.files:
            old, new = _lines(change.old_display), _lines(change.new_display)
            src = f"a/{change.rel}" if change.old_display else "/dev/null"
            dst = f"b/{change.rel}" if change.new_text is not None else "/dev/null"
            out.extend(difflib.unified_diff(old, new, src, dst))
        return "".join(out)

    def summary(self) -> dict[str, Any]:
        """Everything the plan does, without a single value."""
        return {"secrets": [s.describe() for s in self.secrets], "moved_env": self.moved, "warnings": self.warnings,
                "files": [{"path": c.rel, "removed": c.new_text is None} for c in self.files]}


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _manifest_paths(source: Path) -> Iterator[tuple[Path, str]]:
    if source.is_file():
        yield source, source.name
        return
    if not source.is_dir():
        raise NotFound(f"no such file or directory: {str(source)!r}")
    found = 0
    for folder, dirs, names in os.walk(source, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            full = Path(folder, name)
            if name.lower().endswith(SUFFIXES) and not full.is_symlink():
                found += 1
                if found > MAX_FILES:
                    raise InvalidInput(f"{source}: more than {MAX_FILES} manifest files")
                yield full, full.relative_to(source).as_posix()


def read_manifests(source: Path) -> list[ManifestFile]:
    """Every manifest file under `source`, split into documents; any unreadable document is an error."""
    files = []
    for path, rel in _manifest_paths(source):
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise InvalidInput(f"{rel}: larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(f"{rel}: not UTF-8 text") from None
        is_json = rel.lower().endswith(".json")
        chunks = [text] if is_json else _chunks(text)
        files.append(ManifestFile(rel, is_json, [_unit(rel, i, c, is_json) for i, c in enumerate(chunks)]))
    return files


def _chunks(text: str) -> list[str]:
    starts = [m.start() for m in _DOC_START.finditer(text) if m.start() > 0]
    bounds = [0, *starts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if text[a:b]]


def _unit(rel: str, index: int, chunk: str, is_json: bool) -> Unit:
    label = rel if is_json else f"{rel} document {index + 1}"
    docs = []
    for doc in load(chunk, is_json=is_json):
        if isinstance(doc, DocError):
            raise InvalidInput(f"{label}: {doc.message.removesuffix('; skipped')}")
        docs.append(doc.data)
    if len(docs) > 1:
        raise InvalidInput(f"{label}: several documents without a '---' separator are not supported")
    return Unit(label, chunk, docs[0] if docs else None)


def _objects(data: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(data, dict):
        return
    items = data.get("items")
    if str(data.get("kind", "")).endswith("List") and isinstance(items, list):
        for item in items:
            yield from _objects(item)
    elif isinstance(data.get("kind"), str):
        yield data


def _has_secret(data: Any) -> bool:
    return any(obj.get("kind") == "Secret" for obj in _objects(data))


def _redact(data: Any) -> Any:
    """A copy whose Secret data/stringData values read `<redacted>`: for diffs that must never show a value."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    if str(data.get("kind", "")).endswith("List") and isinstance(data.get("items"), list):
        out["items"] = [_redact(item) for item in data["items"]]
    elif data.get("kind") == "Secret":
        for name in ("data", "stringData"):
            if isinstance(data.get(name), dict):
                out[name] = {str(k): "<redacted>" for k in data[name]}
    return out


class _Planner:
    def __init__(self, prefix: str, role: str, address: str, audience: str | None, mount_root: str) -> None:
        self.prefix, self.role, self.address, self.audience, self.root = prefix, role, address, audience, mount_root
        self.secrets: dict[tuple[str, str], ImportedSecret] = {}
        self.refs: dict[tuple[str, str], SecretRef] = {}
        self.spcs: list[dict[str, Any]] = []
        self.moved: list[str] = []
        self.warnings: list[str] = []

    def collect(self, files: list[ManifestFile]) -> None:
        pinned: dict[tuple[str, str], str] = {}
        for f in files:
            for unit in f.units:
                for obj in _objects(unit.data):
                    if obj.get("kind") == "Secret":
                        secret = parse_secret(obj, unit.label, self.prefix)
                        if secret.key in self.secrets:
                            raise InvalidInput(f"{unit.label}: Secret {secret.namespace}/{secret.name} appears twice")
                        self.secrets[secret.key] = secret
                    elif obj.get("kind") in POD_SPEC_PATHS or obj.get("kind") == "ServiceAccount":
                        pinned.update(pinned_secrets(obj))
        for key, why in sorted(pinned.items()):
            if self.secrets.pop(key, None) is not None:
                self.warnings.append(f"Secret {key[0]}/{key[1]} left as is (not imported): {why} needs a native Secret")
        for key, secret in sorted(self.secrets.items()):
            spc = f"{secret.name}-kinko" if len(secret.name) <= 247 else f"{secret.name[:247].rstrip('-.')}-kinko"
            self.refs[key] = SecretRef(secret.namespace, secret.name, secret.keys, spc, secret.kinko_path)
            if not secret.keys:
                self.warnings.append(f"Secret {secret.namespace}/{secret.name} has no keys: no SecretProviderClass")
                continue
            objects = [CsiObject(k, secret.kinko_path, k) for k in secret.keys]
            self.spcs.append(self._spc(secret.namespace, spc, objects, secret.label))

    def _spc(self, namespace: str, name: str, objects: list[CsiObject], source: str) -> dict[str, Any]:
        return render_spc(name, namespace, objects, role=self.role, address=self.address, audience=self.audience,
                          annotations={ANNOTATION_PREFIX + "imported-from": source})

    def transform(self, data: Any, label: str) -> Any:
        """The replacement of one object (or List): `_REMOVED`, the same object, or a patched copy."""
        if not isinstance(data, dict):
            return data
        kind = data.get("kind")
        if str(kind).endswith("List") and isinstance(data.get("items"), list):
            items = [self.transform(item, label) for item in data["items"]]
            kept = [i for i in items if i is not _REMOVED]
            if all(a is b for a, b in zip(items, data["items"], strict=True)):
                return data
            return {**data, "items": kept}
        if kind == "Secret" and (namespace_of(data), (data.get("metadata") or {}).get("name")) in self.secrets:
            return _REMOVED
        if kind in POD_SPEC_PATHS:
            patched = copy.deepcopy(data)
            result = patch_workload(patched, self.refs, mount_root=self.root)
            self.moved.extend(result.moved)
            self.warnings.extend(result.warnings)
            for ns, name, objects in result.extra_spcs:
                self.spcs.append(self._spc(ns, name, objects, label))
            return patched if result.changed else data
        return data


def _file_change(f: ManifestFile, planner: _Planner) -> FileChange:
    old_parts, new_parts, written = [], [], []
    for unit in f.units:
        new = planner.transform(unit.data, unit.label)
        lead = "---\n" if unit.text.startswith("---") else ""
        shown = (lead + dump_yaml([_redact(unit.data)])) if _has_secret(unit.data) else unit.text
        old_parts.append(shown)
        if new is _REMOVED:
            continue
        if new is unit.data:
            new_parts.append(shown)
            written.append(unit.text)
            continue
        text = json.dumps(new, indent=2) + "\n" if f.is_json else lead + dump_yaml([new])
        written.append(text)
        new_parts.append((lead + dump_yaml([_redact(new)])) if _has_secret(new) else text)
    new_text = "".join(written) if written else None
    return FileChange(f.rel, "".join(old_parts), "".join(new_parts), new_text)


def plan_import(source: Path, prefix: str, *, role: str, address: str, audience: str | None = None,
                mount_root: str = DEFAULT_MOUNT_PATH) -> ImportPlan:
    """Read `source` (file or directory) and plan the import. Raises on any invalid Secret: nothing is half-done."""
    prefix = validate_prefix(prefix)
    if not prefix:
        raise UsageError("--prefix must name a kinko folder such as team/app")
    planner = _Planner(prefix, role, address, audience, mount_root)
    files = read_manifests(source)
    planner.collect(files)
    changes = [_file_change(f, planner) for f in files]
    spc_file = SPC_FILE if SPC_FILE not in {f.rel for f in files} else "kinko-" + SPC_FILE
    if planner.spcs:
        text = dump_yaml(planner.spcs)
        changes.append(FileChange(spc_file, "", text, text))
    secrets = [planner.secrets[k] for k in sorted(planner.secrets)]
    return ImportPlan(secrets, changes, planner.moved, planner.warnings)


def store_secrets(session: VaultSession, secrets: list[ImportedSecret]) -> list[VersionInfo]:
    """Store every secret with cas=0 (never overwrite). Checks all paths first so a clash stores nothing."""
    for secret in secrets:
        try:
            session.versions(secret.kinko_path)
        except NotFound:
            continue
        raise AlreadyExists(f"{secret.kinko_path} already exists in kinko; import never overwrites "
                            "(choose another --prefix or delete it first); nothing was stored")
    stored: list[VersionInfo] = []
    for secret in secrets:
        try:
            stored.append(session.put(validate_path(secret.kinko_path), secret.data,
                                      content_type=secret.content_type, tags=secret.tags or None, cas=0))
        except (VersionConflict, AlreadyExists) as exc:
            done = ", ".join(i.path for i in stored) or "none"
            message = f"{secret.kinko_path} was created meanwhile ({exc.code}); stored before it: {done}"
            raise AlreadyExists(message) from None
        except KinkoError as exc:
            done = ", ".join(i.path for i in stored) or "none"
            raise type(exc)(f"{exc.message} (storing {secret.kinko_path}; stored before it: {done})") from None
    return stored


def check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {str(out)!r} must be a new or empty directory (import never overwrites files)")


def write_outputs(plan: ImportPlan, out: Path) -> list[Path]:
    """Write the replacement manifests under `out` (directories 0700, files 0600, never overwriting)."""
    check_out_dir(out)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    written = []
    for change in plan.files:
        if change.new_text is None:
            continue
        target = out / change.rel
        for parent in reversed(target.relative_to(out).parents[:-1]):
            (out / parent).mkdir(mode=0o700, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # explicit, whatever the umask
            handle.write(change.new_text)
        written.append(target)
    return written

