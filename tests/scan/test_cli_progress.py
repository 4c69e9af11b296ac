"""The scan progress display appears on a terminal's stderr and never when stderr is a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

KINKO = [sys.executable, "-c", "import sys; from kinko.cli import main; sys.exit(main())"]


def _write_tree(root: Path) -> None:
    (root / "app").mkdir()
    (root / "app" / "settings.py").write_text("DATABASE_URL = 'postgresql://app:Zq8wLr2pVx9tKm4s@db:5432/app'\n")
    (root / "app" / "notes.txt").write_text("nothing secret here\n" * 1000)


def _run_with_tty_stderr(args: list[str]) -> tuple[int, bytes, bytes]:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL,
                            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"})
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    out = proc.stdout.read() if proc.stdout else b""
    os.close(leader)
    return proc.wait(timeout=30), out, seen


@pytest.mark.skipif(not hasattr(pty, "openpty"), reason="needs a pseudo-terminal")
def test_progress_is_drawn_on_a_terminal_and_the_secret_never_is(tmp_path: Path) -> None:
    _write_tree(tmp_path)
    code, out, err = _run_with_tty_stderr([*KINKO, "scan", "dir", str(tmp_path)])
    assert code == 1  # the postgres URL is critical
    assert b"scanning" in err  # rich's transient progress line, drawn on the terminal
    assert b"Zq8wLr2pVx9tKm4s" not in err + out
    assert b"postgres" in out.lower()


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    _write_tree(tmp_path)
    proc = subprocess.run([*KINKO, "scan", "dir", str(tmp_path)], capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert b"postgres" in proc.stdout.lower()
    assert b"scanning" not in proc.stderr
    assert b"\x1b[" not in proc.stderr + proc.stdout  # no terminal control codes in pipes
