"""Pulling an image over the OCI distribution API into a private OCI layout directory.

The manifest (through an index to one platform) and every blob are checked against their digests while they
stream to files in the caller's temporary directory (mode 0700, files 0600): nothing is held in memory whole, and
nothing is written outside that directory. A reference pinned by digest must resolve to exactly that manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kinko.errors import ScanError
from kinko.scan.sources.registry.auth import Challenge, Credentials, parse_challenge
from kinko.scan.sources.registry.reference import ImageRef

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
_MAX_MANIFEST = 4 << 20
_CHUNK = 1 << 20


@dataclass
class Pulled:
    """What `pull` wrote: the digest the reference resolved to, and the blobs it could not fetch."""

    digest: str
    layers: int
    bytes: int
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PullOptions:
    credentials: Credentials | None = None
    plain_http: bool = False
    platform: str = "linux/amd64"
    verify: bool | str = True  # False, True, or a CA bundle path
    timeout: float = 60.0
    max_blob_bytes: int = 32 << 30


class Registry:
    """One repository on one registry, answering Basic and Bearer challenges with the caller's credentials."""

    def __init__(self, ref: ImageRef, options: PullOptions) -> None:
        self.ref = ref
        self.options = options
        scheme = "http" if options.plain_http else "https"
        self.base = f"{scheme}://{ref.api_host}/v2/{ref.repository}"
        self._auth: str | None = None
        self._http = httpx.Client(timeout=options.timeout, verify=options.verify, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    @contextmanager
    def get(self, path: str, accept: str | None = None) -> Iterator[httpx.Response]:
        """GET `base/path`, answering one auth challenge; a non-2xx answer is a ScanError naming the status."""
        url = f"{self.base}/{path}"
        for attempt in (0, 1):
            headers = {"Accept": accept} if accept else {}
            if self._auth:
                headers["Authorization"] = self._auth
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code == 401 and attempt == 0:
                        self._answer(response.headers.get("www-authenticate", ""))
                        continue
                    if response.status_code >= 400:
                        raise ScanError(self._refusal(response.status_code, path))
                    yield response
                    return
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {_short(exc)}"
                raise ScanError(f"registry {self.ref.registry} unreachable ({detail})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _refusal(self, status: int, path: str) -> str:
        what = {401: "authentication failed (no or wrong credentials in the Docker config)",
                403: "access denied", 404: "not found"}.get(status, f"HTTP {status}")  # fmt: skip
        return f"{self.ref.registry}/{self.ref.repository}: {path.split('/')[0]} {path.split('/')[-1][:80]}: {what}"

    def _answer(self, header: str) -> None:
        challenge = parse_challenge(header)
        creds = self.options.credentials
        if challenge is None:
            raise ScanError(f"registry {self.ref.registry} asks for an authentication kinko does not speak")
        if challenge.scheme == "basic":
            if creds is None or not creds.username:
                raise ScanError(f"registry {self.ref.registry} needs a login (none in the Docker config)")
            pair = f"{creds.username}:{creds.password}".encode()
            self._auth = "Basic " + base64.b64encode(pair).decode()
            return
        self._auth = f"Bearer {self._token(challenge, creds)}"

    def _token(self, challenge: Challenge, creds: Credentials | None) -> str:
        realm = challenge.params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise ScanError(f"registry {self.ref.registry}: bearer challenge without a usable realm")
        params = {"scope": f"repository:{self.ref.repository}:pull"}
        if "service" in challenge.params:
            params["service"] = challenge.params["service"]
        try:
            if creds is not None and creds.identity_token:
                form = {**params, "grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "client_id": "kinko"}  # fmt: skip
                answer = self._http.post(realm, data=form)
            elif creds is not None and creds.username:
                answer = self._http.get(realm, params=params, auth=(creds.username, creds.password))
            else:
                answer = self._http.get(realm, params=params)
        except httpx.HTTPError as exc:
            raise ScanError(f"token service of {self.ref.registry} unreachable ({type(exc).__name__})") from None
        if answer.status_code != 200:
            raise ScanError(f"token service of {self.ref.registry} refused the login (HTTP {answer.status_code})")
        try:
            doc = answer.json()
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ScanError(f"token service of {self.ref.registry} answered without a token")
        return token

    def manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or index; the digest is checked when `reference` is one."""
        with self.get(f"manifests/{reference}", accept=_ACCEPT) as response:
            body = _read_capped(response, _MAX_MANIFEST, f"manifest {reference}")
            media = response.headers.get("content-type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise ScanError(f"{self.ref.registry}/{self.ref.repository}: manifest {reference} has digest {digest}")
        return body, media, digest

    def blob(self, digest: str, size: int, target: Path) -> None:
        """Stream blob `digest` (of `size` bytes) to `target`, checking its size and digest on the way."""
        alg, _, want = digest.partition(":")
        if alg not in ("sha256", "sha512"):
            raise ScanError(f"blob {digest[:80]}: unsupported digest algorithm")
        if not 0 <= size <= self.options.max_blob_bytes:
            raise ScanError(f"blob {digest}: {size} bytes is over the {self.options.max_blob_bytes}-byte cap")
        hasher = hashlib.new(alg)
        got = 0
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, self.get(f"blobs/{digest}") as response:
            for chunk in response.iter_bytes(_CHUNK):
                got += len(chunk)
                if got > size:
                    raise ScanError(f"blob {digest}: the registry sent more than the {size} bytes its manifest says")
                hasher.update(chunk)
                out.write(chunk)
        if got != size or hasher.hexdigest() != want:
            raise ScanError(f"blob {digest}: content does not match its digest (got {got} of {size} bytes)")


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else "no detail"


def _read_capped(response: httpx.Response, cap: int, what: str) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes(_CHUNK):
        body += chunk
        if len(body) > cap:
            raise ScanError(f"{what}: over {cap} bytes; not an image manifest")
    return bytes(body)


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        raise ScanError(f"{what}: not a JSON manifest")
    return doc


def _choose(index: dict[str, Any], platform: str, what: str) -> dict[str, Any]:
    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    for entry in index.get("manifests") or []:
        plat = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(plat, dict) or (plat.get("os"), plat.get("architecture")) != (os_name, arch):
            continue
        if not variant or plat.get("variant") == variant:
            return dict(entry)
    entries = [e for e in index.get("manifests") or [] if isinstance(e, dict)]
    if len(entries) == 1 and not isinstance(entries[0].get("platform"), dict):
        return dict(entries[0])  # an index of one image that names no platform (OCI layouts made by hand)
    raise ScanError(f"{what}: the image index has no {platform} image (--platform chooses another)")


def pull(ref: ImageRef, options: PullOptions, into: Path) -> Pulled:
    """Write `ref` as an OCI layout in `into` (an empty private directory) and say what it resolved to."""
    registry = Registry(ref, options)
    try:
        return _pull(registry, ref, options, into)
    finally:
        registry.close()


def _pull(registry: Registry, ref: ImageRef, options: PullOptions, into: Path) -> Pulled:
    body, media, top = registry.manifest(ref.manifest_ref)
    what = f"{ref.registry}/{ref.repository}@{top}"
    doc = _json(body, what)
    digest = top
    if media in (OCI_INDEX, DOCKER_LIST) or ("manifests" in doc and "layers" not in doc):
        entry = _choose(doc, options.platform, what)
        body, media, digest = registry.manifest(str(entry.get("digest")))
        doc = _json(body, what)
    if doc.get("schemaVersion") != 2 or not isinstance(doc.get("config"), dict):
        raise ScanError(f"{what}: not a schema 2 image manifest (schema 1 images are not supported)")
    blobs = into / "blobs" / "sha256"
    blobs.mkdir(parents=True, mode=0o700)
    pulled = Pulled(top, 0, 0)
    layers = [layer for layer in doc.get("layers") or [] if isinstance(layer, dict)]
    for desc in [doc["config"], *layers]:
        blob_digest, size = str(desc.get("digest", "")), desc.get("size")
        if not isinstance(size, int) or not blob_digest.startswith("sha256:"):
            raise ScanError(f"{what}: a descriptor without a sha256 digest and a size")
        if desc.get("urls"):  # a foreign layer (Windows base images): not on this registry
            pulled.skipped.append(f"layer {blob_digest} is a foreign layer served from elsewhere; not pulled")
            continue
        target = blobs / blob_digest.split(":", 1)[1]
        if not target.exists():
            registry.blob(blob_digest, size, target)
            pulled.bytes += size
    pulled.layers = len(layers)
    (blobs / digest.split(":", 1)[1]).write_bytes(body)
    entry = {"mediaType": media or OCI_MANIFEST, "digest": digest, "size": len(body)}
    index = {"schemaVersion": 2, "manifests": [entry]}
    (into / "index.json").write_text(json.dumps(index))
    (into / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return pulled
