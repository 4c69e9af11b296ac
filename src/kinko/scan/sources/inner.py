"""Content inside a file: zip-family archives, tars (plain or compressed), UTF-16/32 text and the string constants of
`.pyc` files (`name!constants`) and git objects (`objects/ab/cd...!blob`, `pack-x.pack!<blob id>`), within bomb limits.

`inner_parts(name, data)` yields `(name!member, bytes)` for every member worth scanning, nested archives included
to `InnerLimits.max_depth`; what a limit cut short goes to `problems` (the caller records it as skipped). The outer
bytes are the caller's to scan: this only adds what a byte scan of them cannot see (compressed members, text
with a NUL after every character).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kinko.scan.sources.gitobjects import is_loose_object, is_pack, loose_blob, pack_blobs
from kinko.scan.sources.pyc import is_pyc, pyc_strings

ZIP_SUFFIXES = (".zip", ".jar", ".war", ".ear", ".whl", ".apk", ".nupkg", ".aar", ".egg", ".ipa", ".xpi", ".vsix")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".gem", ".crate")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)  # fmt: skip


@dataclass(frozen=True)
class InnerLimits:
    """Caps for content inside a file: one member's size, all members' size, compression ratio, count, depth."""

    max_member_bytes: int = 64 << 20
    max_total_bytes: int = 512 << 20
    max_ratio: int = 200  # a member inflating more than this (and past 1 MiB) is a bomb
    max_members: int = 20_000
    max_depth: int = 3


@dataclass
class _Budget:
    limits: InnerLimits
    problems: list[str]
    used: int = 0
    members: int = 0
    seen: set[str] = field(default_factory=set)

    def take(self, name: str, size: int) -> bool:
        """Room for one more member of `size` bytes; a refusal is recorded as a problem."""
        self.members += 1
        if self.members > self.limits.max_members:
            self._once("members", f"{name}: over {self.limits.max_members} archive members; the rest not scanned")
            return False
        if size > self.limits.max_member_bytes:
            self.problems.append(f"{name}: {size} bytes inflated is over {self.limits.max_member_bytes}; not scanned")
            return False
        if self.used + size > self.limits.max_total_bytes:
            self._once("total", f"{name}: archive content over {self.limits.max_total_bytes} bytes; rest not scanned")
            return False
        self.used += size
        return True

    def _once(self, key: str, message: str) -> None:
        if key not in self.seen:
            self.seen.add(key)
            self.problems.append(message)


def wide_text(data: bytes) -> bytes | None:
    """UTF-16/32 text (by BOM, or by the NULs of mostly-ASCII UTF-16) re-encoded as UTF-8; None for anything else."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace").encode()
    head = data[:512]
    if len(head) >= 16:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
            return data.decode("utf-16-le", errors="replace").encode()
        if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
            return data.decode("utf-16-be", errors="replace").encode()
    return None


def is_zip(name: str, data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" or (name.lower().endswith(ZIP_SUFFIXES) and data[:4] == b"PK\x05\x06")


def is_tar(name: str, data: bytes) -> bool:
    return data[257:262] == b"ustar" or name.lower().endswith(TAR_SUFFIXES)


def inner_parts(
    name: str, data: bytes, problems: list[str], limits: InnerLimits | None = None
) -> Iterator[tuple[str, bytes]]:
    """Members of the archive `data` named `name` (and of archives inside it), as (`name!member`, content)."""
    yield from _expand(name, data, _Budget(limits or InnerLimits(), problems), 1)


def _expand(name: str, data: bytes, budget: _Budget, depth: int) -> Iterator[tuple[str, bytes]]:
    if is_pyc(name, data):
        constants = pyc_strings(data)
        if constants:
            yield f"{name}!constants", constants
        return
    if is_loose_object(name, data) or is_pack(name, data):
        yield from _git_objects(name, data, budget)
        return
    if is_zip(name, data):
        members = _zip_members(name, data, budget)
    elif is_tar(name, data):
        members = _tar_members(name, data, budget)
    else:
        return
    for inner_name, content in members:
        yield inner_name, content
        if is_pyc(inner_name, content):
            yield from _expand(inner_name, content, budget, depth)
        elif is_zip(inner_name, content) or is_tar(inner_name, content):
            if depth >= budget.limits.max_depth:
                budget.problems.append(f"{inner_name}: nested deeper than {budget.limits.max_depth}; not opened")
                continue
            yield from _expand(inner_name, content, budget, depth + 1)


def _git_objects(name: str, data: bytes, budget: _Budget) -> Iterator[tuple[str, bytes]]:
    if is_pack(name, data):
        yield from pack_blobs(name, data, budget.take, budget.problems)
        return
    content, problem = loose_blob(data, budget.limits.max_member_bytes)
    if problem is not None:
        budget.problems.append(f"{name}: {problem}")
    elif content is not None and budget.take(f"{name}!blob", len(content)):
        yield f"{name}!blob", content


def _zip_members(name: str, data: bytes, budget: _Budget) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if name.lower().endswith(ZIP_SUFFIXES):
            budget.problems.append(f"{name}: not a readable zip ({exc}); its members were not scanned")
        return
    for info in infos:
        if info.is_dir():
            continue
        member = f"{name}!{info.filename}"
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > (1 << 20) and ratio > budget.limits.max_ratio:
            budget.problems.append(f"{member}: inflates {ratio:.0f}:1 (zip bomb?); not scanned")
            continue
        if not budget.take(member, info.file_size):
            continue
        try:
            with archive.open(info) as handle:
                content = handle.read(budget.limits.max_member_bytes + 1)  # a lying header cannot make it bigger
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError, zlib.error) as exc:  # noqa: E501
            budget.problems.append(f"{member}: cannot be read ({exc}); not scanned")
            continue
        yield member, content[: budget.limits.max_member_bytes]


def _open_tar(data: bytes) -> tarfile.TarFile | None:
    openers: dict[bytes, Callable[[io.BytesIO], io.BufferedIOBase]] = {
        b"\x1f\x8b": lambda f: gzip.GzipFile(fileobj=f),
        b"BZh": bz2.BZ2File,
        b"\xfd7z": lzma.LZMAFile,
    }
    opener = next((o for magic, o in openers.items() if data.startswith(magic)), None)
    try:
        raw = data if opener is None else _inflate(opener(io.BytesIO(data)))
        return tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError):
        return None


def _inflate(handle: io.BufferedIOBase) -> bytes:
    """At most 512 MiB of a compressed stream (the budget caps what is scanned of it)."""
    with handle:
        return handle.read(512 << 20)


def _tar_members(name: str, data: bytes, budget: _Budget) -> Iterator[tuple[str, bytes]]:
    archive = _open_tar(data)
    if archive is None:
        if name.lower().endswith(TAR_SUFFIXES):
            budget.problems.append(f"{name}: not a readable tar; its members were not scanned")
        return
    with archive:
        try:
            for info in archive:
                if not info.isreg():
                    continue
                member = f"{name}!{info.name.lstrip('/')}"
                if not budget.take(member, info.size):
                    continue
                handle = archive.extractfile(info)
                if handle is not None:
                    yield member, handle.read(info.size)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            budget.problems.append(f"{name}: truncated or corrupt tar ({exc}); the rest was not scanned")
