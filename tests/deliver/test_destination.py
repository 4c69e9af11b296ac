"""Destinations opened component by component from `/`: real directories, real symlinks planted in the path."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kinko.deliver.agent import Agent, load_config
from kinko.deliver.files import AtomicWriter, FileProjection
from kinko.deliver.safedir import open_directory
from kinko.errors import InvalidInput
from tests.deliver.test_files import umask

ROOT = os.geteuid() == 0
as_root = pytest.mark.skipif(not ROOT, reason="needs root to create directories owned by another user")
NOBODY = 65534


def fp(text: str) -> dict[str, FileProjection]:
    return {"f": FileProjection(text.encode())}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- what is created ------------------------------------------------------------------------------------------
def test_missing_directories_are_created_0755_then_the_destination_0700(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "dest"
    with umask(0):  # even with no umask, nothing created is writable by group/other
        assert AtomicWriter(target).write(fp("1")) is True
    assert (mode(tmp_path / "a"), mode(tmp_path / "a" / "b"), mode(target)) == (0o755, 0o755, 0o700)
    assert (target / "f").read_text() == "1"


def test_relative_and_dotted_destinations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    AtomicWriter(Path("rel/./x/../dest")).write(fp("1"))
    assert (tmp_path / "rel" / "dest" / "f").read_text() == "1" and not (tmp_path / "rel" / "x").exists()


# -- symlinks anywhere in the path ------------------------------------------------------------------------------
@pytest.mark.parametrize("link_at", ["middle", "last", "first-of-two"])
def test_a_symlink_anywhere_in_the_path_is_refused(tmp_path: Path, link_at: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    base = tmp_path / "base"
    base.mkdir()
    os.symlink(elsewhere, base / "link")
    target = {"middle": base / "link" / "sub", "last": base / "link", "first-of-two": base / "link" / "new" / "d"}
    with pytest.raises(InvalidInput, match=f"{base / 'link'} is a symlink .*give its real path"):
        AtomicWriter(target[link_at]).write(fp("secret"))
    assert tree(elsewhere) == ["sub"]  # nothing written, nothing created through the link


def test_a_relative_symlink_to_a_sibling_is_refused_too(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "alias")
    with pytest.raises(InvalidInput, match="is a symlink \\(to 'real'\\)"):
        AtomicWriter(tmp_path / "alias" / "dest").write(fp("secret"))
    assert tree(tmp_path / "real") == []


def test_system_symlinks_such_as_var_run_are_refused_with_their_target() -> None:
    if not os.path.islink("/var/run"):
        pytest.skip("/var/run is not a symlink here")
    with pytest.raises(InvalidInput, match=f"/var/run is a symlink \\(to {os.readlink('/var/run')!r}\\)"):
        open_directory(Path("/var/run/kinko-never-created"), mode=0o700)
    assert not os.path.lexists("/run/kinko-never-created")


def test_a_file_in_the_path_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="file is not a directory"):
        AtomicWriter(tmp_path / "file" / "dest").write(fp("1"))


def test_a_component_swapped_for_a_symlink_between_runs(tmp_path: Path) -> None:
    """The issue's case: `ww/sub` replaced by a link to elsewhere after a good run redirects nothing."""
    ww, elsewhere = tmp_path / "ww", tmp_path / "elsewhere"
    (elsewhere / "dest").mkdir(parents=True)
    writer = AtomicWriter(ww / "sub" / "dest")
    assert writer.write(fp("gen1")) is True
    os.rename(ww / "sub", ww / "sub.old")
    os.symlink(elsewhere, ww / "sub")
    with pytest.raises(InvalidInput, match="sub is a symlink"):
        writer.write(fp("gen2"))
    assert tree(elsewhere) == ["dest"] and (ww / "sub.old" / "dest" / "f").read_text() == "gen1"
    os.unlink(ww / "sub")
    os.rename(ww / "sub.old", ww / "sub")
    assert writer.write(fp("gen3")) is True and (ww / "sub" / "dest" / "f").read_text() == "gen3"


SWAPPER = """
import os, shutil, sys
base, elsewhere = sys.argv[1], sys.argv[2]
os.chdir(base)
while True:
    try:
        os.rename("sub", "sub.real")
    except OSError:
        shutil.rmtree("sub.real", ignore_errors=True)  # the writer made a fresh `sub` while the name was free
        continue
    for step in (lambda: os.symlink(elsewhere, "sub"), lambda: os.unlink("sub"),
                 lambda: os.rename("sub.real", "sub")):
        try:
            step()
        except OSError:
            pass
"""


def test_a_component_swapped_back_and_forth_during_writes_never_redirects(tmp_path: Path) -> None:
    """A swapper in another process: every write lands in a real `sub` or is refused; the link's target never
    gets a byte."""
    base, elsewhere = tmp_path / "base", tmp_path / "elsewhere"
    (elsewhere / "dest").mkdir(parents=True)
    writer = AtomicWriter(base / "sub" / "dest", fsync=False)
    writer.write(fp("start"))
    outcomes = {"ok": 0, "refused": 0, "gone": 0}
    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(base), str(elsewhere)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (outcomes["refused"] < 20 or outcomes["ok"] < 20):
            try:
                writer.write(fp("racing"))
                outcomes["ok"] += 1
            except InvalidInput as exc:
                assert "sub is a symlink" in exc.message or "is not a directory" in exc.message, exc.message
                outcomes["refused"] += 1
            except OSError:  # `sub` renamed away under the writer's fd: the kernel's answer, nothing written
                outcomes["gone"] += 1
    finally:
        swapper.kill()
        swapper.wait()
    assert tree(elsewhere) == ["dest"], outcomes
    assert outcomes["refused"] >= 20, outcomes  # the race really happened


# -- who else can write on the way --------------------------------------------------------------------------------
@pytest.mark.parametrize("perms", [0o777, 0o770, 0o757, 0o1777, 0o2777])
def test_a_destination_others_can_write_is_refused(tmp_path: Path, perms: int) -> None:
    target = tmp_path / "dest"
    target.mkdir()
    target.chmod(perms)  # sticky does not help here: others could plant the names the writer will use
    with pytest.raises(InvalidInput, match=f"destination {target} is writable by group/other \\(mode {perms:04o}\\)"):
        AtomicWriter(target).write(fp("secret"))
    assert tree(target) == []


@pytest.mark.parametrize("perms", [0o777, 0o775, 0o2777])
def test_a_parent_others_can_write_is_refused_unless_sticky(tmp_path: Path, perms: int) -> None:
    ww = tmp_path / "ww"
    ww.mkdir()
    ww.chmod(perms)
    with pytest.raises(InvalidInput, match=f"{ww} is writable by group/other .*not sticky.*shared_directories"):
        AtomicWriter(ww / "sub" / "dest").write(fp("secret"))
    assert tree(ww) == []  # refused before creating anything in it


def test_a_sticky_parent_like_tmp_is_fine(tmp_path: Path) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    writer = AtomicWriter(sticky / "mine" / "dest")
    assert writer.write(fp("1")) is True and writer.shared == ()
    assert (sticky / "mine" / "dest" / "f").read_text() == "1"


def test_shared_directories_accepts_and_reports_writable_ones(tmp_path: Path) -> None:
    empty_dir = tmp_path / "emptydir"  # what the kubelet makes of an emptyDir: 0777, not sticky
    empty_dir.mkdir()
    empty_dir.chmod(0o777)
    writer = AtomicWriter(empty_dir, shared_directories=True)
    assert writer.write(fp("1")) is True and writer.shared == (str(empty_dir),)
    nested = AtomicWriter(empty_dir / "app", shared_directories=True)
    assert nested.write(fp("2")) is True and nested.shared == (str(empty_dir),)
    assert mode(empty_dir / "app") == 0o700


def test_shared_directories_still_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real").chmod(0o777)
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(InvalidInput, match="is a symlink"):
        AtomicWriter(tmp_path / "link", shared_directories=True).write(fp("1"))


@as_root
@pytest.mark.parametrize("where", ["parent", "destination"])
def test_directories_of_another_user_are_refused(tmp_path: Path, where: str) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, NOBODY, NOBODY)
    target = theirs / "dest" if where == "parent" else theirs
    with pytest.raises(InvalidInput, match=f"{theirs} belongs to uid {NOBODY}, not to root or to this process"):
        AtomicWriter(target, shared_directories=True).write(fp("1"))
    assert tree(theirs) == []


@as_root
def test_in_a_sticky_parent_the_next_component_must_be_ours(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "planted").mkdir()  # someone else got there first, with a directory of their own
    os.chown(sticky / "planted", NOBODY, NOBODY)
    with pytest.raises(InvalidInput, match="planted belongs to uid"):
        AtomicWriter(sticky / "planted" / "dest").write(fp("1"))
    assert tree(sticky / "planted") == []


# -- the agent ------------------------------------------------------------------------------------------------------
class Fetched:
    """A fetcher that returns fixed values (the server side is tested elsewhere)."""

    def fetch(self, paths: list[str]) -> dict[str, bytes]:
        return dict.fromkeys(paths, b"value")

    def close(self) -> None:
        pass


def agent(tmp: Path, destination: str, **extra: Any) -> Agent:
    doc = {"address": "http://x", "token_file": "t", **extra,
           "files": [{"path": "app/db", "destination": destination, "name": "db"}]}
    (tmp / "agent.yaml").write_text(yaml.safe_dump(doc))
    return Agent(load_config(tmp / "agent.yaml", env={}), fetcher=Fetched(), environ={})  # type: ignore[arg-type]


def test_agent_refuses_a_planted_symlink_in_its_destination(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "ww").mkdir()
    os.symlink(elsewhere, tmp_path / "ww" / "sub")
    with pytest.raises(InvalidInput, match="ww/sub is a symlink"):
        agent(tmp_path, "ww/sub/out").render_once()
    assert tree(elsewhere) == []


def test_agent_refuses_a_world_writable_destination_unless_shared(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o777)
    with pytest.raises(InvalidInput, match="writable by group/other"):
        agent(tmp_path, "shared").render_once()
    shared = agent(tmp_path, "shared", shared_directories=True)
    with caplog.at_level(logging.WARNING, logger="kinko.agent"):
        assert shared.render_once() is True
        assert shared.render_once() is False
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'shared'}: writing through directories group/other can write ({tmp_path / 'shared'}) "
        "because shared_directories is set"]
    assert (tmp_path / "shared" / "db").read_bytes() == b"value"


def test_agent_config_shared_directories_is_a_bool(tmp_path: Path) -> None:
    from kinko.errors import UsageError

    with pytest.raises(UsageError, match="shared_directories must be true or false"):
        agent(tmp_path, "out", shared_directories="yes")
