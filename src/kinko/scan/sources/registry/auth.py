"""Registry credentials from a Docker client config (`~/.docker/config.json`) and the auth challenges of the
distribution spec (`WWW-Authenticate: Basic ...` / `Bearer realm=...,service=...,scope=...`).

Credentials are looked up the way the docker CLI does: `credHelpers[host]`, else `credsStore`, run as
`docker-credential-<name> get` with the server name on stdin; else `auths[host]` (`auth` = base64 of
`user:password`, or `username`/`password`, or an `identitytoken` for the token endpoint's OAuth2 refresh grant).
Docker Hub is found under `https://index.docker.io/v1/` as well. Nothing here prints or logs a credential.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinko.errors import ScanError
from kinko.scan.sources.registry.reference import DOCKER_HUB, ImageRef

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # an OAuth2 refresh token (docker login with SSO)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a WWW-Authenticate header; None when there is none kinko can answer."""
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}
    return Challenge(scheme, params)


def load_credentials(ref: ImageRef, config_path: Path | None) -> Credentials | None:
    """The caller's credentials for `ref`'s registry from a Docker config file; None: pull anonymously."""
    if config_path is None or not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScanError(f"{config_path}: not a readable Docker config ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise ScanError(f"{config_path}: not a Docker config (not a JSON object)")
    keys = _HUB_KEYS if ref.host == DOCKER_HUB else (ref.registry, f"https://{ref.registry}", f"http://{ref.registry}")
    helpers = config.get("credHelpers")
    helper = next((helpers[k] for k in keys if isinstance(helpers, dict) and isinstance(helpers.get(k), str)), None)
    if helper is None and isinstance(config.get("credsStore"), str):
        helper = config["credsStore"]
    if helper:
        found = _from_helper(helper, keys[0])
        if found is not None:
            return found
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if isinstance(entry, dict) and _normal(key) in {_normal(k) for k in keys}:
            return _from_entry(entry, config_path)
    return None


def _normal(key: str) -> str:
    key = key.removeprefix("https://").removeprefix("http://")
    return key.split("/", 1)[0]


def _from_entry(entry: dict[str, Any], config_path: Path) -> Credentials | None:
    token = entry.get("identitytoken")
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ScanError(f"{config_path}: an `auth` entry is not base64 of user:password") from None
        if not sep:
            raise ScanError(f"{config_path}: an `auth` entry is not base64 of user:password")
        return Credentials(user, password, token if isinstance(token, str) else "")
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str):
        return Credentials(name, secret, token if isinstance(token, str) else "")
    if isinstance(token, str) and token:
        return Credentials(identity_token=token)
    return None


def _from_helper(name: str, server: str) -> Credentials | None:
    """`docker-credential-<name> get`; None when the helper has nothing for this server."""
    program = shutil.which(f"docker-credential-{name}")
    if program is None:
        raise ScanError(f"the Docker config names credential helper {name!r}: docker-credential-{name} is not on PATH")
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=30,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScanError(f"credential helper docker-credential-{name} failed ({type(exc).__name__})") from None
    if done.returncode != 0:
        return None  # "credentials not found in native keychain": pull anonymously
    try:
        doc = json.loads(done.stdout)
        user, secret = str(doc["Username"]), str(doc["Secret"])
    except (ValueError, KeyError, TypeError):
        raise ScanError(f"credential helper docker-credential-{name} gave no Username/Secret JSON") from None
    return Credentials(identity_token=secret) if user == "<token>" else Credentials(user, secret)
