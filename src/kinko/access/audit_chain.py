"""Verifying audit files: the keyed hash chain, record by record, across one file or several consecutive ones.

With the vault's chain key every v2 record's HMAC is checked; without it (structure only) only the `prev` links
are, which catches naive edits but not a chain rewritten by someone who deleted records. By default a keyed check
refuses unkeyed (v1) records — a vault that writes keyed records never writes v1 ones, so v1 lines in its file
mean a downgrade — and a file whose first record continues an earlier file (`rotated_from`: the file was rotated,
or removed and started again) unless that earlier file is checked first.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kinko.access.audit import GENESIS, VERSION, _keyed_hash, _line_hash, _link_of, _record, _serialise

EDITED = "record edited here (its keyed hash does not match)"
UNKEYED = ("unkeyed (v1) record: not verifiable with this vault's audit key (a downgrade, or a file from before "
           "keyed audit: accept that with --allow-v1)")


@dataclass(frozen=True)
class ChainReport:
    """What `check_chain` found. `keyed`: v2 records whose HMAC was checked; `unkeyed`: records only
    structure-checked (v1 records, or every record when no key was given). `file`: where the first problem is
    (with several files); `continues_from`: the link the first file starts after, when it was accepted."""

    first_bad_line: int | None
    reason: str | None
    keyed: int
    unkeyed: int
    file: str | None = None
    continues_from: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_line is None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "first_bad_line": self.first_bad_line, "reason": self.reason,
                "keyed_records": self.keyed, "unkeyed_records": self.unkeyed, "bad_file": self.file,
                "continues_from": self.continues_from}


@dataclass
class _Walk:
    key: bytes | None
    allow_unkeyed: bool
    previous: str | None = None  # None until the first record: it says where the chain starts
    keyed: int = 0
    unkeyed: int = 0
    seen_v2: bool = False
    continues_from: str | None = None


def check_chain(paths: str | Path | Sequence[str | Path], key: bytes | None = None, *, allow_unkeyed: bool = False,
                allow_continued: bool = False) -> ChainReport:
    """Walk the files in order, as one chain. A deleted record is reported at the line where it is missing (the
    next record's `prev` no longer matches), an edited one at its own line (its hash no longer matches).

    `allow_unkeyed`: accept v1 records in a keyed check. `allow_continued`: accept a first file that starts after
    an earlier one (it says `rotated_from`); otherwise that is reported, since the records before it are not here.
    """
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    walk = _Walk(key, allow_unkeyed)
    for path in files:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                problem = _check_line(walk, raw, allow_continued)
                if problem is not None:
                    return ChainReport(number, problem, walk.keyed, walk.unkeyed, str(path), walk.continues_from)
    return ChainReport(None, None, walk.keyed, walk.unkeyed, None, walk.continues_from)


def _check_line(walk: _Walk, raw: bytes, allow_continued: bool) -> str | None:
    line = raw.rstrip(b"\n")
    record = _record(line)
    if not raw.endswith(b"\n"):  # only the last line can lack one: a write cut off mid-record
        return "not a complete audit record (cut short?)"
    if record is None:
        return "not an audit record"
    if walk.previous is None:
        problem = _start(walk, record, allow_continued)
        if problem is not None:
            return problem
    assert walk.previous is not None
    if record.get("v", 1) == VERSION:
        walk.seen_v2 = True
        problem = _check_v2(record, walk.previous, walk.key)
        if problem == EDITED and walk.keyed == 0:  # not one record verified yet: most likely the wrong key
            problem = "does not verify with this vault's audit key (written by another vault, or edited)"
        if walk.key is not None:
            walk.keyed += 1
        else:
            walk.unkeyed += 1
    elif "v" in record:
        problem = "unknown audit record version"
    elif walk.seen_v2:  # a downgrade: unkeyed records never follow keyed ones
        problem = "unkeyed (v1) record after keyed records"
    elif walk.key is not None and not walk.allow_unkeyed:
        problem = UNKEYED
    else:
        problem = None if _chained_v1(record, walk.previous) else "record deleted, reordered or edited here"
        walk.unkeyed += 1
    if problem is None:
        walk.previous = _link_of(line)
    return problem


def _start(walk: _Walk, record: dict[str, Any], allow_continued: bool) -> str | None:
    """Where the chain starts: GENESIS, or (a rotated file) the `rotated_from` link its first record names."""
    start = record.get("rotated_from")
    if not isinstance(start, str) or record.get("prev") != start:
        walk.previous = GENESIS
        return None
    if not allow_continued:
        return (f"this file continues an earlier one (its first record follows {start[:16]}…): the records before "
                "it are not here; verify the earlier file(s) first, in order, or accept that with --allow-continued")
    walk.previous = walk.continues_from = start
    return None


def _check_v2(record: dict[str, Any], previous: str, key: bytes | None) -> str | None:
    claimed = record.pop("hash", None)
    if record.get("prev") != previous or not isinstance(claimed, str):
        return "record deleted or reordered before this line"
    if key is not None and not hmac.compare_digest(claimed, _keyed_hash(key, previous, _serialise(record))):
        return EDITED
    return None


def _chained_v1(record: dict[str, Any], previous: str) -> bool:
    if record.get("prev") != previous:
        return False
    claimed = record.pop("hash", None)
    return isinstance(claimed, str) and hmac.compare_digest(claimed, _line_hash(_serialise(record)))
