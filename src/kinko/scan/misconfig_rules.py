"""The misconfiguration rules of the Dockerfile and Kubernetes sources: ids, titles, severities and fixes.

Secret findings come from the detector's YAML rules; these are the sources' own structural rules. A rule id
may have variants (another title or severity for one case of the same problem); each is a `MisconfigRule`
here, so every rule's wording lives in one place. `secret_name` is the one secret-looking-name test both
rule sets apply (ARG/ENV names, container env names).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass

from kinko.scan.interface import Finding, FindingKind, Location, Severity


@dataclass(frozen=True)
class MisconfigRule:
    id: str
    title: str
    severity: Severity
    fix: str
    kind: FindingKind = FindingKind.MISCONFIG

    def finding(self, location: Location, message: str, *, secret: str = "", **fix_values: str) -> Finding:
        """A finding of this rule; `fix_values` fill the fix's placeholders (`{name}`: the variable it names)."""
        return Finding(
            self.id, self.title, self.severity, self.kind, location,
            secret=secret, message=message, fix=self.fix.format(**fix_values),
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------- Dockerfile

MOUNT_FIX = (
    "Do not copy credentials into the image: use `RUN --mount=type=secret,id=<id>` "
    "(`docker build --secret id=<id>,src=FILE`) so the file exists only while that RUN executes."
)
ADD_REMOTE_URL = MisconfigRule(
    "dockerfile-add-remote-url", "ADD of a remote URL without --checksum", Severity.MEDIUM,
    "COPY a file you verified, or pin it: `ADD --checksum=sha256:<digest> <url> <dest>`.",
)  # fmt: skip
CREDENTIAL_FILE_FINAL_STAGE = MisconfigRule(
    "dockerfile-credential-file-final-stage", "Credential file copied into the final image", Severity.HIGH, MOUNT_FIX
)
#: Any file copied then deleted; HIGH when it looks like a credential and its stage ships in the image.
COPY_THEN_RM = MisconfigRule(
    "dockerfile-copy-then-rm", "File copied then deleted: still in a lower layer", Severity.MEDIUM, MOUNT_FIX
)
COPY_THEN_RM_SECRET = dataclasses.replace(COPY_THEN_RM, severity=Severity.HIGH)
#: The fix names the variable: `SECRET_ARG.finding(..., name=...)`.
SECRET_ARG = MisconfigRule(
    "dockerfile-secret-arg-env", "Secret-looking ARG name", Severity.HIGH,
    "Pass secrets with `RUN --mount=type=secret,id=<id>,env={name}` instead of ARG/ENV.",
)  # fmt: skip
SECRET_ENV = dataclasses.replace(SECRET_ARG, title="Secret-looking ENV name")
RUN_INLINE_CREDENTIALS = MisconfigRule(
    "dockerfile-run-inline-credentials", "Credential written inline in a RUN command", Severity.HIGH,
    "Use `RUN --mount=type=secret,id=<id>,env=VAR ...` and reference $VAR, or read /run/secrets/<id>.",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------- Kubernetes

FILES_FIX = "Keep secrets out of manifests: store them in kinko (or an external secret store) and sync at deploy time."
MODE_FIX = "Set `defaultMode: 0400` (JSON: 256) on the secret volume so only the owner can read the files."
STRINGDATA_PLAINTEXT = MisconfigRule(
    "k8s-secret-stringdata-plaintext", "Secret value in plaintext stringData", Severity.HIGH, FILES_FIX
)
INVALID_BASE64 = MisconfigRule(
    "k8s-secret-invalid-base64", "Secret data is not valid base64", Severity.LOW, "Base64-encode data values."
)
BASE64_NOT_ENCRYPTION = MisconfigRule(
    "k8s-secret-base64-not-encryption", "Secret data is only base64-encoded", Severity.MEDIUM, FILES_FIX
)
INVALID_SECRET_TYPE = MisconfigRule(
    "k8s-secret-invalid-type", "Secret does not satisfy its type", Severity.LOW,
    "Add the keys the type requires, or use type Opaque.",
)  # fmt: skip
CONFIGMAP_SECRET = MisconfigRule(
    "k8s-configmap-secret", "Secret stored in a ConfigMap", Severity.HIGH, FILES_FIX, FindingKind.SECRET
)
SECRET_VOLUME_MODE = MisconfigRule(
    "k8s-secret-volume-mode", "Secret volume readable by group/others", Severity.MEDIUM, MODE_FIX
)
SECRET_VOLUME_MODE_INVALID = dataclasses.replace(
    SECRET_VOLUME_MODE, title="Secret volume mode is invalid", severity=Severity.LOW
)
#: The kubelet ORs 0440 into read-only volume files when the pod sets fsGroup (volume_linux.go).
SECRET_VOLUME_MODE_FSGROUP = dataclasses.replace(
    SECRET_VOLUME_MODE, title="Secret volume made group-readable by fsGroup", severity=Severity.LOW,
    fix="Drop fsGroup if nothing needs it, or accept group read for that group only.",
)  # fmt: skip
ENV_SECRETKEYREF = MisconfigRule(
    "k8s-env-secretkeyref", "Secret passed as an environment variable", Severity.LOW,
    "Mount the secret as a file (secret volume, defaultMode 0400) and read it from the application.",
)  # fmt: skip
ENV_LITERAL_SECRET = MisconfigRule(
    "k8s-env-literal-secret", "Literal secret in a container env var", Severity.HIGH,
    "Use a Secret (mounted as a file) instead. " + FILES_FIX, FindingKind.SECRET,
)  # fmt: skip

# ---------------------------------------------------------------------------------------------- secret names

_SECRET_TOKENS = frozenset(
    [
        "password",
        "passwd",
        "pword",
        "pwd",
        "pass",
        "secret",
        "secrets",
        "token",
        "apikey",
        "credential",
        "credentials",
        "privatekey",
    ]
)
_SECRET_PAIRS = (("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("client", "secret"))
_NOT_SECRET_LAST = frozenset({"file", "path", "dir", "url", "name", "length", "ttl", "expiry", "type"})


def secret_name(name: str) -> bool:
    """ARG/ENV/env names that look secret, tokenised like BuildKit's SecretsUsedInArgOrEnv check."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    tokens = [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]
    if not tokens or tokens[-1] in _NOT_SECRET_LAST:
        return False
    if any(t in _SECRET_TOKENS for t in tokens):
        return True
    pairs = set(itertools.pairwise(tokens))
    return any(pair in pairs for pair in _SECRET_PAIRS)
