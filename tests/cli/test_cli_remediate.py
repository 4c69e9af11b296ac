"""`kinko remediate`: a real scan report (image, Dockerfile) to a plan; --apply imports values with cas=0 into a
real key-file vault and never prints them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.cli.conftest import KINKO, run
from tests.scan.imagebuild import build_docker_archive
from tests.scan.tokens import github_token


def _kinko(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KINKO, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120,
                          check=False)  # fmt: skip


def _report(tmp_path: Path, env: dict[str, str], token: str) -> Path:
    layers = [{"etc/os-release": b"x\n"}, {"root/bad-secret": f"{token}\n".encode()}, {"root/bad-secret": None}]
    history = ["ADD file:abc in /", "COPY secret /root/bad-secret", "RUN rm -f /root/bad-secret"]
    archive = build_docker_archive(tmp_path / "img.tar", layers, history)
    report = tmp_path / "report.json"
    done = _kinko(env, "scan", "image", str(archive), "-o", "json", "--show-secrets", "--output-file", str(report),
                  "--workers", "1")  # fmt: skip
    assert done.returncode == 1, done.stderr
    return report


def test_plan_and_apply(keyfile_env: dict[str, str], tmp_path: Path) -> None:
    token = github_token()
    report = _report(tmp_path, keyfile_env, token)
    first = _kinko(keyfile_env, "remediate", str(report), "--apply", "-o", "json")
    assert first.returncode == 0, first.stderr
    assert token not in first.stdout + first.stderr
    plan = json.loads(first.stdout)
    assert [i["vault_path"] for i in plan["import"]] == ["imported/bad-secret/github-pat"]
    assert plan["import"][0]["applied"] == "imported"
    assert plan["rotate"] and "deleted by a later layer but still recoverable" in plan["rotate"][0]["why"]
    got = run(keyfile_env, "secret", "get", "imported/bad-secret/github-pat", "-o", "json")
    assert got.exit_code == 0 and token in got.stdout
    again = json.loads(_kinko(keyfile_env, "remediate", str(report), "--apply", "-o", "json").stdout)
    assert again["import"][0]["applied"] == "skipped: the path exists (never overwritten)"


def test_redacted_report_plans_without_importing(keyfile_env: dict[str, str], tmp_path: Path) -> None:
    token = github_token()
    archive = build_docker_archive(tmp_path / "img.tar", [{"app/.env": f"GITHUB_TOKEN={token}\n".encode()}],
                                   ["COPY .env /app/"])  # fmt: skip
    report = tmp_path / "r.json"
    report.write_text(_kinko(keyfile_env, "scan", "image", str(archive), "-o", "json", "--workers", "1").stdout)
    done = _kinko(keyfile_env, "remediate", str(report), "--apply", "--role", "app", "--address",
                  "https://kinko.kinko.svc:8200")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "skipped: the report holds no value" in done.stdout and "kind: SecretProviderClass" in done.stdout
    assert "readOnly: true" in done.stdout and token not in done.stdout


def test_dockerfile_copy_then_rm_gets_a_mount_step(tmp_path: Path, local_env: dict[str, str]) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine\nCOPY id_rsa /root/.ssh/id_rsa\nRUN git clone x && rm /root/.ssh/id_rsa\n")
    report = tmp_path / "r.json"
    report.write_text(_kinko(local_env, "scan", "dockerfile", str(dockerfile), "-o", "json").stdout)
    plan = json.loads(_kinko(local_env, "remediate", str(report), "-o", "json").stdout)
    assert plan["dockerfile"] and "RUN --mount=type=secret" in plan["dockerfile"][0]["instead"]


def test_not_a_report(local_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    done = _kinko(local_env, "remediate", str(bad))
    assert done.returncode == 1 and done.stderr.startswith("error: invalid_input: ")
