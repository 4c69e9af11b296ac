"""The Secrets Store CSI driver provider: v1alpha1.CSIDriverProvider (Version, Mount) over a Unix socket."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx

from kinko.client import Client, RemoteVault
from kinko.client.transport import tls_context
from kinko.config import same_server
from kinko.core.model import Secret
from kinko.deliver.csi.params import CSIObject, MountPlan, parse_request
from kinko.deliver.csi.proto import service_pb2 as pb
from kinko.deliver.csi.proto import service_pb2_grpc as pb_grpc
from kinko.deliver.files import DEFAULT_FILE_MODE
from kinko.deliver.unix_grpc import listen, stop
from kinko.errors import InvalidInput, KinkoError, NotFound, TooLarge, UsageError, VersionUnavailable
from kinko.vault import VaultSession

log = logging.getLogger("kinko.csi")

API_VERSION = "v1alpha1"
RUNTIME_NAME = "kinko"
DEFAULT_SOCKET = "/var/run/secrets-store-csi-providers/kinko.sock"
#: The driver's default --max-call-recv-msg-size is 4 MiB; keep the whole response under it with room to spare.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024 - 64 * 1024
MAX_ADDRESSES = 16  # distinct kinko addresses whose connections are kept open
MAX_WARNED = 4096  # distinct mode warnings remembered (then forgotten, and logged again once)
#: How a Mount turns the pod's service-account JWT into the kinko token its session acts with (Kubernetes auth).
LoginFn = Callable[[RemoteVault, str, str], object]


def kubernetes_login(session: RemoteVault, role: str, jwt: str) -> object:
    login = session.login_kubernetes(role, jwt)
    session.use_token(login.token)
    return login


def _runtime_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kinko")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0.0.0"


class Provider:
    """Turns a validated MountPlan into files: log in with the pod's token, fetch every object, all or nothing."""

    def __init__(self, addr: str | None = None, *, ca_file: str | None = None, timeout: float = 10.0,
                 max_response_bytes: int = MAX_RESPONSE_BYTES, fetch_workers: int = 8,
                 login: LoginFn = kubernetes_login, address_override: bool = False) -> None:
        self.addr = addr
        # kinkoAddress comes from whoever writes the SecretProviderClass (a namespace admin) and the pod's token
        # goes there, so following it is opt-in (--allow-address-override); otherwise it must name --addr.
        self.address_override = address_override
        self.ca_file = ca_file
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._login = login
        # Objects are fetched concurrently: a 20-object mount should cost about one round trip, not twenty.
        self._pool = ThreadPoolExecutor(max_workers=fetch_workers, thread_name_prefix="kinko-csi-fetch")
        self._http: OrderedDict[str, httpx.Client] = OrderedDict()
        self._http_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._http_lock:
            for http in self._http.values():
                http.close()
            self._http.clear()

    def _connection(self, address: str) -> httpx.Client:
        """A pooled HTTP connection per kinko address: building one (TLS context) costs ~30 ms, a mount ~1 ms."""
        with self._http_lock:
            http = self._http.get(address)
            if http is None:
                http = self._http[address] = httpx.Client(base_url=address.rstrip("/"), timeout=self.timeout,
                                                          verify=tls_context(self.ca_file))
                if len(self._http) > MAX_ADDRESSES:  # kinkoAddress comes from users: keep the cache bounded
                    self._http.popitem(last=False)[1].close()
            self._http.move_to_end(address)
            return http

    def mount(self, plan: MountPlan) -> pb.MountResponse:
        if plan.address and not self.address_override and not same_server(plan.address, self.addr or ""):
            raise InvalidInput(f"kinkoAddress {plan.address[:200]!r} is not allowed: this provider only talks to "
                               "its --addr (start it with --allow-address-override to let kinkoAddress choose)")
        address = plan.address or self.addr
        if not address:
            raise UsageError("no kinko address: set the kinkoAddress parameter or start the provider with --addr")
        # A session per mount (the token it carries belongs to this pod only) over a shared connection pool.
        # Several servers (a comma-separated address): the client moves to the next when one cannot be reached.
        session = RemoteVault(Client(address, None, connect=self._connection))
        try:
            try:
                self._login(session, plan.role, plan.token)
            except KinkoError as exc:
                raise _about(exc, f"login with role {plan.role!r} failed") from None
            secrets = list(self._pool.map(lambda obj: _fetch(session, obj), plan.objects))
        finally:
            session.close()
        return self._response(plan, secrets)

    def _response(self, plan: MountPlan, secrets: list[Secret]) -> pb.MountResponse:
        response = pb.MountResponse()
        total = 0
        for obj, secret in zip(plan.objects, secrets, strict=True):
            contents = _decode(obj, _select(obj, secret))
            total += len(contents) + len(obj.object_name) + 16
            if total > self.max_response_bytes:
                raise TooLarge(f"object {obj.object_name!r}: the mounted objects total more than "
                               f"{self.max_response_bytes} bytes, over the CSI driver's gRPC message limit")
            mode = DEFAULT_FILE_MODE if obj.file_permission is None else obj.file_permission
            response.files.append(pb.File(path=obj.object_name, mode=mode, contents=contents))
            # The version number is the rotation signal: a new kinko version is a new object_version.
            response.object_version.append(pb.ObjectVersion(id=obj.object_name, version=str(secret.info.version)))
        return response


def _about(exc: KinkoError, what: str) -> KinkoError:
    """The same error (same code and class), its message prefixed with what failed."""
    exc.message = f"{what}: {exc.message}"
    exc.args = (exc.message,)
    return exc


def _fetch(session: VaultSession, obj: CSIObject) -> Secret:
    try:
        return session.get(obj.secret_path, obj.version)
    except KinkoError as exc:
        raise _about(exc, f"object {obj.object_name!r} (secret {obj.secret_path!r})") from None


def _select(obj: CSIObject, secret: Secret) -> bytes:
    where = f"object {obj.object_name!r} (secret {obj.secret_path!r})"
    value = secret.value
    if isinstance(value, bytes | bytearray):
        if obj.secret_key is not None:
            raise InvalidInput(f"{where}: the secret holds a single value; remove secretKey {obj.secret_key!r}")
        return bytes(value)
    if obj.secret_key is not None:
        if obj.secret_key not in value:
            raise NotFound(f"{where}: the secret has no key {obj.secret_key!r}")
        return bytes(value[obj.secret_key])
    try:  # no secretKey on a keyed secret: the whole map as JSON, like the Vault provider's whole response
        doc = {key: bytes(item).decode("utf-8") for key, item in value.items()}
    except UnicodeDecodeError:
        raise InvalidInput(f"{where}: the secret has binary keys; pick one with secretKey") from None
    return json.dumps(doc, sort_keys=True).encode()


def _decode(obj: CSIObject, raw: bytes) -> bytes:
    """`encoding` says how the stored value is encoded; the file gets the decoded bytes."""
    try:
        if obj.encoding == "base64":
            return base64.b64decode(raw.strip(), validate=True)
        if obj.encoding == "hex":
            return binascii.unhexlify(raw.strip())
    except (ValueError, binascii.Error):
        raise InvalidInput(f"object {obj.object_name!r}: the stored value is not valid {obj.encoding}") from None
    return raw


# -- gRPC ------------------------------------------------------------------------------------------------
def grpc_status(exc: KinkoError) -> grpc.StatusCode:
    """The gRPC status for a kinko error (the driver reports any of them as GRPCProviderError)."""
    if isinstance(exc, TooLarge):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, VersionUnavailable):
        return grpc.StatusCode.FAILED_PRECONDITION
    by_status = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
                 403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
                 409: grpc.StatusCode.FAILED_PRECONDITION, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
                 429: grpc.StatusCode.RESOURCE_EXHAUSTED, 501: grpc.StatusCode.FAILED_PRECONDITION,
                 503: grpc.StatusCode.UNAVAILABLE}
    if exc.code == "error":  # the client could not reach the server, or it answered something unexpected
        return grpc.StatusCode.UNAVAILABLE
    return by_status.get(exc.http_status, grpc.StatusCode.INTERNAL)


class CSIDriverProviderServicer(pb_grpc.CSIDriverProviderServicer):
    """The gRPC face of `Provider`: parse, mount, and turn kinko errors into gRPC statuses."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.runtime_version = _runtime_version()
        self._warned: set[str] = set()  # mode warnings already logged: once each, not at every rotation poll
        self._warned_lock = threading.Lock()

    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> pb.VersionResponse:
        return pb.VersionResponse(version=API_VERSION, runtime_name=RUNTIME_NAME,
                                  runtime_version=self.runtime_version)

    def Mount(self, request: pb.MountRequest, context: grpc.ServicerContext) -> pb.MountResponse:
        try:
            plan = parse_request(request.attributes, request.secrets, request.permission)
            self._warn(plan.warnings)
            response = self.provider.mount(plan)
        except KinkoError as exc:
            # The message names the parameter or object, never a value or the token.
            status, message = grpc_status(exc), one_line(f"{exc.code}: {exc.message}")
            log.warning("mount failed: %s", message)
        except Exception as exc:  # a bug: never UNKNOWN with a traceback (its text could quote a value)
            status, message = grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})"
            log.error("mount failed: %s at %s", message, _origin(exc))
        else:
            log.info("mounted %d object(s) for role %r", len(plan.objects), plan.role)
            return response
        context.abort(status, f"kinko: {message}")
        raise AssertionError("context.abort returned")  # pragma: no cover

    def _warn(self, warnings: tuple[str, ...]) -> None:
        with self._warned_lock:
            fresh = [w for w in warnings if w not in self._warned]
            if len(self._warned) + len(fresh) > MAX_WARNED:
                self._warned.clear()
            self._warned.update(fresh)
        for warning in fresh:
            log.warning("%s", one_line(warning))


def one_line(text: str, limit: int = 2000) -> str:
    """`text` as one printable line of at most `limit` characters (escaped like repr), for gRPC details and logs."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def _origin(exc: BaseException) -> str:
    """Where an unexpected exception was raised (file:line in function), without its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


def serve(socket_path: str | Path, provider: Provider, *, workers: int = 8) -> grpc.Server:
    """Start the provider on a Unix socket (mode 0600; a stale socket file is replaced) and return the server."""
    server = grpc.server(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kinko-csi"))
    pb_grpc.add_CSIDriverProviderServicer_to_server(  # type: ignore[no-untyped-call]
        CSIDriverProviderServicer(provider), server)
    listen(server, socket_path)
    return server


__all__ = ["CSIDriverProviderServicer", "Provider", "grpc_status", "kubernetes_login", "serve", "stop"]
