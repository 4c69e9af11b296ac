"""The kubelet-style atomic file writer: a timestamped dir per set of files, `..data` swapped by rename, 0400 files.

Layout (the same as a Kubernetes secret volume, so tools that watch `..data` work unchanged):

    <target>/..data      -> ..2026_01_02_15_04_05.123456789      (the only thing swapped)
    <target>/<name>      -> ..data/<name>                         (top-level element of each path)
    <target>/..2026_01_02_15_04_05.123456789/<path>               (the real files, never modified once swapped in)

The target is opened one component at a time from `/` (kinko.deliver.safedir: no symlink anywhere in its path, no
directory others could swap), every operation is relative to its fd, and no symlink the writer did not create
inside the target is ever followed. Writers are serialized with flock on the target dir; readers need no lock: a
reader resolving `..data` sees either the whole old set or the whole new set.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import posixpath
import re
import secrets
import shutil
import stat
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kinko.deliver.safedir import open_directory
from kinko.errors import InvalidInput, InvalidPath

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"
MAX_FILE_NAME_LENGTH = 255
MAX_PATH_LENGTH = 4096
DEFAULT_FILE_MODE = 0o400  # Kubernetes defaults to 0644; a secret has no business being world-readable
DEFAULT_DIR_MODE = 0o700

#: Timestamped dirs are `..YYYY_MM_DD_HH_MM_SS.<decimal random>`, like Go's os.MkdirTemp with the kubelet pattern.
_TS_DIR = re.compile(r"\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+\Z")
_LINK_TMP = "..link_tmp"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Unicode categories no file name may contain: controls (newline, ESC, ...), invisible format characters
#: (bidi overrides, zero-width), lone surrogates, and the line/paragraph separators.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

#: cleaned relative path -> (bytes, mode)
_Files = dict[str, tuple[bytes, int]]


@dataclass(frozen=True)
class FileProjection:
    """One file to deliver: its bytes (never shown in repr) and an optional mode (default: the writer's)."""

    data: bytes = field(repr=False)
    mode: int | None = None


def validate_path(path: str) -> str:
    """Check a payload path like the kubelet does and return it cleaned (`a//b/./c` -> `a/b/c`).

    On top of the kubelet's rules, no element may hold a control or invisible character (a newline included).
    """
    if not path:
        raise InvalidPath("file path must not be empty")
    if len(path) > MAX_PATH_LENGTH:  # characters: a cheap first bound before the per-character check
        raise InvalidPath(f"file path {path[:64]!r}... is longer than {MAX_PATH_LENGTH} bytes")
    _check_characters(path)
    if path.startswith("/"):
        raise InvalidPath(f"file path {path!r} must be relative")
    if len(path.encode()) > MAX_PATH_LENGTH:
        raise InvalidPath(f"file path {path[:64]!r}... is longer than {MAX_PATH_LENGTH} bytes")
    items = path.split("/")
    for item in items:
        if item == "..":
            raise InvalidPath(f"file path {path!r} must not contain '..'")
        if len(item.encode()) > MAX_FILE_NAME_LENGTH:
            raise InvalidPath(f"file path {path[:64]!r}: an element is longer than {MAX_FILE_NAME_LENGTH} bytes")
    if items[0].startswith(".."):  # names starting with `..` are the writer's own (..data, ..<timestamp>)
        raise InvalidPath(f"file path {path!r} must not start with '..'")
    cleaned = posixpath.normpath(path)
    if cleaned == ".":
        raise InvalidPath(f"file path {path!r} names no file")
    return cleaned


def validate_clean_path(path: str) -> str:
    """A path that must already be clean, as the CSI driver requires (`filepath.Clean(path) == path`)."""
    cleaned = validate_path(path)
    if cleaned != path:
        raise InvalidPath(f"file path {path[:255]!r} is not a clean relative path; use {cleaned!r}")
    return path


def validate_name(name: str) -> str:
    """One file name: the path rules above, and no `/` (a name without one is already clean)."""
    if "/" in name:
        raise InvalidPath(f"file name {name[:255]!r} must not contain '/'; put directories in the destination")
    return validate_path(name)


def _check_characters(path: str) -> None:
    if path.isascii() and path.isprintable():
        return
    for char in path:
        if unicodedata.category(char) in _BAD_CATEGORIES:
            raise InvalidPath(f"file path {path[:64]!r} contains a control or invisible character "
                              f"(U+{ord(char):04X})")


def _check_mode(mode: int, what: str) -> int:
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
        raise InvalidInput(f"{what}: mode must be a number between 0 and 0777 (octal)")
    return mode


class AtomicWriter:
    """Deliver a complete set of files into `target_dir` atomically; see the module docstring for the layout."""

    def __init__(self, target_dir: Path, *, default_mode: int = DEFAULT_FILE_MODE,
                 dir_mode: int = DEFAULT_DIR_MODE, fsync: bool = True, shared_directories: bool = False) -> None:
        """`shared_directories`: accept group/other-writable directories on the way to the target (see
        kinko.deliver.safedir); those the last write went through are in `self.shared`."""
        self.target_dir = Path(target_dir)
        self.default_mode = _check_mode(default_mode, "default_mode")
        self.dir_mode = _check_mode(dir_mode, "dir_mode")
        if dir_mode & 0o700 != 0o700:  # the writer must be able to fill and later prune its own dirs
            raise InvalidInput("dir_mode must give the owner rwx (0700)")
        self.fsync = fsync  # off only where durability across a crash does not matter (tmpfs, tests)
        self.shared_directories = shared_directories
        self.shared: tuple[str, ...] = ()

    # -- public ------------------------------------------------------------------------------------------
    def write(self, payload: Mapping[str, FileProjection]) -> bool:
        """Make the target hold exactly `payload`. True if anything changed; on error the old set stays intact."""
        files = self._prepare(payload)
        with self._target() as fd:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return self._write_locked(fd, files)

    def read(self) -> dict[str, FileProjection]:
        """The set `..data` currently points at ({} when there is none or it is not one the writer made)."""
        with self._target() as fd:
            fcntl.flock(fd, fcntl.LOCK_SH)
            current = _current_ts(fd, self.target_dir)
            tree = _read_tree(fd, current) if current else None
        return {path: FileProjection(data, mode) for path, (data, mode) in (tree or {}).items()}

    # -- steps -------------------------------------------------------------------------------------------
    def _prepare(self, payload: Mapping[str, FileProjection]) -> _Files:
        """Step 1: validate and clean every path and mode before touching the disk."""
        files: _Files = {}
        for raw, item in payload.items():
            path = validate_path(raw)
            if path in files:
                raise InvalidPath(f"file path {raw!r} names the same file as another path")
            if not isinstance(item.data, bytes | bytearray):
                raise InvalidInput(f"file {path!r}: data must be bytes")
            mode = self.default_mode if item.mode is None else _check_mode(item.mode, f"file {path!r}")
            files[path] = (bytes(item.data), mode)
        for path in files:  # `a` and `a/b` cannot both exist: one would have to be a file and a dir
            parent = posixpath.dirname(path)
            while parent:
                if parent in files:
                    raise InvalidPath(f"file path {path!r} is inside {parent!r}, which is also a file")
                parent = posixpath.dirname(parent)
        return files

    def _write_locked(self, fd: int, files: _Files) -> bool:
        current = _current_ts(fd, self.target_dir)
        top = {path.split("/", 1)[0] for path in files}
        self._preflight(fd, top)
        if current is not None and _read_tree(fd, current) == files:
            # Nothing changed: no new dir, but repair the user-visible links (kubernetes issue #121472).
            self._link_visible(fd, top)
            _prune(fd, top, keep=current)
            return False
        new = self._fill_ts_dir(fd, files)
        try:
            _remove_link(fd, NEW_DATA_DIR, self.target_dir)
            os.symlink(new, NEW_DATA_DIR, dir_fd=fd)
            os.replace(NEW_DATA_DIR, DATA_DIR, src_dir_fd=fd, dst_dir_fd=fd)  # the atomic swap
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(NEW_DATA_DIR, dir_fd=fd)
            shutil.rmtree(new, dir_fd=fd, ignore_errors=True)
            raise
        if self.fsync:
            os.fsync(fd)
        self._link_visible(fd, top)
        _prune(fd, top, keep=new)
        return True

    def _preflight(self, fd: int, top: set[str]) -> None:
        """Refuse before writing anything if a user-visible name is taken by something the writer did not make."""
        for name in sorted(top):
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue
            if not stat.S_ISLNK(st.st_mode):
                raise InvalidInput(f"{self.target_dir / name} exists and is not a kinko link; refusing to replace it")

    def _fill_ts_dir(self, fd: int, files: _Files) -> str:
        """Steps 5-6: a fresh timestamped dir holding every file with its final mode from creation on."""
        dir_mode = self.dir_mode | _traverse_bits(mode for _, mode in files.values())
        name = _make_ts_dir(fd)
        dirs: dict[str, int] = {}
        try:
            dirs[""] = os.open(name, _DIR_FLAGS, dir_fd=fd)
            os.fchmod(dirs[""], dir_mode)  # explicit, so the umask cannot change it
            for path in sorted(files):
                data, mode = files[path]
                parent = _ensure_dirs(dirs, posixpath.dirname(path), dir_mode)
                _write_file(parent, posixpath.basename(path), data, mode, self.fsync)
            if self.fsync:
                for dir_fd in dirs.values():
                    os.fsync(dir_fd)
        except BaseException:
            shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
            raise
        finally:
            for dir_fd in dirs.values():
                os.close(dir_fd)
        return name

    def _link_visible(self, fd: int, top: set[str]) -> None:
        """Step 10: `<name> -> ..data/<name>` for each top-level element; a wrong link is replaced, never followed."""
        for name in sorted(top):
            want = f"{DATA_DIR}/{name}"
            try:
                if os.readlink(name, dir_fd=fd) == want:
                    continue
            except FileNotFoundError:
                os.symlink(want, name, dir_fd=fd)
                continue
            _remove_link(fd, _LINK_TMP, self.target_dir)
            os.symlink(want, _LINK_TMP, dir_fd=fd)
            os.replace(_LINK_TMP, name, src_dir_fd=fd, dst_dir_fd=fd)

    @contextlib.contextmanager
    def _target(self) -> Iterator[int]:
        """The target dir as an fd, opened (and created if missing) component by component from `/`."""
        opened = open_directory(self.target_dir, mode=self.dir_mode, shared=self.shared_directories)
        self.shared = opened.shared
        try:
            yield opened.fd
        finally:
            os.close(opened.fd)


# -- helpers (all relative to a dir fd) ---------------------------------------------------------------------
def _current_ts(fd: int, target: Path) -> str | None:
    """Step 2: the timestamped dir `..data` points at, if it is one of ours (a real dir with our name pattern)."""
    try:
        name = os.readlink(DATA_DIR, dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise InvalidInput(f"{target / DATA_DIR} is not a symlink; refusing to write there") from None
        raise
    if not _TS_DIR.match(name):
        return None  # foreign: it will be replaced by the swap, and what it points at is left alone
    try:
        return name if stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode) else None
    except FileNotFoundError:
        return None


def _read_tree(fd: int, name: str) -> _Files | None:
    """Steps 3-4: every regular file under the dir with bytes and mode; None if anything there is not ours."""
    files: _Files = {}
    try:
        root = os.open(name, _DIR_FLAGS, dir_fd=fd)
    except OSError:
        return None
    try:
        return files if _walk(root, "", files) else None
    finally:
        os.close(root)


def _walk(dir_fd: int, prefix: str, files: _Files) -> bool:
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            path = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                    try:
                        if not _walk(sub, path + "/", files):
                            return False
                    finally:
                        os.close(sub)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    return False
                file_fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:
                return False  # unreadable counts as "changed": the writer will write a fresh set
            with os.fdopen(file_fd, "rb") as handle:
                files[path] = (handle.read(), stat.S_IMODE(os.fstat(file_fd).st_mode))
    return True


def _make_ts_dir(fd: int) -> str:
    while True:
        name = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(secrets.randbelow(2**32))
        try:
            os.mkdir(name, 0o700, dir_fd=fd)
            return name
        except FileExistsError:
            continue


def _ensure_dirs(dirs: dict[str, int], rel: str, mode: int) -> int:
    """The fd of `rel` inside the new dir, creating parents as needed (each opened with O_NOFOLLOW)."""
    if rel in dirs:
        return dirs[rel]
    parent = _ensure_dirs(dirs, posixpath.dirname(rel), mode)
    base = posixpath.basename(rel)
    os.mkdir(base, 0o700, dir_fd=parent)
    dirs[rel] = os.open(base, _DIR_FLAGS, dir_fd=parent)
    os.fchmod(dirs[rel], mode)
    return dirs[rel]


def _write_file(dir_fd: int, name: str, data: bytes, mode: int, sync: bool) -> None:
    # Created with its mode (never wider than wanted, whatever the umask) and then set exactly with fchmod.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    file_fd = os.open(name, flags, mode, dir_fd=dir_fd)
    try:
        os.fchmod(file_fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(file_fd, view):]
        if sync:
            os.fsync(file_fd)
    finally:
        os.close(file_fd)


def _traverse_bits(modes: Iterable[int]) -> int:
    """Group/other need r-x on the dirs to reach a file whose mode grants them anything (the kubelet uses 0755)."""
    extra = 0
    for mode in modes:
        if mode & 0o070:
            extra |= 0o050
        if mode & 0o007:
            extra |= 0o005
    return extra


def _remove_link(fd: int, name: str, target: Path) -> None:
    """Remove a leftover temporary link; anything other than a symlink there is not ours to delete."""
    try:
        st = os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return
    if not stat.S_ISLNK(st.st_mode):
        raise InvalidInput(f"{target / name} is not a symlink; refusing to write there")
    os.unlink(name, dir_fd=fd)


def _prune(fd: int, top: set[str], keep: str) -> None:
    """Steps 11-12: drop our links for names no longer delivered and every timestamped dir but `keep`."""
    with os.scandir(fd) as entries:
        names = [(e.name, e.is_symlink(), e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_link, is_dir in names:
        if is_link and name not in top and os.readlink(name, dir_fd=fd) == f"{DATA_DIR}/{name}":
            os.unlink(name, dir_fd=fd)
        elif is_dir and name != keep and _TS_DIR.match(name):
            shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
