"""`kinko scan` on an incomplete scan: exit 3 with the reason, `--allow-incomplete`, and findings still winning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kinko.cli.scan import cli
from tests.scan.imagebuild import build_oci_layout

BOMB = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata: &d\n  x: *d\n"
DEEP = "apiVersion: v1\nkind: Pod\nspec: " + "[" * 50_000 + "]" * 50_000 + "\n"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("text", "reason"), [(BOMB, "(YAML alias bomb or cycle?); skipped"),
                                              (DEEP, "nested too deeply (over 64 levels); skipped")])  # fmt: skip
def test_hostile_manifest_exits_3_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(text)
    code, out, err = _run("k8s", str(manifest))
    assert code == 3
    assert f"incomplete: {manifest}: {manifest}: document 0: " in out and reason in out
    assert out.endswith("scan incomplete: 1 part(s) not scanned (`incomplete:` above)\n")
    assert "scan incomplete: 1 part(s) not scanned" in err and "--allow-incomplete" in err
    code, out, err = _run("k8s", str(manifest), "--allow-incomplete")
    assert code == 0 and reason in out and err == ""


def test_findings_win_over_an_incomplete_scan(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text('DB_PASSWORD = "Zq8vN2kLp4Rt7wXy"\n')  # a high finding
    (tmp_path / "bomb.yaml").write_text(BOMB)
    code, out, err = _run("dir", str(tmp_path), "-o", "json")
    assert code == 1 and json.loads(out)["incomplete"][0]["message"].startswith("bomb.yaml: document 0: expands")
    assert "scan incomplete" not in err  # exit 1 is about the findings; the report lists the skipped part
    assert _run("dir", str(tmp_path), "--allow-incomplete")[0] == 1
    assert _run("dir", str(tmp_path), "--fail-on", "critical")[0] == 3  # below --fail-on: incomplete decides


def _image_missing_a_layer(tmp_path: Path) -> Path:
    oci = build_oci_layout(tmp_path / "oci", [{"a.txt": b"hello\n"}, {"b.txt": b"world\n"}], ["A", "B"], as_tar=False)
    index = json.loads((oci / "index.json").read_bytes())
    manifest = json.loads((oci / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    (oci / "blobs/sha256" / manifest["layers"][1]["digest"].split(":")[1]).unlink()
    return oci


def test_image_with_a_missing_layer_in_every_format(tmp_path: Path) -> None:
    oci = _image_missing_a_layer(tmp_path)
    code, out, _ = _run("image", str(oci), "--workers", "1")
    assert code == 3 and "incomplete: " in out and "is missing from the archive; not scanned" in out
    code, out, _ = _run("image", str(oci), "--workers", "1", "-o", "json")
    assert code == 3 and "is missing from the archive" in json.loads(out)["incomplete"][0]["message"]
    code, out, _ = _run("image", str(oci), "--workers", "1", "-o", "sarif", "--allow-incomplete")
    invocation = json.loads(out)["runs"][0]["invocations"][0]
    assert code == 0 and invocation["executionSuccessful"] is False
    assert [n["level"] for n in invocation["toolExecutionNotifications"]] == ["error", "warning"]


def test_a_complete_scan_says_nothing_about_completeness(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello\n")
    code, out, err = _run("dir", str(tmp_path))
    assert code == 0 and "incomplete" not in out + err
    assert "incomplete" not in _run("dir", str(tmp_path), "-o", "json")[1]


@pytest.mark.parametrize("command", ["image", "dockerfile", "k8s", "dir"])
def test_every_subcommand_takes_allow_incomplete(command: str) -> None:
    code, out, _ = _run(command, "--help")
    assert code == 0 and "--allow-incomplete" in out


def test_help_documents_exit_status_3() -> None:
    out = " ".join(_run("--help")[1].split())
    assert "3 incomplete" in out and "Findings win: 1 even if incomplete" in out
