"""`kinko scan`: exit codes, formats, output files, redaction, baselines; CliRunner plus a real subprocess."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinko.cli.scan import cli
from tests.scan.imagebuild import build_docker_archive
from tests.scan.tokens import github_token

KINKO = Path(sys.executable).parent / "kinko"


def _token() -> str:
    return github_token()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    token = _token()
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text(f'GITHUB_TOKEN = "{token}"\n')
    (root / "README.md").write_text("nothing to see\n")
    return root, token


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_dir_scan_fails_on_critical_and_redacts(repo: tuple[Path, str]) -> None:
    root, token = repo
    code, out, _ = _run("dir", str(root))
    assert code == 1
    assert "GitHub personal access token" in out and "app.py:1" in out
    assert token not in out and "ghp_********" in out


def test_show_secrets(repo: tuple[Path, str]) -> None:
    root, token = repo
    code, out, _ = _run("dir", str(root), "--show-secrets")
    assert code == 1 and token in out


def test_fail_on_threshold_and_clean_tree(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = repo
    (root / "app.py").write_text('DB_PASSWORD = "Zq8vN2kLp4Rt7wXy"\n')  # a high finding, not critical
    assert _run("dir", str(root), "--fail-on", "critical")[0] == 0
    assert _run("dir", str(root), "--fail-on", "high")[0] == 1
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.txt").write_text("hello\n")
    code, out, _ = _run("dir", str(clean), "-o", "json")
    assert code == 0 and json.loads(out)["findings"] == []


def test_json_and_sarif_outputs(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, token = repo
    code, out, _ = _run("dir", str(root), "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["findings"][0]["rule_id"] == "github-pat" and token not in out
    target = tmp_path / "report.sarif"
    code, out, _ = _run("dir", str(root), "-o", "sarif", "--output-file", str(target))
    assert code == 1 and out == ""
    sarif = json.loads(target.read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"][0]["ruleId"] == "github-pat"


def test_report_with_secrets_is_written_private(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, token = repo
    target = tmp_path / "report.json"
    _run("dir", str(root), "-o", "json", "--show-secrets", "--output-file", str(target))
    assert token in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_baseline_round_trip(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, token = repo
    baseline = tmp_path / "baseline.json"
    code, out, err = _run("dir", str(root), "--write-baseline", str(baseline))
    assert code == 0  # writing a baseline accepts today's findings ...
    assert "GitHub personal access token" in out  # ... which the report still lists
    assert f"baseline written to {baseline}: 1 finding(s) accepted" in err
    assert "KINKO_BASELINE_KEY" in err  # the key sits in the file: say so when writing it
    assert token not in baseline.read_text() and stat.S_IMODE(baseline.stat().st_mode) == 0o600
    code, out, _ = _run("dir", str(root), "--baseline", str(baseline), "-o", "json")
    assert code == 0 and json.loads(out)["findings"] == []
    (root / "new.py").write_text(f'T = "{_token()}"\n')
    code, out, _ = _run("dir", str(root), "--baseline", str(baseline), "-o", "json")
    assert code == 1 and [f["location"]["path"] for f in json.loads(out)["findings"]] == ["new.py"]


def test_a_baselined_test_key_copied_into_src_is_reported(tmp_path: Path) -> None:
    root, token = tmp_path / "repo", _token()
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "fixture.py").write_text(f'T = "{token}"\n')
    baseline = tmp_path / "baseline.json"
    assert _run("dir", str(root), "--write-baseline", str(baseline))[0] == 0
    (root / "tests" / "fixture.py").write_text(f'# moved down\n\nT = "{token}"\n')  # same file: still known
    assert _run("dir", str(root), "--baseline", str(baseline))[0] == 0
    (root / "src").mkdir()
    (root / "src" / "prod_config.yaml").write_text(f"token: {token}\n")
    code, out, _ = _run("dir", str(root), "--baseline", str(baseline), "-o", "json")
    assert code == 1 and [f["location"]["path"] for f in json.loads(out)["findings"]] == ["src/prod_config.yaml"]


def test_write_baseline_is_documented_as_accepting() -> None:
    help_text = " ".join(_run("dir", "--help")[1].split())
    assert "accept them" in help_text and "exit status is 0" in help_text


def test_text_output_to_a_pipe_is_not_wrapped(tmp_path: Path) -> None:
    """CliRunner's stdout is not a TTY: long paths and messages stay on one line, without colour codes."""
    deep = tmp_path / "a-rather-long-directory-name-for-the-service" / "configuration-for-the-production-env"
    deep.mkdir(parents=True)
    (deep / "settings-with-a-long-file-name-too.py").write_text(f'GITHUB_TOKEN = "{_token()}"\n')
    code, out, _ = _run("dir", str(tmp_path))
    where = "at a-rather-long-directory-name-for-the-service/configuration-for-the-production-env/" \
            "settings-with-a-long-file-name-too.py:1"
    assert code == 1 and where in out and len(where) > 120
    fix = [line for line in out.splitlines() if line.strip().startswith("fix:")]
    assert fix and all(line.rstrip().endswith(".") for line in fix)  # the sentence ends on its own line
    assert "\x1b[" not in out


def test_exclude_option(repo: tuple[Path, str]) -> None:
    root, _ = repo
    assert _run("dir", str(root), "--exclude", "*.py")[0] == 0


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert _run("dir", str(tmp_path / "missing"))[0] == 2
    assert _run("dir", str(tmp_path), "-o", "xml")[0] == 2
    assert _run("dir", str(tmp_path), "--fail-on", "urgent")[0] == 2


def test_scan_error_is_one_line_exit_3(tmp_path: Path) -> None:
    """A scan that failed exits 3 (like an incomplete one), never 1: 1 means "found something"."""
    bogus = tmp_path / "not-an-image.tar"
    bogus.write_bytes(b"this is not a tar archive at all" * 10)
    code, out, err = _run("image", str(bogus))
    assert code == 3 and out == ""
    assert err.startswith("error: scan_error: ") and err.count("\n") == 1


def test_bad_baseline_is_an_error(repo: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = repo
    bad = tmp_path / "b.json"
    bad.write_text("{}")
    code, _, err = _run("dir", str(root), "--baseline", str(bad))
    assert code == 3 and err.startswith("error: invalid_input: ")
    # --allow-incomplete accepts skipped parts, never a failed scan
    assert _run("dir", str(root), "--baseline", str(bad), "--allow-incomplete")[0] == 3


def test_image_seed_copy_then_rm(tmp_path: Path) -> None:
    token = _token()
    layers = [{"etc/os-release": b"NAME=test\n"}, {"root/bad-secret": f"{token}\n".encode()}, {"root/bad-secret": None}]
    history = ["ADD file:abc in /", "COPY secret /root/bad-secret", "RUN rm -f /root/bad-secret"]
    archive = build_docker_archive(tmp_path / "seed.tar", layers, history)
    code, out, _ = _run("image", str(archive), "-o", "json", "--workers", "1")
    assert code == 1 and token not in out
    hits = [f for f in json.loads(out)["findings"] if f["location"]["path"] == "root/bad-secret"]
    assert hits and hits[0]["location"]["status"] == "deleted" and hits[0]["location"]["layer_index"] == 1
    assert "COPY secret /root/bad-secret" in hits[0]["location"]["created_by"]
    text = _run("image", str(archive), "--workers", "1")[1]
    assert "deleted in layer 2, still recoverable" in text


def test_image_config_secret_and_no_config(tmp_path: Path) -> None:
    token = _token()
    archive = build_docker_archive(tmp_path / "env.tar", [{"a.txt": b"hi\n"}], ["COPY a.txt /"],
                                   config_env=[f"GITHUB_TOKEN={token}"])  # fmt: skip
    code, out, _ = _run("image", str(archive), "-o", "json", "--workers", "1")
    assert code == 1 and token not in out
    assert _run("image", str(archive), "--no-config", "--workers", "1")[0] == 0


def test_dockerfile_and_k8s_commands(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM alpine\nCOPY id_rsa /root/.ssh/id_rsa\nRUN rm /root/.ssh/id_rsa\n")
    code, out, _ = _run("dockerfile", str(dockerfile), "-o", "json")
    assert code in (0, 1) and json.loads(out)["findings"]
    manifest = tmp_path / "secret.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: Zq8vN2kLp4Rt7wXy\n"
    )
    code, out, _ = _run("k8s", str(manifest), "-o", "json")
    assert json.loads(out)["findings"] and "Zq8vN2kLp4Rt7wXy" not in out


def test_real_subprocess(repo: tuple[Path, str]) -> None:
    root, token = repo
    proc = subprocess.run([str(KINKO), "scan", "dir", str(root), "-o", "json"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["findings"][0]["rule_id"] == "github-pat"
    assert token not in proc.stdout and proc.stderr == ""  # no progress bar: stderr is not a TTY


def test_baseline_key_from_env_is_not_in_the_file(repo: tuple[Path, str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    root, _ = repo
    key = secrets.token_hex(32)
    monkeypatch.setenv("KINKO_BASELINE_KEY", key)
    baseline = tmp_path / "baseline.json"
    code, _, err = _run("dir", str(root), "--write-baseline", str(baseline))
    assert code == 0 and "note:" not in err  # the key stays out of the file: nothing to warn about
    assert key not in baseline.read_text() and '"env:KINKO_BASELINE_KEY"' in baseline.read_text()
    code, out, _ = _run("dir", str(root), "--baseline", str(baseline), "-o", "json")
    assert code == 0 and json.loads(out)["findings"] == []
    monkeypatch.delenv("KINKO_BASELINE_KEY")
    code, _, err = _run("dir", str(root), "--baseline", str(baseline))
    assert code == 3 and "KINKO_BASELINE_KEY is not set" in err


def test_write_baseline_help_explains_the_key_trade_off() -> None:
    help_text = " ".join(_run("dir", "--help")[1].split())
    assert "commit a baseline only with kinko_baseline_key set" in help_text.lower()
    assert "test guessed secrets offline" in help_text


@pytest.mark.parametrize("value", ["zz" * 32, "ab" * 31])
def test_a_bad_baseline_key_is_refused_without_echoing_it(
    repo: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    root, _ = repo
    monkeypatch.setenv("KINKO_BASELINE_KEY", value)
    code, out, err = _run("dir", str(root), "--write-baseline", str(tmp_path / "baseline.json"))
    assert code == 3 and "KINKO_BASELINE_KEY must be hex of at least 32 bytes" in err
    assert value not in out + err and not (tmp_path / "baseline.json").exists()


def _scan_subprocess(root: Path, **env: str) -> tuple[int, list[str]]:
    proc = subprocess.run([str(KINKO), "scan", "dir", str(root), "-o", "json"], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, **env})  # fmt: skip
    return proc.returncode, [f["rule_id"] for f in json.loads(proc.stdout)["findings"]]


def test_real_subprocess_keeps_compiled_rules_in_xdg_cache_home(repo: tuple[Path, str], tmp_path: Path) -> None:
    pytest.importorskip("hyperscan")
    root, _ = repo
    assert _scan_subprocess(root, XDG_CACHE_HOME=str(tmp_path / "xdg")) == (1, ["github-pat"])
    folder = tmp_path / "xdg" / "kinko"
    [entry] = folder.glob("*.hsdb")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(entry.stat().st_mode) == 0o600


@pytest.mark.parametrize("setting", [{"KINKO_SCAN_CACHE": "0"}, {"KINKO_SCAN_ENGINE": "keyword"}])
def test_real_subprocess_without_a_cache(repo: tuple[Path, str], tmp_path: Path, setting: dict[str, str]) -> None:
    """KINKO_SCAN_CACHE=0 keeps nothing; KINKO_SCAN_ENGINE=keyword compiles no hyperscan database to keep."""
    root, _ = repo
    assert _scan_subprocess(root, XDG_CACHE_HOME=str(tmp_path / "xdg"), **setting) == (1, ["github-pat"])
    assert not (tmp_path / "xdg").exists()
