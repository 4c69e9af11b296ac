"""/v1/sys/policies routes: list, read, write and delete access policies (kinko rules, or a Vault HCL policy)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field

from kinko.api.models import Strict
from kinko.api.state import Session, St, Who
from kinko.errors import InvalidInput

router = APIRouter(prefix="/v1/sys", tags=["sys"])
PolicyName = Annotated[str, Path(max_length=64)]
MAX_HCL = 256 * 1024


class PolicyBody(Strict):
    """Either kinko `rules`, or `hcl`: a Vault ACL policy translated onto kinko rules (its text is kept)."""

    rules: list[dict[str, Any]] | None = Field(default=None, max_length=256)
    hcl: str | None = Field(default=None, max_length=MAX_HCL)


@router.get("/policies")
async def list_policies(session: Session) -> dict[str, Any]:
    return {"policies": session.list_policies()}


@router.get("/policies/{name}")
async def read_policy(name: PolicyName, session: Session) -> dict[str, Any]:
    return session.read_policy(name).to_dict()


@router.put("/policies/{name}")
async def write_policy(name: PolicyName, body: PolicyBody, caller: Who, st: St) -> dict[str, Any]:
    if (body.rules is None) == (body.hcl is None):
        raise InvalidInput("give either rules (kinko's) or hcl (a Vault policy), not both")
    if body.hcl is not None:
        return st.vault.write_vault_policy(caller, name, body.hcl, st.kv_mounts).to_dict()
    return st.vault.write_policy(caller, {"name": name, "rules": body.rules}, name=name).to_dict()


@router.delete("/policies/{name}", status_code=204)
async def delete_policy(name: PolicyName, session: Session) -> Response:
    session.delete_policy(name)
    return Response(status_code=204)
