"""Vault's ACL policy routes (`sys/policies/acl/<name>` and the older `sys/policy/<name>`): HCL policies
translated onto kinko rules (kinko.access.vault_hcl), checked like the native `sys/policies` routes."""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from kinko.api.compat.vault_shapes import envelope, json_body, no_content, vault_json
from kinko.api.routing import add_routes
from kinko.api.state import Session, St, Who
from kinko.errors import InvalidInput, NotFound
from kinko.vault import Policy

#: Paths only Vault clients use: their errors are Vault's `{"errors": [...]}` (kinko.api.errors).
VAULT_ONLY_PREFIXES = ("/v1/sys/policies/acl/", "/v1/sys/policy/")
VAULT_ONLY_PATHS = frozenset({"/v1/sys/policies/acl", "/v1/sys/policy"})
PolicyName = Annotated[str, Path(max_length=128)]
ListFlag = Annotated[str | None, Query(alias="list")]


def policy_text(policy: Policy) -> str:
    """What a Vault client reads back: the HCL as written, or kinko's YAML for a policy written natively."""
    return policy.source_hcl if policy.source_hcl is not None else policy.to_yaml()


def vault_name(name: str) -> str:
    """Vault lowercases policy names."""
    return name.lower()


def policy_from_body(body: dict[str, Any], *keys: str) -> str:
    """The policy text of a write (Vault also takes it base64-encoded, to spare escaping)."""
    text = next((body[k] for k in keys if body.get(k) not in (None, "")), None)
    if not isinstance(text, str):
        raise InvalidInput(f"'{keys[0]}' parameter not supplied or empty")
    try:
        decoded = base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text
    return decoded if decoded.strip() else text


async def _write(name: str, request: Request, caller: Who, st: St, *keys: str) -> Response:
    text = policy_from_body(await json_body(request), *keys)
    st.vault.write_vault_policy(caller, vault_name(name), text, st.kv_mounts)
    return no_content()


def _delete(name: str, session: Session) -> Response:
    # Vault answers a delete of a policy that does not exist like any other (after the same check)
    with contextlib.suppress(NotFound):
        session.delete_policy(vault_name(name))
    return no_content()


def router() -> APIRouter:
    api = APIRouter(prefix="/v1/sys", tags=["vault-sys"])

    async def list_acl(request: Request, session: Session, listing: ListFlag = None) -> Response:
        if request.method != "LIST" and (listing or "").lower() not in ("true", "1"):
            return vault_json(session.read_policy("acl").to_dict())  # the native policy named `acl`
        return vault_json(envelope(request, {"keys": session.list_policies()}))

    async def read_acl(name: PolicyName, request: Request, session: Session) -> Response:
        policy = session.read_policy(vault_name(name))
        return vault_json(envelope(request, {"name": policy.name, "policy": policy_text(policy)}))

    async def write_acl(name: PolicyName, request: Request, caller: Who, st: St) -> Response:
        return await _write(name, request, caller, st, "policy")

    async def delete_acl(name: PolicyName, session: Session) -> Response:
        return _delete(name, session)

    async def list_old(request: Request, session: Session) -> Response:
        names = session.list_policies()
        return vault_json({"keys": names, "policies": names, **envelope(request, {"keys": names, "policies": names})})

    async def read_old(name: PolicyName, request: Request, session: Session) -> Response:
        policy = session.read_policy(vault_name(name))
        data = {"name": policy.name, "rules": policy_text(policy)}
        return vault_json({**data, **envelope(request, data)})

    async def write_old(name: PolicyName, request: Request, caller: Who, st: St) -> Response:
        return await _write(name, request, caller, st, "policy", "rules")

    async def delete_old(name: PolicyName, session: Session) -> Response:
        return _delete(name, session)

    add_routes(api, "/policies/acl", list_acl, ["GET", "LIST"])
    add_routes(api, "/policies/acl/{name}", read_acl, ["GET"])
    add_routes(api, "/policies/acl/{name}", write_acl, ["PUT", "POST"])
    add_routes(api, "/policies/acl/{name}", delete_acl, ["DELETE"])
    add_routes(api, "/policy", list_old, ["GET"])
    add_routes(api, "/policy/{name}", read_old, ["GET"])
    add_routes(api, "/policy/{name}", write_old, ["PUT", "POST"])
    add_routes(api, "/policy/{name}", delete_old, ["DELETE"])
    return api
