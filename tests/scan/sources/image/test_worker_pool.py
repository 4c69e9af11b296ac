"""ImageSource: when worker processes are used, and the deleted/present status said once in the text report."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import pytest

from kinko.scan.interface import Detector, Match, ScanResult, Severity
from kinko.scan.report.text import render_text
from kinko.scan.sources.image import ImageSource
from tests.scan.imagebuild import build_docker_archive

CANARY = b"KINKO_CANARY_QWERTYUI98765432"
HISTORY = ["ADD base /", "COPY secret /root/key", "RUN rm /root/key", "COPY app /srv/app"]
LAYERS = [
    {"etc/os-release": b"NAME=test\n"},
    {"root/key": b"line one\n" + CANARY + b"\n"},
    {"root/key": None},
    {"srv/app/settings.txt": b"# app\nTOKEN=" + CANARY + b"\n"},
]


class RecordingDetector(Detector):
    """Finds the canary and remembers every path it was asked about, in the process that ran it."""

    pattern = re.compile(rb"KINKO_CANARY_[A-Z0-9]{16}")

    def __init__(self) -> None:
        self.paths: list[str] = []

    def scan(self, data: bytes, *, path: str = "") -> list[Match]:
        self.paths.append(path)
        return [
            Match("canary", m.start(), m.end(), m.group(0), data.count(b"\n", 0, m.start()) + 1)
            for m in self.pattern.finditer(data)
        ]

    def rule_info(self, rule_id: str) -> tuple[str, Severity]:
        return ("Test canary", Severity.HIGH)


def _archive(tmp_path: Path) -> Path:
    return build_docker_archive(tmp_path / "img.tar", LAYERS, HISTORY)


def _layer_paths(detector: RecordingDetector) -> list[str]:
    return [p for p in detector.paths if not p.startswith("config:")]


def test_small_image_is_scanned_in_process_when_workers_are_automatic(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    detector = RecordingDetector()
    findings = list(ImageSource(archive).scan(detector, ScanResult()))
    # No pool for a few KiB of layers: the parent's detector saw every file itself.
    assert "root/key" in _layer_paths(detector) and "srv/app/settings.txt" in _layer_paths(detector)
    assert sorted((f.location.path, f.location.status.value) for f in findings) == [
        ("root/key", "deleted"),
        ("srv/app/settings.txt", "present"),
    ]


def test_explicit_workers_use_the_pool_with_the_same_findings(tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    serial, pooled = RecordingDetector(), RecordingDetector()
    want = list(ImageSource(archive, workers=1).scan(serial, ScanResult()))
    got = list(ImageSource(archive, workers=2).scan(pooled, ScanResult()))
    assert _layer_paths(pooled) == []  # layers went to worker processes
    assert got == want and len(got) == 2


def test_text_report_states_deleted_and_present_once(tmp_path: Path) -> None:
    result = ScanResult()
    result.findings = list(ImageSource(_archive(tmp_path)).scan(RecordingDetector(), result))
    out = render_text(result)
    assert out.count("recoverable") == 1
    assert out.count("status: deleted in layer 2, still recoverable from the archive") == 1
    assert out.count("present in") == 1 and "status: present in final image" in out
    assert all(f.message == "Test canary found" for f in result.findings)


SPAWN_SCRIPT = """
import multiprocessing, sys

from kinko.scan.detect import default_detector
from kinko.scan.interface import ScanResult
from kinko.scan.sources.image.source import ImageSource, _worker_payload

if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    detector = default_detector()
    payload = _worker_payload(detector)
    # Not forked: the workers get the detector pickled, compiled database included (no recompiling there).
    assert isinstance(payload, bytes) and detector._serialized in payload
    findings = list(ImageSource(sys.argv[1], workers=2, scan_config=False).scan(detector, ScanResult()))
    print(sorted((f.rule_id, f.location.path, f.location.status.value) for f in findings))
"""


def _token_archive(tmp_path: Path) -> Path:
    token = b"ghp_" + b"A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    return build_docker_archive(
        tmp_path / "img.tar",
        [{"etc/os-release": b"NAME=test\n"}, {"srv/.env": b"GITHUB_TOKEN=" + token + b"\n"}],
        ["ADD base /", "COPY env /srv/.env"],
    )


def test_spawned_workers_get_the_compiled_rules(tmp_path: Path) -> None:
    import subprocess
    import sys

    archive = _token_archive(tmp_path)
    script = tmp_path / "spawn_scan.py"
    script.write_text(SPAWN_SCRIPT)
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        [sys.executable, str(script), str(archive)], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "('github-pat', 'srv/.env', 'present')" in done.stdout


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="forked workers only")
def test_forked_workers_reuse_the_detector_the_caller_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("hyperscan")
    from kinko.scan.detect import HyperscanDetector, default_detector, load_rules
    from kinko.scan.sources.image.source import _worker_payload

    detector = default_detector(cache_dir=tmp_path / "cache")
    assert _worker_payload(detector) == ("auto", tmp_path / "cache")  # settings, not a pickle
    assert isinstance(_worker_payload(HyperscanDetector(load_rules())), bytes)  # not a default one: pickled
    archive = _token_archive(tmp_path)

    def no_building(*_args: object) -> None:
        raise AssertionError("a worker built its own detector")

    # Forked workers inherit this patch: one that built a detector (compile or cache load) would fail its layers.
    monkeypatch.setattr(HyperscanDetector, "_load", no_building)
    result = ScanResult()
    findings = list(ImageSource(archive, workers=2, scan_config=False).scan(detector, result))
    assert [(f.rule_id, f.location.path) for f in findings] == [("github-pat", "srv/.env")]
    assert not [w for w in result.warnings if "worker failed" in w.message]


class DyingDetector(RecordingDetector):
    """Kills the worker process that is asked to scan a file holding `DIE` (an OOM kill, a crash)."""

    def scan(self, data: bytes, *, path: str = "") -> list[Match]:
        if b"DIE" in data and multiprocessing.parent_process() is not None:
            import os

            os._exit(1)
        return super().scan(data, path=path)


def test_a_dead_worker_leaves_its_layer_reported_as_not_scanned(tmp_path: Path) -> None:
    archive = build_docker_archive(tmp_path / "d.tar", [{"a.txt": CANARY}, {"die.txt": b"DIE"}], ["A", "B"])
    result = ScanResult()
    findings = list(ImageSource(archive, workers=2, scan_config=False).scan(DyingDetector(), result))
    skipped = [w.message for w in result.incomplete]
    assert any(m.startswith("layer 1: not scanned, worker failed (") for m in skipped)
    # Layer 0 is either scanned (its finding) or lost with the broken pool (reported too): never silently gone.
    assert [f.location.layer_index for f in findings] == [0] or any(m.startswith("layer 0:") for m in skipped)
