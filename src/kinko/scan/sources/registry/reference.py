"""Image references as Docker names them: `[host[:port]/]repository[:tag][@digest]`.

A first component with a `.` or `:` in it, or `localhost`, is a registry host; otherwise the image is on Docker
Hub (`docker.io`, API at registry-1.docker.io) and a one-part name is in `library/`. No tag and no digest means
`:latest`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from kinko.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"|\[[0-9A-Fa-f:.]+\]")  # fmt: skip


@dataclass(frozen=True)
class ImageRef:
    """A parsed reference; `host` is the name the user wrote (`docker.io` for Docker Hub)."""

    host: str
    port: int | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def registry(self) -> str:
        """host[:port] as it appears in a reference and in ~/.docker/config.json."""
        return f"{self.host}:{self.port}" if self.port is not None else self.host

    @property
    def api_host(self) -> str:
        """host[:port] of the registry's HTTP API."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB and self.port is None else self.registry

    @property
    def manifest_ref(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def is_loopback(self) -> bool:
        name = self.host.strip("[]")
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def pinned(self, digest: str) -> str:
        """The reference as written plus the digest it resolved to (`host/repo:tag@sha256:...`)."""
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.registry}/{self.repository}{tag}@{digest}"


def parse_reference(text: str) -> ImageRef:
    """Parse `text`; a UsageError says what is wrong with it (no value in it is secret)."""
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise UsageError(f"{text!r}: the digest must be sha256:<64 hex> (or sha512:<128 hex>)")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise UsageError(f"{text!r}: {tag!r} is not a valid tag")
    parts = rest.split("/")
    host, port = DOCKER_HUB, None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, port = _host_port(parts[0], text)
        parts = parts[1:]
    if host in (DOCKER_HUB, "index.docker.io") and port is None:
        host = DOCKER_HUB
        if len(parts) == 1:
            parts = ["library", *parts]
    if not parts or not all(_COMPONENT.fullmatch(p) for p in parts):
        form = "[host[:port]/]name[:tag][@sha256:...], lowercase"
        raise UsageError(f"{text!r} is neither a file nor an image reference ({form})")
    return ImageRef(host, port, "/".join(parts), tag if tag or digest else "latest", digest)


def _host_port(text: str, whole: str) -> tuple[str, int | None]:
    host, port = text, None
    if text.startswith("["):
        close = text.find("]")
        host, rest = text[: close + 1], text[close + 1 :]
        port_text = rest[1:] if rest.startswith(":") else None
    else:
        host, _, port_text = text.partition(":")
        port_text = port_text or None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"{whole!r}: {port_text!r} is not a port")
        port = int(port_text)
    if not _HOST.fullmatch(host):
        raise UsageError(f"{whole!r}: {host!r} is not a registry host name")
    return host, port
