"""`kinko scan image REF` against a real registry (docker-registry on loopback) holding images pushed by skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scan.imagebuild import build_docker_archive, build_oci_layout
from tests.scan.registry import Mode, Registry, running_registry
from tests.scan.tokens import github_token

KINKO = Path(sys.executable).parent / "kinko"


def _leaky_image(folder: Path, token: str) -> Path:
    """COPY secret + RUN rm (the secret stays in layer 1), and a token in the config's Env."""
    layers = [{"etc/os-release": b"NAME=test\n"}, {"root/bad-secret": f"{token}\n".encode()}, {"root/bad-secret": None}]
    history = ["ADD file:abc in /", "COPY secret /root/bad-secret", "RUN rm -f /root/bad-secret"]
    return build_docker_archive(folder / "leaky.tar", layers, history, config_env=[f"GITHUB_TOKEN={token}"])


def _scan(ref: str, tmp: Path, *args: str, docker_config: Path | None = None) -> subprocess.CompletedProcess[str]:
    temp = tmp / "tmpdir"
    temp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(temp), "DOCKER_CONFIG": str(docker_config or tmp / "no-docker-config")}
    cmd = [str(KINKO), "scan", "image", ref, "-o", "json", "--workers", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize("mode", ["anonymous", "basic", "bearer"])
def test_pull_and_scan_every_layer(tmp_path: Path, mode: Mode) -> None:
    token = github_token()
    with running_registry(tmp_path / "registry", mode) as registry:
        digest = registry.push(_leaky_image(tmp_path, token), "team/app:1.0")
        config = registry.docker_config(tmp_path / "docker") if registry.user else None
        done = _scan(f"{registry.host}/team/app:1.0", tmp_path, docker_config=config)
    assert done.returncode == 1, done.stderr
    assert token not in done.stdout + done.stderr
    assert not registry.password or registry.password not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    pinned = f"{registry.host}/team/app:1.0@{digest}"
    assert report["summary"]["artifacts"] == [pinned]
    found = {(f["location"]["path"], f["location"].get("status"), f["location"].get("layer_index"))
             for f in report["findings"]}  # fmt: skip
    assert ("root/bad-secret", "deleted", 1) in found
    assert any(path.startswith("config:Env") for path, _, _ in found)
    assert all(f["location"]["artifact"] == pinned for f in report["findings"])
    assert not any((tmp_path / "tmpdir").iterdir()), "the pulled layers must not outlive the scan"


def test_pinned_digest_and_wrong_digest(tmp_path: Path) -> None:
    token = github_token()
    with running_registry(tmp_path / "registry") as registry:
        digest = registry.push(_leaky_image(tmp_path, token), "app:2")
        assert _scan(f"{registry.host}/app@{digest}", tmp_path).returncode == 1
        other = "sha256:" + "0" * 64
        done = _scan(f"{registry.host}/app@{other}", tmp_path)
    assert done.returncode == 3 and "not found" in done.stderr and done.stdout == ""


def test_oci_image_with_gzip_layers(tmp_path: Path) -> None:
    token = github_token()
    layout = build_oci_layout(tmp_path / "oci", [{"srv/.env": f"GITHUB_TOKEN={token}\n".encode()}],
                              ["COPY .env /srv/"], as_tar=False)  # fmt: skip
    with running_registry(tmp_path / "registry") as registry:
        registry.push(layout, "oci/app:latest", fmt="oci")
        done = _scan(f"{registry.host}/oci/app", tmp_path)  # no tag: latest
    assert done.returncode == 1, done.stderr
    hits = [f for f in json.loads(done.stdout)["findings"] if f["location"]["path"] == "srv/.env"]
    assert hits and hits[0]["location"]["status"] == "present"


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_wrong_or_missing_login_fails_with_3(tmp_path: Path, mode: Mode) -> None:
    with running_registry(tmp_path / "registry", mode) as registry:
        registry.push(_leaky_image(tmp_path, github_token()), "app:1")
        wrong = registry.docker_config(tmp_path / "docker", password="not-the-password")
        bad = _scan(f"{registry.host}/app:1", tmp_path, docker_config=wrong)
        anonymous = _scan(f"{registry.host}/app:1", tmp_path)
    for done in (bad, anonymous):
        assert done.returncode == 3 and done.stdout == ""
        assert done.stderr.startswith("error: scan_error: ") and "not-the-password" not in done.stderr


def test_unreachable_registry_and_bad_reference(tmp_path: Path) -> None:
    registry = Registry("127.0.0.1:9")  # discard port: nothing listens
    done = _scan(f"{registry.host}/app:1", tmp_path)
    assert done.returncode == 3 and "unreachable" in done.stderr
    assert _scan("Not/A/Reference", tmp_path).returncode == 2
    assert _scan(str(tmp_path / "missing.tar"), tmp_path).returncode == 2


def test_an_image_index_gives_the_platform_image(tmp_path: Path) -> None:
    """skopeo --all keeps the index: the pull goes index -> manifest; a missing platform is a clear failure."""
    token = github_token()
    layout = build_oci_layout(tmp_path / "oci", [{"srv/.env": f"GITHUB_TOKEN={token}\n".encode()}],
                              ["COPY .env /srv/"], as_tar=False, nested_index=True)  # fmt: skip
    with running_registry(tmp_path / "registry") as registry:
        registry.push(layout, "multi/app:1", fmt="oci", extra=("--all",))
        done = _scan(f"{registry.host}/multi/app:1", tmp_path)
        other = _scan(f"{registry.host}/multi/app:1", tmp_path, "--platform", "linux/arm64")
    assert done.returncode == 1, done.stderr
    assert [f["location"]["path"] for f in json.loads(done.stdout)["findings"]] == ["srv/.env"]
    assert other.returncode == 3 and "no linux/arm64 image" in other.stderr
