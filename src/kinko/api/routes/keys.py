"""/v1/keys routes: named keys through the caller's session (kinko's shapes and errors; the same operations as
Vault's /v1/transit routes). Bytes travel as base64: plaintext, associated_data, context, data to sign."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import Field

from kinko.api.models import Strict
from kinko.api.state import Session
from kinko.errors import InvalidInput
from kinko.vault import KEY_TYPES

router = APIRouter(prefix="/v1", tags=["keys"])
KeyName = Annotated[str, Path(max_length=128)]
B64 = Annotated[str, Field(max_length=1_500_000)]


class CreateBody(Strict):
    type: str = Field("aes256-gcm96", max_length=32)
    derived: bool = False
    exportable: bool = False


class ConfigBody(Strict):
    min_decryption_version: int | None = Field(None, ge=0)
    min_encryption_version: int | None = Field(None, ge=0)
    deletion_allowed: bool | None = None
    exportable: bool | None = None


class DataBody(Strict):
    """encrypt (plaintext), decrypt / rewrap (ciphertext), with associated_data and context."""

    plaintext: B64 | None = None
    ciphertext: str | None = Field(None, max_length=2_000_000)
    associated_data: B64 = ""
    context: B64 | None = None


class DataKeyBody(Strict):
    bits: int = 256
    plaintext: bool = True


class SignBody(Strict):
    input: B64
    signature: str | None = Field(None, max_length=4096)
    hash_algorithm: str = Field("sha2-256", max_length=16)
    signature_algorithm: str = Field("pss", max_length=16)
    prehashed: bool = False


def _bytes(text: str | None, name: str) -> bytes:
    try:
        return base64.b64decode(text or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{name} must be base64") from None


def _context(body: DataBody) -> bytes | None:
    return None if body.context is None else _bytes(body.context, "context")


@router.get("/keys")
async def list_keys(session: Session) -> dict[str, Any]:
    return {"keys": session.list_keys(), "types": list(KEY_TYPES)}


@router.post("/keys/{name}")
async def create_key(name: KeyName, body: CreateBody, session: Session) -> dict[str, Any]:
    return session.create_key(name, key_type=body.type, derived=body.derived, exportable=body.exportable).to_dict()


@router.get("/keys/{name}")
async def read_key(name: KeyName, session: Session) -> dict[str, Any]:
    return session.read_key(name).to_dict()


@router.patch("/keys/{name}")
async def configure_key(name: KeyName, body: ConfigBody, session: Session) -> dict[str, Any]:
    return session.configure_key(name, **body.model_dump()).to_dict()


@router.delete("/keys/{name}", status_code=204)
async def delete_key(name: KeyName, session: Session) -> Response:
    session.delete_key(name)
    return Response(status_code=204)


@router.post("/keys/{name}/rotate")
async def rotate_key(name: KeyName, session: Session) -> dict[str, Any]:
    return session.rotate_key(name).to_dict()


@router.post("/keys/{name}/encrypt")
async def encrypt(name: KeyName, body: DataBody, session: Session) -> dict[str, Any]:
    if body.plaintext is None:
        raise InvalidInput("plaintext is required (base64)")
    ciphertext = session.encrypt(name, _bytes(body.plaintext, "plaintext"),
                                 associated_data=_bytes(body.associated_data, "associated_data"),
                                 context=_context(body))
    return {"ciphertext": ciphertext}


@router.post("/keys/{name}/decrypt")
async def decrypt(name: KeyName, body: DataBody, session: Session) -> dict[str, Any]:
    plain = session.decrypt(name, body.ciphertext or "", associated_data=_bytes(body.associated_data,
                                                                                "associated_data"),
                            context=_context(body))
    return {"plaintext": base64.b64encode(plain).decode()}


@router.post("/keys/{name}/rewrap")
async def rewrap(name: KeyName, body: DataBody, session: Session) -> dict[str, Any]:
    ciphertext = session.rewrap_ciphertext(name, body.ciphertext or "",
                                           associated_data=_bytes(body.associated_data, "associated_data"),
                                           context=_context(body))
    return {"ciphertext": ciphertext}


@router.post("/keys/{name}/datakey")
async def datakey(name: KeyName, body: DataKeyBody, session: Session) -> dict[str, Any]:
    wrapped, plain = session.data_key(name, bits=body.bits, plaintext=body.plaintext)
    return {"ciphertext": wrapped, "plaintext": None if plain is None else base64.b64encode(plain).decode()}


@router.post("/keys/{name}/sign")
async def sign(name: KeyName, body: SignBody, session: Session) -> dict[str, Any]:
    signature = session.sign(name, _bytes(body.input, "input"), hash_name=body.hash_algorithm,
                             signature_algorithm=body.signature_algorithm, prehashed=body.prehashed)
    return {"signature": signature}


@router.post("/keys/{name}/verify")
async def verify(name: KeyName, body: SignBody, session: Session) -> dict[str, Any]:
    if body.signature is None:
        raise InvalidInput("signature is required")
    valid = session.verify(name, _bytes(body.input, "input"), body.signature, hash_name=body.hash_algorithm,
                           signature_algorithm=body.signature_algorithm, prehashed=body.prehashed)
    return {"valid": valid}
