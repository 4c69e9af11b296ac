"""DirectorySource on real trees: ignores, symlinks, special files, big and binary files, dispatch, dedupe."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from kinko.errors import ScanError
from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, FindingKind, ScanResult
from kinko.scan.sources import directory
from kinko.scan.sources.directory import DirectorySource, is_dockerfile

PG_URL = "postgresql://app:Sup3rS3cretPw9@db.internal:5432/app"
LEAK = f'DATABASE_URL = "{PG_URL}"\n'


def run(root: Path, excludes: tuple[str, ...] = ()) -> tuple[list[Finding], ScanResult]:
    result = ScanResult()
    return list(DirectorySource(root, excludes=excludes).scan(default_detector(), result)), result


def secret_paths(findings: list[Finding]) -> list[str]:
    return sorted({f.location.path for f in findings if f.kind is FindingKind.SECRET})


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_gitignore_root_nested_negation_and_excludes(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.log\nbuild/\n/only-root.txt\n")
    write(tmp_path, "sub/.gitignore", "!keep.log\nlocal.cfg\n")
    for rel in ["app.py", "x.log", "sub/keep.log", "sub/drop.log", "build/out.py", "only-root.txt",
                "sub/only-root.txt", "sub/local.cfg", "other/local.cfg", "vendor/lib.py", "docs/a.md"]:  # fmt: skip
        write(tmp_path, rel, LEAK)
    write(tmp_path, ".git/config", LEAK)
    findings, result = run(tmp_path, excludes=("vendor/", "*.md"))
    assert secret_paths(findings) == ["app.py", "other/local.cfg", "sub/keep.log", "sub/only-root.txt"]
    assert result.artifacts == [str(tmp_path)] and result.bytes_scanned > 0


def test_symlinks_are_never_followed_and_special_files_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "secret.txt", LEAK)
    repo = tmp_path / "repo"
    write(repo, "ok.txt", "nothing here\n")
    os.symlink(outside / "secret.txt", repo / "link.txt")
    os.symlink(outside, repo / "linkdir")
    os.mkfifo(repo / "pipe")
    start = time.monotonic()
    findings, _ = run(repo)
    assert time.monotonic() - start < 10  # reading the FIFO would block forever
    assert secret_paths(findings) == []


def test_binary_files_are_scanned_raw(tmp_path: Path) -> None:
    write(tmp_path, "blob.bin", os.urandom(2048) + b"\x00\x01" + PG_URL.encode() + b"\x00" + os.urandom(512))
    findings, _ = run(tmp_path)
    assert secret_paths(findings) == ["blob.bin"]


def test_big_files_are_scanned_in_windows_with_correct_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(directory, "MAX_WHOLE_FILE", 64 * 1024)
    monkeypatch.setattr(directory, "CHUNK", 32 * 1024)
    monkeypatch.setattr(directory, "OVERLAP", 4096)
    filler = "filler line with nothing secret in it at all\n"
    head = filler * 700  # the secret straddles the first 32 KiB window boundary
    text = head + LEAK + filler * 3000 + LEAK
    write(tmp_path, "huge.txt", text)
    findings, result = run(tmp_path)
    lines = sorted({f.location.line for f in findings if f.kind is FindingKind.SECRET})
    assert lines == [701, 3702]
    assert result.bytes_scanned == len(text)


def test_dockerfiles_and_manifests_get_their_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        "Dockerfile",
        "FROM gcr.io/distroless/static\nCOPY secret /root/bad-secret\nRUN rm -f /root/bad-secret",
    )
    write(tmp_path, "docker/api.dockerfile", "FROM a\nADD https://example.com/x /x\n")
    write(tmp_path, "Containerfile.dev", "FROM a\nENV API_TOKEN=abc\n")
    write(tmp_path, "deploy/secret.yaml", f"apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\ndata:\n  url: "
                                          f"{base64.b64encode(PG_URL.encode()).decode()}\n")  # fmt: skip
    write(tmp_path, "config/settings.yaml", "volumes:\n  - secret: {defaultMode: 0644}\n")  # not k8s
    findings, _ = run(tmp_path)
    got = sorted((f.rule_id, f.location.path, f.location.line) for f in findings if f.kind is FindingKind.MISCONFIG)
    assert got == [
        ("dockerfile-add-remote-url", "docker/api.dockerfile", 2),
        ("dockerfile-copy-then-rm", "Dockerfile", 2),
        ("dockerfile-secret-arg-env", "Containerfile.dev", 2),
        ("k8s-secret-base64-not-encryption", "deploy/secret.yaml:Secret/default/db:data.url", 5),
    ]
    decoded = [f for f in findings if f.kind is FindingKind.SECRET]
    assert [f.location.path for f in decoded] == ["deploy/secret.yaml:Secret/default/db:data.url"]


def test_same_secret_on_same_line_is_reported_once(tmp_path: Path) -> None:
    manifest = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  DATABASE_URL: {PG_URL}\n  OTHER: {PG_URL}\n"
    )
    write(tmp_path, "cm.yaml", manifest)
    findings, _ = run(tmp_path)
    per_line = sorted((f.location.line, f.rule_id) for f in findings)
    assert per_line == [(5, "k8s-configmap-secret"), (6, "k8s-configmap-secret")]


def test_kinko_allow_and_broken_dockerfile_warning(tmp_path: Path) -> None:
    write(tmp_path, "a.py", f'url = "{PG_URL}"  # kinko:allow\nurl2 = "{PG_URL}"\n')
    write(tmp_path, "Dockerfile", "FROM a\nNOT_AN_INSTRUCTION x\n")
    write(tmp_path, "k.yaml", "apiVersion: v1\nkind: Pod\nspec: [unclosed\n")
    findings, result = run(tmp_path)
    assert [(f.location.path, f.location.line) for f in findings if f.kind is FindingKind.SECRET] == [("a.py", 2)]
    messages = [w.message for w in result.warnings]
    assert any(
        m.startswith("Dockerfile: not parsed as a Dockerfile") and ":2: unknown instruction" in m for m in messages
    )
    assert any(m.startswith("k.yaml: document 0: invalid YAML") for m in messages)


def test_a_file_is_scanned_and_anything_else_refused(tmp_path: Path) -> None:
    write(tmp_path, "f.txt", "x")
    run(tmp_path / "f.txt")  # a file is scanned as itself (pre-commit passes files)
    with pytest.raises(ScanError, match="not a file or directory"):
        run(tmp_path / "missing")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Dockerfile", True), ("dockerfile.prod", True), ("api.Dockerfile", True), ("Containerfile", True),
     ("Dockerfiles.md", False), ("docker-compose.yml", False),
     # source code about Dockerfiles is not a Dockerfile (kinko's own scan/sources/dockerfile.py)
     ("dockerfile.py", False), ("Dockerfile.go", False), ("containerfile.ts", False), ("dockerfile.sh", False),
     ("Dockerfile.dev", True), ("Containerfile.alpine", True), ("Dockerfile.j2", True)],
)  # fmt: skip
def test_is_dockerfile(name: str, expected: bool) -> None:
    assert is_dockerfile(name) is expected


def test_limits_and_unreadable_files_make_the_scan_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "app.py", LEAK)
    write(tmp_path, "k8s/bomb.yaml", "apiVersion: v1\nkind: Pod\nspec: &s\n  x: *s\n")
    write(tmp_path, "k8s/bad.yaml", "apiVersion: v1\nkind: Pod\nspec: [unclosed\n")  # not YAML: a warning only
    write(tmp_path, "Dockerfile", "FROM scratch\n" + "# pad\n" * 800_000)
    write(tmp_path, "locked.env", LEAK)
    write(tmp_path, "gone/x.txt", "x")
    real_read, real_scandir = Path.read_bytes, os.scandir

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.env":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    def scandir(path: str) -> object:
        if str(path).endswith("gone"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(os, "scandir", scandir)
    findings, result = run(tmp_path)
    assert secret_paths(findings) == ["app.py"]
    assert sorted(w.message for w in result.incomplete) == [
        "Dockerfile: larger than 4194304 bytes; its Dockerfile rules were not checked",
        "gone/: cannot list directory: Permission denied; its files were not scanned",
        "k8s/bomb.yaml: document 0: expands to more than 200000 nodes or 64 levels (YAML alias bomb or cycle?); "
        "skipped",
        "locked.env: cannot read: Permission denied; not scanned",
    ]
    assert {w.artifact for w in result.incomplete} == {str(tmp_path)}
