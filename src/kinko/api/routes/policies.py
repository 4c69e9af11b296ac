"""/v1/sys/policies routes: list, read, write and delete access policies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field

from kinko.api.models import Strict
from kinko.api.state import Session

router = APIRouter(prefix="/v1/sys", tags=["sys"])
PolicyName = Annotated[str, Path(max_length=64)]


class PolicyBody(Strict):
    rules: list[dict[str, Any]] = Field(max_length=256)


@router.get("/policies")
async def list_policies(session: Session) -> dict[str, Any]:
    return {"policies": session.list_policies()}


@router.get("/policies/{name}")
async def read_policy(name: PolicyName, session: Session) -> dict[str, Any]:
    return session.read_policy(name).to_dict()


@router.put("/policies/{name}")
async def write_policy(name: PolicyName, body: PolicyBody, session: Session) -> dict[str, Any]:
    return session.write_policy({"name": name, "rules": body.rules}, name=name).to_dict()


@router.delete("/policies/{name}", status_code=204)
async def delete_policy(name: PolicyName, session: Session) -> Response:
    session.delete_policy(name)
    return Response(status_code=204)
