"""Vault's transit secrets engine API at `/v1/transit/...`, over `Vault.keys` (kinko.vault.keys): keys (create, read,
list, delete, config, rotate), encrypt, decrypt, rewrap, datakey, sign, verify, hmac, random and hash, in
Vault's shapes, statuses and error texts (hvac's transit client and the `bao`/`vault` CLI work unchanged).

A request without `batch_input` answers the item's fields as `data` (an error: Vault's 400 with the message); with
`batch_input` it answers `batch_results`, one per item, each with its `reference`, and 400 if any item failed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kinko.api.compat.vault_shapes import (
    envelope,
    errors,
    json_body,
    no_content,
    parse_vault_duration,
    rfc3339,
    vault_json,
)
from kinko.api.routing import routes
from kinko.api.state import ApiState, St, Who
from kinko.errors import InvalidInput
from kinko.vault import Caller, KeyInfo, TransitError, Vault

PREFIX = "/v1/transit"
UNSUPPORTED_PATH = "1 error occurred:\n\t* unsupported path\n\n"
UNSUPPORTED = "1 error occurred:\n\t* unsupported operation\n\n"
Outcome = dict[str, Any] | TransitError

# Parameters each endpoint knows (others are ignored with Vault's warning).
_CREATE = {"type", "derived", "exportable", "convergent_encryption", "allow_plaintext_backup", "auto_rotate_period",
           "key_size", "managed_key_name", "managed_key_id", "context"}
_CONFIG = {"min_decryption_version", "min_encryption_version", "deletion_allowed", "exportable",
           "allow_plaintext_backup", "auto_rotate_period"}
_ENCRYPT = {"plaintext", "context", "associated_data", "nonce", "key_version", "type", "convergent_encryption",
            "batch_input", "reference", "partial_failure_response_code"}
_DECRYPT = {"ciphertext", "context", "associated_data", "nonce", "batch_input", "reference",
            "partial_failure_response_code"}
_SIGN = {"input", "hash_algorithm", "algorithm", "prehashed", "signature_algorithm", "marshaling_algorithm",
         "key_version", "context", "batch_input", "reference", "salt_length"}
_VERIFY = _SIGN | {"signature", "hmac"}
_HMAC = {"input", "algorithm", "key_version", "batch_input", "reference"}


# -- Vault's field parsing -----------------------------------------------------------------------------------------
def _field_error(name: str, kind: str, parser: str) -> InvalidInput:
    return InvalidInput(f"Field validation failed: error converting input for field \"{name}\": '' cannot parse "
                        f"value as '{kind}': strconv.{parser}: invalid syntax")


def vault_int(body: Mapping[str, Any], name: str, default: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _field_error(name, "int", "ParseInt")
    return int(value)


def vault_bool(body: Mapping[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    text = str(value).lower() if isinstance(value, str | int) else ""
    if text in ("1", "t", "true"):
        return True
    if text in ("0", "f", "false"):
        return False
    raise _field_error(name, "bool", "ParseBool")


def _ignored(body: Mapping[str, Any], known: set[str]) -> list[str] | None:
    unknown = sorted(set(body) - known)
    return [f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"] if unknown else None


# -- answers -------------------------------------------------------------------------------------------------------
def key_body(info: KeyInfo) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for number, (created, name, public) in sorted(info.versions.items()):
        keys[str(number)] = {"certificate_chain": "", "creation_time": rfc3339(created), "name": name,
                             "public_key": public} if name else int(created)
    body: dict[str, Any] = {
        "allow_plaintext_backup": False, "auto_rotate_period": int(info.auto_rotate_period),
        "deletion_allowed": info.deletion_allowed, "derived": info.derived, "exportable": info.exportable,
        "imported_key": False, "keys": keys, "latest_version": info.latest_version, "min_available_version": 0,
        "min_decryption_version": info.min_decryption_version,
        "min_encryption_version": info.min_encryption_version, "name": info.name, "soft_deleted": False,
        "supports_decryption": info.supports_encryption, "supports_derivation": info.supports_derivation,
        "supports_encryption": info.supports_encryption, "supports_signing": info.supports_signing,
        "type": info.type}
    if info.derived:
        body.update(convergent_encryption=False, kdf="hkdf_sha256")
    return body


def _items(body: Mapping[str, Any]) -> tuple[list[Any], bool]:
    """(items, batch?): `batch_input`, or the body itself as the one item."""
    batch = body.get("batch_input")
    if batch is None:
        return [body], False
    if not isinstance(batch, list):
        raise InvalidInput("batch_input must be a list of objects")
    return batch, True


def _answer(request: Request, body: Mapping[str, Any], items: list[Any], batch: bool, outcomes: Sequence[Outcome],
            known: set[str], failed_extra: Mapping[str, Any] | None = None) -> Response:
    if not batch:
        outcome = outcomes[0]
        if isinstance(outcome, TransitError):
            raise outcome
        return vault_json(envelope(request, outcome, warnings=_ignored(body, known)))
    results: list[dict[str, Any]] = []
    for item, outcome in zip(items, outcomes, strict=True):
        reference = item.get("reference", "") if isinstance(item, Mapping) else ""
        if isinstance(outcome, TransitError):
            results.append({**(failed_extra or {}), "error": outcome.message, "reference": reference})
        else:
            results.append({**outcome, "reference": reference})
    status = 400 if any(isinstance(o, TransitError) for o in outcomes) else 200
    return vault_json(envelope(request, {"batch_results": results}), status)


def _text(raw: bytes, output: object) -> str:
    if output in (None, "", "base64"):
        return base64.b64encode(raw).decode()
    if output == "hex":
        return raw.hex()
    raise InvalidInput(f"unsupported encoding format {str(output)[:16]}; must be \"hex\" or \"base64\"")


def _check_method(st: ApiState, caller: Caller, method: str, path: str) -> None:
    """Authorize (and audit) a request no operation takes, with the capability its method needs."""
    capability = {"GET": "read", "HEAD": "read", "LIST": "list", "DELETE": "delete"}.get(method, "update")
    st.vault.check(caller, capability, path.rstrip("/"), "key.unsupported")


# -- routes --------------------------------------------------------------------------------------------------------
def transit_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["vault-transit"])
    _key_routes(router)
    _crypt_routes(router)
    _sign_routes(router)
    _keyless_routes(router)

    @routes(router, "/{rest:path}", ["GET", "POST", "PUT", "PATCH", "DELETE", "LIST", "HEAD"])
    async def other(rest: str, request: Request, caller: Who, st: St) -> Response:
        """Vault's answer where no route took the request (after its policy check, as in Vault): 405 on a path it
        knows, else 404."""
        _check_method(st, caller, request.method, "transit/" + rest)
        first = rest.partition("/")[0]
        known = first in ("keys", "encrypt", "decrypt", "rewrap", "datakey", "sign", "verify", "hmac", "random",
                          "hash")
        return errors([UNSUPPORTED if known else UNSUPPORTED_PATH], 405 if known else 404)

    return router


def _key_routes(router: APIRouter) -> None:
    @routes(router, "/keys/", ["GET", "LIST"])
    @routes(router, "/keys", ["GET", "LIST"])
    async def list_keys(request: Request, caller: Who, st: St,
                        listing: Annotated[str | None, Query(alias="list")] = None) -> Response:
        if request.method == "GET" and (listing or "").lower() not in ("true", "1"):
            _check_method(st, caller, "GET", "transit/keys")
            return errors([UNSUPPORTED], 405)
        names = st.vault.keys.names(caller)
        return vault_json(envelope(request, {"keys": names})) if names else errors([], 404)

    @routes(router, "/keys/{name}", ["POST", "PUT"])
    async def create_key(name: str, request: Request, caller: Who, st: St) -> Response:
        body = await json_body(request)
        period = body.get("auto_rotate_period")
        info = st.vault.keys.create(
            caller, name, key_type=str(body.get("type") or "aes256-gcm96"), derived=bool(vault_bool(body, "derived")),
            exportable=bool(vault_bool(body, "exportable")),
            auto_rotate_period=0.0 if period is None else parse_vault_duration(period, "auto_rotate_period"))
        return vault_json(envelope(request, key_body(info), warnings=_ignored(body, _CREATE)))

    @router.get("/keys/{name}")
    async def read_key(name: str, request: Request, caller: Who, st: St) -> Response:
        return vault_json(envelope(request, key_body(st.vault.keys.read(caller, name))))

    @router.delete("/keys/{name}")
    async def delete_key(name: str, caller: Who, st: St) -> Response:
        st.vault.keys.delete(caller, name)
        return no_content()

    @routes(router, "/keys/{name}/config", ["POST", "PUT"])
    async def configure_key(name: str, request: Request, caller: Who, st: St) -> Response:
        body = await json_body(request)
        period = body.get("auto_rotate_period")
        info = st.vault.keys.configure(
            caller, name, min_decryption_version=vault_int(body, "min_decryption_version"),
            min_encryption_version=vault_int(body, "min_encryption_version"),
            deletion_allowed=vault_bool(body, "deletion_allowed"), exportable=vault_bool(body, "exportable"),
            auto_rotate_period=None if period is None else parse_vault_duration(period, "auto_rotate_period"))
        return vault_json(envelope(request, key_body(info), warnings=_ignored(body, _CONFIG)))

    @routes(router, "/keys/{name}/rotate", ["POST", "PUT"])
    async def rotate_key(name: str, request: Request, caller: Who, st: St) -> Response:
        return vault_json(envelope(request, key_body(st.vault.keys.rotate(caller, name))))


async def encrypt_answer(request: Request, caller: Caller, vault: Vault, name: str) -> Response:
    """POST transit/encrypt/<name> once the caller is known (the route, and api/hot_read.py's fast path)."""
    body = await json_body(request)
    items, batch = _items(body)
    outcomes = vault.keys.encrypt(caller, name, items, key_version=vault_int(body, "key_version"),
                                  key_type=str(body.get("type") or "aes256-gcm96"))
    return _answer(request, body, items, batch, outcomes, _ENCRYPT)


async def decrypt_answer(request: Request, caller: Caller, vault: Vault, name: str) -> Response:
    """POST transit/decrypt/<name> once the caller is known (the route, and api/hot_read.py's fast path)."""
    body = await json_body(request)
    items, batch = _items(body)
    outcomes = vault.keys.decrypt(caller, name, items)
    return _answer(request, body, items, batch, outcomes, _DECRYPT, {"plaintext": ""})


def _crypt_routes(router: APIRouter) -> None:
    @routes(router, "/encrypt/{name}", ["POST", "PUT"])
    async def encrypt(name: str, request: Request, caller: Who, st: St) -> Response:
        return await encrypt_answer(request, caller, st.vault, name)

    @routes(router, "/decrypt/{name}", ["POST", "PUT"])
    async def decrypt(name: str, request: Request, caller: Who, st: St) -> Response:
        return await decrypt_answer(request, caller, st.vault, name)

    @routes(router, "/rewrap/{name}", ["POST", "PUT"])
    async def rewrap(name: str, request: Request, caller: Who, st: St) -> Response:
        body = await json_body(request)
        items, batch = _items(body)
        outcomes = st.vault.keys.rewrap(caller, name, items, key_version=vault_int(body, "key_version"))
        return _answer(request, body, items, batch, outcomes, _DECRYPT | {"key_version"})

    @routes(router, "/datakey/{kind}/{name}", ["POST", "PUT"])
    async def datakey(kind: str, name: str, request: Request, caller: Who, st: St) -> Response:
        body = await json_body(request)
        if kind not in ("plaintext", "wrapped"):
            st.vault.check(caller, "update", f"transit/datakey/{kind}/{name}", "key.datakey")
            raise TransitError("Invalid path, must be 'plaintext' or 'wrapped'")
        result = st.vault.keys.datakey(caller, name, plaintext=kind == "plaintext",
                                       bits=vault_int(body, "bits", 256) or 256, context=body.get("context"))
        return vault_json(envelope(request, result))


def _sign_routes(router: APIRouter) -> None:
    def options(body: Mapping[str, Any], hash_name: str | None) -> dict[str, Any]:
        return {"hash_name": hash_name or body.get("hash_algorithm") or body.get("algorithm") or "sha2-256",
                "prehashed": bool(vault_bool(body, "prehashed")),
                "signature_algorithm": body.get("signature_algorithm") or "pss",
                "marshaling": body.get("marshaling_algorithm") or "asn1"}

    async def sign(name: str, request: Request, caller: Who, st: St, hash_name: str | None = None) -> Response:
        body = await json_body(request)
        items, batch = _items(body)
        outcomes = st.vault.keys.sign(caller, name, items, key_version=vault_int(body, "key_version"),
                                      **options(body, hash_name))
        return _answer(request, body, items, batch, outcomes, _SIGN)

    async def verify(name: str, request: Request, caller: Who, st: St, hash_name: str | None = None) -> Response:
        body = await json_body(request)
        items, batch = _items(body)
        outcomes = st.vault.keys.verify(caller, name, items, **options(body, hash_name))
        return _answer(request, body, items, batch, outcomes, _VERIFY)

    async def hmac(name: str, request: Request, caller: Who, st: St, hash_name: str | None = None) -> Response:
        body = await json_body(request)
        items, batch = _items(body)
        algorithm = hash_name or body.get("algorithm") or "sha2-256"
        outcomes = st.vault.keys.hmac(caller, name, items, algorithm=str(algorithm),
                                      key_version=vault_int(body, "key_version"))
        return _answer(request, body, items, batch, outcomes, _HMAC)

    endpoint: Callable[..., Any]
    for verb, endpoint in (("sign", sign), ("verify", verify), ("hmac", hmac)):
        routes(router, f"/{verb}/{{name}}", ["POST", "PUT"])(endpoint)
        routes(router, f"/{verb}/{{name}}/{{hash_name}}", ["POST", "PUT"])(endpoint)


def _keyless_routes(router: APIRouter) -> None:
    async def random(request: Request, caller: Who, st: St, count: str | None = None) -> Response:
        body = await json_body(request)
        number = vault_int({"bytes": count} if count is not None else body, "bytes", 32)
        raw = st.vault.keys.random(caller, 32 if number is None else number)
        return vault_json(envelope(request, {"random_bytes": _text(raw, body.get("format"))}))

    async def hash_data(request: Request, caller: Who, st: St, algorithm: str | None = None) -> Response:
        body = await json_body(request)
        algorithm = str(algorithm or body.get("algorithm") or "sha2-256")
        digest = st.vault.keys.hash(caller, body.get("input", ""), algorithm)
        output = body.get("format") or "hex"
        return vault_json(envelope(request, {"sum": _text(digest, output)}))

    routes(router, "/random", ["POST", "PUT"])(random)
    routes(router, "/random/{count}", ["POST", "PUT"])(random)
    routes(router, "/hash", ["POST", "PUT"])(hash_data)
    routes(router, "/hash/{algorithm}", ["POST", "PUT"])(hash_data)
