"""One file-mode policy for delivered secrets: the agent's `mode` and the CSI provider's `filePermission`."""

from __future__ import annotations

import re

from kinko.errors import InvalidInput

_OCTAL = re.compile(r"(?:0o)?([0-7]{1,4})")


def parse_mode(value: object, what: str) -> int | None:
    """None, a YAML int (YAML reads `0400` as octal) or an octal string "0400" / "0o400" / "400".

    `what` names the setting in messages ("object 'p': filePermission"). Only the syntax and the 0-0777 range are
    checked here; `secret_mode` applies the policy.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        match = _OCTAL.fullmatch(value.strip().lower())
        if match is None:
            raise InvalidInput(f"{what} {value[:32]!r} is not an octal mode like \"0400\"")
        value = int(match.group(1), 8)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise InvalidInput(f"{what} must be an octal mode between 0000 and 0777 (\"0400\")")
    return value


def secret_mode(mode: int, what: str) -> str | None:
    """Refuse execute bits and group/other write on a secret file; return a warning when group/other can read it.

    The caller decides how to show the warning (the agent logs it once per file at start-up, the CSI provider
    once per object in its log, since the kubelet writes the file and nobody is there to read a prompt).
    """
    if mode & 0o111:
        raise InvalidInput(f"{what} {mode:04o} has an execute bit; a secret file needs at most 0600 or 0444")
    if mode & 0o022:
        raise InvalidInput(f"{what} {mode:04o} lets group/other write the secret file; use 0400 (the default)")
    if mode & 0o044:
        return f"{what} {mode:04o} makes the secret file readable by group/other (the default is 0400)"
    return None
