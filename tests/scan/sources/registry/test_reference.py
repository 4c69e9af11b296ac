"""Image references parsed as Docker does, and registry credentials found as the docker CLI finds them."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from kinko.errors import ScanError, UsageError
from kinko.scan.sources.registry.auth import Credentials, load_credentials, parse_challenge
from kinko.scan.sources.registry.reference import parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "registry", "api", "repo", "ref"), [
    ("alpine", "docker.io", "registry-1.docker.io", "library/alpine", "latest"),
    ("bitnami/redis:7.2", "docker.io", "registry-1.docker.io", "bitnami/redis", "7.2"),
    ("ghcr.io/org/app/api:v1", "ghcr.io", "ghcr.io", "org/app/api", "v1"),
    ("localhost:5000/app", "localhost:5000", "localhost:5000", "app", "latest"),
    (f"127.0.0.1:5000/team/app:1@{DIGEST}", "127.0.0.1:5000", "127.0.0.1:5000", "team/app", DIGEST),
    (f"registry.example/app@{DIGEST}", "registry.example", "registry.example", "app", DIGEST),
    ("[::1]:5000/app:x", "[::1]:5000", "[::1]:5000", "app", "x"),
])  # fmt: skip
def test_references(text: str, registry: str, api: str, repo: str, ref: str) -> None:
    parsed = parse_reference(text)
    assert (parsed.registry, parsed.api_host, parsed.repository, parsed.manifest_ref) == (registry, api, repo, ref)


def test_loopback_and_pinned_name() -> None:
    assert parse_reference("localhost:5000/a").is_loopback and parse_reference("[::1]:5/a").is_loopback
    assert not parse_reference("ghcr.io/a").is_loopback
    assert parse_reference("ghcr.io/a:1").pinned(DIGEST) == f"ghcr.io/a:1@{DIGEST}"


@pytest.mark.parametrize("text", ["UPPER/case", "app@sha256:short", "host:99999/app", "a/b:bad tag", "", "a//b"])
def test_bad_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_reference(text)


def test_challenges() -> None:
    bearer = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",scope="a:b:pull"')
    assert bearer is not None and bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.example/token", "service": "registry.example", "scope": "a:b:pull"}
    basic = parse_challenge('Basic realm="Registry Realm"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("Negotiate") is None


def _config(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


def test_credentials_from_auths(tmp_path: Path) -> None:
    auth = base64.b64encode(b"bot:pa:ss").decode()
    config = _config(tmp_path, {"auths": {"https://index.docker.io/v1/": {"auth": auth},
                                          "ghcr.io": {"username": "u", "password": "p"}}})  # fmt: skip
    assert load_credentials(parse_reference("alpine"), config) == Credentials("bot", "pa:ss")
    assert load_credentials(parse_reference("ghcr.io/x"), config) == Credentials("u", "p")
    assert load_credentials(parse_reference("quay.io/x"), config) is None
    assert load_credentials(parse_reference("quay.io/x"), tmp_path / "missing.json") is None
    assert "pa:ss" not in repr(Credentials("bot", "pa:ss"))


def test_a_malformed_config_is_an_error_that_quotes_nothing(tmp_path: Path) -> None:
    config = _config(tmp_path, {"auths": {"ghcr.io": {"auth": "%%not-base64-s3cret%%"}}})
    with pytest.raises(ScanError) as info:
        load_credentials(parse_reference("ghcr.io/x"), config)
    assert "s3cret" not in str(info.value)


def test_credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`credHelpers` runs `docker-credential-<name> get` (a real executable on PATH) with the server on stdin."""
    helper = tmp_path / "bin" / "docker-credential-kinkotest"
    helper.parent.mkdir()
    answer = json.dumps({"ServerURL": "ghcr.io", "Username": "helper-user", "Secret": "helper-secret"})
    helper.write_text(f'#!/bin/sh\nread server\n[ "$server" = "ghcr.io" ] || exit 1\necho \'{answer}\'\n')
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    config = _config(tmp_path, {"credHelpers": {"ghcr.io": "kinkotest"}, "auths": {"quay.io": {"auth": "eDp5"}}})
    assert load_credentials(parse_reference("ghcr.io/x"), config) == Credentials("helper-user", "helper-secret")
    assert load_credentials(parse_reference("quay.io/x"), config) == Credentials("x", "y")
    missing = _config(tmp_path, {"credsStore": "nosuchhelper"})
    with pytest.raises(ScanError, match="not on PATH"):
        load_credentials(parse_reference("ghcr.io/x"), missing)
