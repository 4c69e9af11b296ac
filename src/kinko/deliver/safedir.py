"""Open a destination directory one component at a time from `/`, never through a symlink or a swappable directory.

The rules, for the agent's destinations (README, "Delivering secrets to workloads"):

* every component is opened relative to its parent's fd with O_NOFOLLOW|O_DIRECTORY, so a symlink anywhere in the
  path is refused (give the real path: `/run`, not `/var/run`), and a component swapped for a symlink between two
  runs is refused on the next one;
* every directory on the way belongs to root or to this process's user (anyone else could swap what is below it);
* a directory on the way that group/other can write must be sticky, like /tmp (others cannot rename or remove
  what is not theirs there, and the next component must be ours or root's);
* the destination itself must not be writable by group/other at all, sticky or not (others could plant the names
  the writer is about to use);
* missing directories are created (0755 on the way, the writer's mode for the destination; umask applies).

`shared=True` accepts group/other-writable directories (on the way and as the destination) and reports them,
for a Kubernetes emptyDir: the kubelet makes it 0777, but only the pod's own containers can reach it. Symlinks and
directories owned by other users are refused either way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kinko.errors import InvalidInput

#: Search-only fds on the way: O_PATH needs no read permission on the directory (a home may be 0711).
_WALK_FLAGS: int = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Mode of a missing directory created on the way (like `mkdir -p`, but never writable by group/other).
PARENT_MODE = 0o755
_HINT = "(for a Kubernetes emptyDir, which the kubelet makes 0777, set shared_directories: true)"


@dataclass(frozen=True)
class OpenedDir:
    """A readable fd of the destination and the group/other-writable directories accepted only by `shared`."""

    fd: int
    shared: tuple[str, ...] = ()


def open_directory(path: Path, *, mode: int, shared: bool = False) -> OpenedDir:
    """Open (creating what is missing) the directory at `path`, relative paths against the working directory.

    Raises InvalidInput naming the component that breaks a rule (see the module docstring); the caller closes fd.
    """
    where = PurePosixPath("/")
    names = PurePosixPath(os.path.abspath(path)).parts[1:]  # lexical `..` is safe: no symlink is ever followed
    accepted: list[str] = []
    fd = os.open("/", _WALK_FLAGS)
    try:
        for index, name in enumerate(names):
            _check_dir(fd, where, final=False, shared=shared, accepted=accepted)
            child = _open_child(fd, name, where / name, mode if index == len(names) - 1 else PARENT_MODE)
            os.close(fd)
            fd, where = child, where / name
        _check_dir(fd, where, final=True, shared=shared, accepted=accepted)
        return OpenedDir(os.open(".", _OPEN_FLAGS, dir_fd=fd), tuple(accepted))
    finally:
        os.close(fd)


def _open_child(fd: int, name: str, where: PurePosixPath, mode: int) -> int:
    """The fd of directory `name` inside `fd`, created with `mode` if missing; a symlink or a file is refused."""
    try:
        return _open_dir(fd, name, where)
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):  # someone made it first: it is checked like any other
            os.mkdir(name, mode, dir_fd=fd)
    return _open_dir(fd, name, where)


def _open_dir(fd: int, name: str, where: PurePosixPath) -> int:
    try:
        return os.open(name, _WALK_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            raise _not_a_directory(fd, name, where) from None
        raise


def _not_a_directory(fd: int, name: str, where: PurePosixPath) -> InvalidInput:
    try:
        target = os.readlink(name, dir_fd=fd)
    except OSError:
        return InvalidInput(f"{where} is not a directory")
    return InvalidInput(f"{where} is a symlink (to {target[:200]!r}); kinko follows no symlink in a destination: "
                        "give its real path")


def _check_dir(fd: int, where: PurePosixPath, *, final: bool, shared: bool, accepted: list[str]) -> None:
    """Owned by root or us; not writable by group/other unless sticky (on the way only) or `shared`."""
    info = os.fstat(fd)
    me = os.geteuid()
    if info.st_uid not in (0, me):
        raise InvalidInput(f"{where} belongs to uid {info.st_uid}, not to root or to this process (uid {me}); "
                           "refusing to write below it")
    perms = stat.S_IMODE(info.st_mode)
    if not perms & 0o022 or (perms & stat.S_ISVTX and not final):
        return
    if shared:
        accepted.append(str(where))
        return
    if final:
        raise InvalidInput(f"destination {where} is writable by group/other (mode {perms:04o}); refusing to "
                           f"write secrets where others can add names {_HINT}")
    raise InvalidInput(f"{where} is writable by group/other (mode {perms:04o}) and not sticky, so anyone could "
                       f"swap what is below it; refusing to write there {_HINT}")
