"""Vault's sys routes that kinko has no native twin for (`sys/leader`, `sys/mounts`, the CLI's KV mount probe
`sys/internal/ui/mounts/<path>`) and the Vault fields kinko's shared sys answers add (seal status, health)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from kinko.api.compat.vault_shapes import envelope, errors, vault_json
from kinko.api.state import St, Who
from kinko.vault import VaultStatus

CLUSTER_NAME = "kinko"


def kinko_version() -> str:
    try:
        return version("kinko")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0"


def seal_status_fields(status: VaultStatus) -> dict[str, Any]:
    """Vault's seal-status fields for a kinko status (kinko's own keys are kept beside them). As Vault, a sealed
    server does not name its cluster."""
    fields = {"type": status.seal_type or "shamir", "initialized": status.initialized, "sealed": status.sealed,
              "t": status.threshold, "n": status.shares, "progress": status.progress, "nonce": "",
              "version": kinko_version(), "build_date": "", "migration": False,
              "recovery_seal": False, "storage_type": "kinko"}
    return fields if status.sealed else {**fields, **_cluster(status)}


def health_fields(status: VaultStatus, now: float) -> dict[str, Any]:
    """Vault's health fields: a sealed server reports itself a standby whose replication state is unknown, and does
    not name its cluster."""
    replication = "unknown" if status.sealed else "disabled"
    fields = {"initialized": status.initialized, "sealed": status.sealed, "standby": status.sealed,
              "performance_standby": False, "replication_performance_mode": replication,
              "replication_dr_mode": replication, "server_time_utc": int(now), "version": kinko_version()}
    return fields if status.sealed else {**fields, **_cluster(status)}


def _cluster(status: VaultStatus) -> dict[str, str]:
    return {"cluster_name": CLUSTER_NAME, "cluster_id": status.vault_id or ""}


def mount_entry(name: str) -> dict[str, Any]:
    return {"accessor": f"kv_{name}", "config": {"default_lease_ttl": 0, "force_no_cache": False,
                                                 "max_lease_ttl": 0},
            "deprecation_status": "supported", "description": "key/value secret storage",
            "external_entropy_access": False, "local": False, "options": {"version": "2"}, "plugin_version": "",
            "running_plugin_version": f"v{kinko_version()}+builtin.kinko", "running_sha256": "",
            "seal_wrap": False, "type": "kv", "uuid": f"kinko-kv-{name}"}


def sys_router(mounts: Mapping[str, str]) -> APIRouter:
    router = APIRouter(prefix="/v1/sys", tags=["vault-sys"])

    @router.get("/leader")
    async def leader() -> Response:
        return vault_json({"ha_enabled": False})

    @router.get("/mounts")
    async def list_mounts(request: Request, caller: Who, st: St) -> Response:
        st.vault.check(caller, "read", "sys/mounts", "sys.mounts")
        table = {f"{name}/": mount_entry(name) for name in sorted(mounts)}
        return vault_json({**table, **envelope(request, table)})

    @router.get("/internal/ui/mounts/{path:path}")
    async def mount_of(path: str, request: Request, caller: Who) -> Response:
        """What the `vault`/`bao` CLI asks before a `kv` command: which mount holds `path`, and its KV version."""
        name = path.strip("/").split("/", 1)[0]
        if name not in mounts:
            return errors([f"preflight capability check returned 403, please ensure client's policies grant "
                           f"access to path \"{path.strip('/')}/\""], 403)
        return vault_json(envelope(request, {**mount_entry(name), "path": f"{name}/"}))

    return router
