"""Rewriting workloads that consume imported Secrets: secretKeyRef / envFrom / secret volumes -> CSI volumes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kinko.deliver.k8s.render import (
    ANNOTATION_PREFIX,
    CsiObject,
    check_name,
    check_object_name,
    csi_volume,
    volume_name,
)
from kinko.errors import InvalidInput, UsageError
from kinko.k8s.objects import POD_SPEC_PATHS, as_list, get_in

CONTAINER_GROUPS = ("initContainers", "containers", "ephemeralContainers")
MOVED_ANNOTATION = ANNOTATION_PREFIX + "env-moved-to-files"
NOTE_ANNOTATION = ANNOTATION_PREFIX + "note"
NOTE = ("kinko: secrets that were environment variables are now read-only files (0400) from the CSI volume; "
        "the application must read them from the paths in " + MOVED_ANNOTATION)


@dataclass(frozen=True)
class SecretRef:
    """What the patcher knows about an imported Secret: never its values."""

    namespace: str
    name: str
    keys: tuple[str, ...]
    spc_name: str
    kinko_path: str


@dataclass
class PatchResult:
    changed: bool = False
    moved: list[str] = field(default_factory=list)
    #: (namespace, name, objects) of SecretProviderClasses a secret volume with `items` needs for itself.
    extra_spcs: list[tuple[str, str, list[CsiObject]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)




def namespace_of(obj: Mapping[str, Any]) -> str:
    ns = get_in(obj, "metadata", "namespace")
    return ns if isinstance(ns, str) and ns else "default"


def describe(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{namespace_of(obj)}/{get_in(obj, 'metadata', 'name') or '?'}"


def pinned_secrets(obj: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """Secrets this object needs as native Secrets (image pulls, projected volumes): they cannot become CSI files."""
    ns, pinned = namespace_of(obj), {}
    spec_path = POD_SPEC_PATHS.get(str(obj.get("kind")), ())
    spec: Any = obj if obj.get("kind") == "ServiceAccount" else get_in(obj, *spec_path)
    if not isinstance(spec, dict):
        return {}
    for ref in as_list(spec.get("imagePullSecrets")):
        if isinstance(ref, dict) and isinstance(ref.get("name"), str):
            pinned[(ns, ref["name"])] = f"imagePullSecrets of {describe(obj)}"
    for volume in as_list(spec.get("volumes")):
        for source in as_list(get_in(volume, "projected", "sources")):
            name = get_in(source, "secret", "name")
            if isinstance(name, str):
                pinned[(ns, name)] = f"projected volume of {describe(obj)}"
    return pinned


class _Patcher:
    """Patches one workload in place (the caller hands over a copy)."""

    def __init__(self, obj: dict[str, Any], secrets: Mapping[tuple[str, str], SecretRef], mount_root: str) -> None:
        self.obj, self.secrets, self.root = obj, secrets, mount_root.rstrip("/")
        self.ns, self.where = namespace_of(obj), describe(obj)
        self.result = PatchResult()
        self.spec_path = POD_SPEC_PATHS[str(obj["kind"])]
        spec = get_in(obj, *self.spec_path)
        self.spec: dict[str, Any] = spec if isinstance(spec, dict) else {}
        self.env_volumes: dict[str, str] = {}  # secret name -> CSI volume added for moved env vars

    def run(self) -> PatchResult:
        if not self.spec:
            return self.result
        self._secret_volumes()
        for group in CONTAINER_GROUPS:
            for container in as_list(self.spec.get(group)):
                if isinstance(container, dict):
                    self._container(container)
        if self.result.moved:
            self._annotate()
        return self.result

    def _target(self, name: object) -> SecretRef | None:
        return self.secrets.get((self.ns, name)) if isinstance(name, str) else None

    def _volumes(self) -> list[Any]:
        volumes = self.spec.get("volumes")
        if not isinstance(volumes, list):
            volumes = self.spec["volumes"] = []
        return volumes

    def _env_volume(self, ref: SecretRef) -> str:
        if ref.name not in self.env_volumes:
            volumes = self._volumes()
            name = volume_name(f"kinko-{ref.name}", (str(v.get("name")) for v in volumes if isinstance(v, dict)))
            volumes.append(csi_volume(name, ref.spc_name))
            self.env_volumes[ref.name] = name
        return self.env_volumes[ref.name]

    def _container(self, container: dict[str, Any]) -> None:
        cname = str(container.get("name", "?"))
        needs: dict[str, SecretRef] = {}
        moved_vars: list[str] = []

        def move(var: str, ref: SecretRef, key: str) -> None:
            needs[ref.name] = ref
            line = f"{self.where} container {cname}: {var} -> {self.root}/{ref.name}/{key}"
            if line not in self.result.moved:  # the same key by secretKeyRef and envFrom: one file, one line
                moved_vars.append(var)
                self.result.moved.append(line)

        kept_env = [e for e in as_list(container.get("env")) if not self._env_entry(e, move)]
        kept_from = [s for s in as_list(container.get("envFrom")) if not self._env_from(s, move)]
        for name, kept in (("env", kept_env), ("envFrom", kept_from)):
            if name in container and len(kept) != len(as_list(container[name])):
                if kept:
                    container[name] = kept
                else:
                    del container[name]
        if not needs:
            return
        self.result.changed = True
        mounts = container.setdefault("volumeMounts", [])
        for ref in needs.values():
            mounts.append({"name": self._env_volume(ref), "mountPath": f"{self.root}/{ref.name}", "readOnly": True})
        self._still_referenced(container, cname, moved_vars)

    def _env_entry(self, entry: object, move: Callable[[str, SecretRef, str], None]) -> bool:
        ref_doc = get_in(entry, "valueFrom", "secretKeyRef")
        ref = self._target(get_in(ref_doc, "name"))
        if ref is None:
            if isinstance(get_in(ref_doc, "name"), str):
                self._not_imported(f"env {get_in(entry, 'name')}", str(get_in(ref_doc, "name")))
            return False
        key, var = str(get_in(ref_doc, "key")), str(get_in(entry, "name"))
        if key not in ref.keys:
            self.result.warnings.append(f"{self.where}: env {var} names key {key!r} that Secret {ref.name} lacks")
        move(var, ref, key)
        return True

    def _env_from(self, source: object, move: Callable[[str, SecretRef, str], None]) -> bool:
        ref = self._target(get_in(source, "secretRef", "name"))
        if ref is None:
            if isinstance(get_in(source, "secretRef", "name"), str):
                self._not_imported("envFrom", str(get_in(source, "secretRef", "name")))
            return False
        prefix = get_in(source, "prefix")
        for key in ref.keys:
            move(f"{prefix if isinstance(prefix, str) else ''}{key}", ref, key)
        return True

    def _not_imported(self, what: str, secret: str) -> None:
        """A reference to a Secret this import does not move (absent from the input, or pinned): say it stays."""
        self.result.warnings.append(f"{self.where}: {what} uses Secret {self.ns}/{secret}, which this import does "
                                    "not move (not in the input, or kept native): left unchanged")

    def _still_referenced(self, container: dict[str, Any], cname: str, moved: list[str]) -> None:
        """`$(VAR)` expansions of a moved variable stop working: say so instead of failing silently."""
        texts = [str(x) for x in as_list(container.get("command")) + as_list(container.get("args"))]
        texts += [str(e.get("value", "")) for e in as_list(container.get("env")) if isinstance(e, dict)]
        for var in moved:
            if any(re.search(rf"\$\({re.escape(var)}\)", t) for t in texts):
                self.result.warnings.append(
                    f"{self.where} container {cname}: $({var}) is still used but {var} is now a file")

    def _secret_volumes(self) -> None:
        volumes = self.spec.get("volumes")
        for i, volume in enumerate(as_list(volumes)):
            ref = self._target(get_in(volume, "secret", "secretName"))
            if ref is None:
                continue
            assert isinstance(volumes, list)
            vname = str(volume.get("name"))
            items = [it for it in as_list(volume["secret"].get("items")) if isinstance(it, dict)]
            spc = ref.spc_name if not items else self._items_spc(vname, ref, items)
            volumes[i] = csi_volume(vname, spc)
            self.result.changed = True
            for group in CONTAINER_GROUPS:  # the driver needs read-only mounts of CSI volumes
                for container in as_list(self.spec.get(group)):
                    for mount in as_list(get_in(container, "volumeMounts")):
                        if isinstance(mount, dict) and mount.get("name") == vname:
                            mount["readOnly"] = True

    def _items_spc(self, vname: str, ref: SecretRef, items: list[dict[str, Any]]) -> str:
        """`items` renames keys to paths, so this volume gets its own SecretProviderClass."""
        base = f"{get_in(self.obj, 'metadata', 'name') or 'pod'}-{vname}-kinko"
        name = re.sub(r"[^a-z0-9.-]+", "-", base.lower())[:253].strip("-.")
        objects = []
        for item in items:
            try:
                path = check_object_name(str(item.get("path")))
            except UsageError as exc:
                raise InvalidInput(f"{self.where}: volume {vname!r}: items path: {exc.message}") from None
            objects.append(CsiObject(path, ref.kinko_path, str(item.get("key"))))
        self.result.extra_spcs.append((self.ns, check_name(name, "SecretProviderClass name"), objects))
        return name

    def _annotate(self) -> None:
        meta_path = (*self.spec_path[:-1], "metadata")
        parent: dict[str, Any] = self.obj
        for key in meta_path:
            child = parent.get(key)
            if not isinstance(child, dict):
                child = {}
                rebuilt = {key: child, **{k: v for k, v in parent.items() if k != key}}  # metadata before spec
                parent.clear()
                parent.update(rebuilt)
            parent = child
        annotations = parent.setdefault("annotations", {})
        annotations[MOVED_ANNOTATION] = "\n".join(self.result.moved)
        annotations[NOTE_ANNOTATION] = NOTE


def patch_workload(obj: dict[str, Any], secrets: Mapping[tuple[str, str], SecretRef], *,
                   mount_root: str) -> PatchResult:
    """Patch `obj` (a Pod or controller, modified in place) to read imported Secrets from CSI volumes."""
    return _Patcher(obj, secrets, mount_root).run()
