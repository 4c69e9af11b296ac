"""The Kubernetes KMS v2 plugin: `v2.KeyManagementService` (Status, Encrypt, Decrypt) on a Unix socket, wrapping the
API server's DEK seeds with a named kinko key (the plugin never sees a Secret's contents, only the seed).

* key_id is `kinko:<key>:v<N>` — N the key's latest version, so it changes when the key rotates and the API server
  knows which stored objects to re-encrypt. Encrypt answers the key_id of the version it really used (read from
  the ciphertext), so a rotation between Status and Encrypt cannot mislabel data.
* The ciphertext is the vault's `vault:v<N>:<base64>` text; the key_id the API server sends back at Decrypt must
  name the same key and version, and the one annotation (`version.kms.kinko.dev`, the plugin's format) must be
  ours — anything else is refused (INVALID_ARGUMENT) before the vault is asked.
* Every limit the API server enforces is checked here too: key_id and ciphertext at most 1 KiB, annotations under
  32 KiB. A vault that cannot be reached gives UNAVAILABLE (and Status a healthz other than "ok"), never a crash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import grpc

from kinko.deliver.csi.provider import grpc_status
from kinko.deliver.kms.proto import api_pb2 as pb
from kinko.deliver.kms.proto import api_pb2_grpc as pb_grpc
from kinko.deliver.unix_grpc import listen
from kinko.errors import InvalidInput, KinkoError, PermissionDenied
from kinko.vault import VaultSession

log = logging.getLogger("kinko.kms")
T = TypeVar("T")
API_VERSION = "v2"
MAX_KEY_ID = 1024
MAX_CIPHERTEXT = 1024
MAX_ANNOTATIONS = 32 * 1024
MAX_PLAINTEXT = 4096  # the API server sends a 32-byte seed; anything much larger is not one
FORMAT_ANNOTATION = "version.kms.kinko.dev"
FORMAT = b"1"
_CIPHERTEXT = re.compile(rb"vault:v([0-9]{1,9}):[A-Za-z0-9+/=]+")


class KmsPlugin:
    """The operations, over a `VaultSession` whose token may read the key and encrypt and decrypt with it.

    `new_token`: called when the server refuses the token (expired, revoked, replaced); a token it returns that
    differs from the one in use is switched to (RemoteVault.use_token) and the call is tried once more — so an
    operator rotates the plugin's token by rewriting its token file, without restarting the plugin."""

    def __init__(self, session: VaultSession, key: str, *, new_token: Callable[[], str | None] | None = None,
                 use_token: Callable[[str], None] | None = None) -> None:
        self.session, self.key = session, key
        self._new_token, self._use_token = new_token, use_token
        self._token: str | None = None

    def _retrying(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except PermissionDenied:
            token = self._new_token() if self._new_token is not None else None
            if not token or token == self._token or self._use_token is None:
                raise
            self._token = token
            self._use_token(token)
            log.info("the server refused the plugin's token; switched to the token file's new one")
            return call()

    def key_id(self, version: int) -> str:
        return f"kinko:{self.key}:v{version}"

    def status(self) -> pb.StatusResponse:
        try:
            latest = self._retrying(lambda: self.session.read_key(self.key)).latest_version
        except KinkoError as exc:
            return pb.StatusResponse(version=API_VERSION, healthz=f"kinko: {exc.code}", key_id="")
        return pb.StatusResponse(version=API_VERSION, healthz="ok", key_id=self.key_id(latest))

    def encrypt(self, plaintext: bytes) -> pb.EncryptResponse:
        if not plaintext or len(plaintext) > MAX_PLAINTEXT:
            raise InvalidInput(f"plaintext must be 1 to {MAX_PLAINTEXT} bytes")
        ciphertext = self._retrying(lambda: self.session.encrypt(self.key, plaintext)).encode()
        found = _CIPHERTEXT.fullmatch(ciphertext)
        if found is None or len(ciphertext) > MAX_CIPHERTEXT:
            raise KinkoError("the vault answered a ciphertext this plugin cannot pass on")
        return pb.EncryptResponse(ciphertext=ciphertext, key_id=self.key_id(int(found.group(1))),
                                  annotations={FORMAT_ANNOTATION: FORMAT})

    def decrypt(self, request: pb.DecryptRequest) -> pb.DecryptResponse:
        ciphertext = bytes(request.ciphertext)
        if not ciphertext or len(ciphertext) > MAX_CIPHERTEXT:
            raise InvalidInput(f"ciphertext must be 1 to {MAX_CIPHERTEXT} bytes")
        found = _CIPHERTEXT.fullmatch(ciphertext)
        if found is None:
            raise InvalidInput("ciphertext is not one this plugin made")
        if len(request.key_id) > MAX_KEY_ID or request.key_id != self.key_id(int(found.group(1))):
            raise InvalidInput("key_id does not name this plugin's key and the ciphertext's version")
        annotations = dict(request.annotations)
        if sum(len(k) + len(v) for k, v in annotations.items()) >= MAX_ANNOTATIONS:
            raise InvalidInput("annotations are larger than 32 KiB")
        if annotations != {FORMAT_ANNOTATION: FORMAT}:
            raise InvalidInput(f"annotations must be exactly {FORMAT_ANNOTATION} (this plugin's format)")
        return pb.DecryptResponse(plaintext=self._retrying(lambda: self.session.decrypt(self.key, ciphertext.decode())))


class KeyManagementServicer(pb_grpc.KeyManagementServiceServicer):
    """The gRPC face: kinko errors as gRPC statuses (a vault outage: UNAVAILABLE), never a value in a log line."""

    def __init__(self, plugin: KmsPlugin) -> None:
        self.plugin = plugin

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        return self.plugin.status()

    def Encrypt(self, request: pb.EncryptRequest, context: grpc.ServicerContext) -> pb.EncryptResponse:
        return self._call(context, "encrypt", request.uid, lambda: self.plugin.encrypt(bytes(request.plaintext)))

    def Decrypt(self, request: pb.DecryptRequest, context: grpc.ServicerContext) -> pb.DecryptResponse:
        return self._call(context, "decrypt", request.uid, lambda: self.plugin.decrypt(request))

    def _call(self, context: grpc.ServicerContext, what: str, uid: str, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except KinkoError as exc:
            log.warning("%s %s refused: %s", what, uid[:64], exc.code)
            context.abort(grpc_status(exc), f"{exc.code}: {exc.message}")
        except Exception as exc:  # one bad call must not take the plugin down
            log.error("%s %s failed: %s", what, uid[:64], type(exc).__name__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable")  # context.abort raises


def serve(socket_path: str | Path, plugin: KmsPlugin, *, workers: int = 8) -> grpc.Server:
    """Start the plugin on a Unix socket (mode 0600; a stale socket file is replaced) and return the server."""
    server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kinko-kms"))
    pb_grpc.add_KeyManagementServiceServicer_to_server(  # type: ignore[no-untyped-call]
        KeyManagementServicer(plugin), server)
    listen(server, socket_path)
    return server
