"""The kube-apiserver EncryptionConfiguration that sends Secrets through the kinko KMS v2 plugin."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kinko.errors import UsageError

DEFAULT_SOCKET = "/var/run/kinko/kms.sock"
DEFAULT_NAME = "kinko"
_RESOURCE = re.compile(r"[a-z0-9*][a-z0-9.*-]*")
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def encryption_config(*, socket: str = DEFAULT_SOCKET, name: str = DEFAULT_NAME, timeout: str = "3s",
                      resources: Sequence[str] = ("secrets",), keep_identity: bool = True) -> dict[str, Any]:
    """kms v2 first (new writes are encrypted with it); `identity` after it, so objects written before
    encryption was turned on stay readable until they are rewritten (docs/kms.md)."""
    if not socket.startswith("/"):
        raise UsageError("--socket must be an absolute path (the endpoint is unix://<path>)")
    if not _NAME.fullmatch(name):
        raise UsageError("--name must be a DNS label: the API server keys stored data by it, never change it")
    if not re.fullmatch(r"\d+(ms|s|m)", timeout):
        raise UsageError("--timeout must be a duration such as 3s")
    if not resources or not all(_RESOURCE.fullmatch(r) for r in resources):
        raise UsageError("--resource must name resources such as secrets or configmaps")
    providers: list[dict[str, Any]] = [{"kms": {"apiVersion": "v2", "name": name, "endpoint": f"unix://{socket}",
                                                "timeout": timeout}}]
    if keep_identity:
        providers.append({"identity": {}})
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resources), "providers": providers}]}
