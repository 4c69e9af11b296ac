"""String constants of compiled Python (`.pyc`/`.pyo`), read from the marshal bytes without unmarshalling them.

In a `.pyc` the constants of `TOKEN = "ghp_..."` sit next to each other with only a type byte and a length between
them (`...Dz\\x10Xk9#...`), so a byte scan sees one long run and a key's end boundary never matches (Trivy finds
such keys; a plain byte scan does not). `marshal.loads` would separate them, but it is documented as unsafe on
hostile input and its code-object layout changes with every Python version; this reads only the string records
(types `s a A u t z Z`, with or without the ref flag), which have kept their shape since Python 3.4, and gives them
back one per line as `"value"`. Each record found is skipped over whole, so text inside a string is never read as
a record. The constants stored to a name or attribute are given again as `NAME = "value"` lines (`pyc_code.py`
reads that from the bytecode), so a generic `password = "..."` is found in a `.pyc` as it is in the source.
"""

from __future__ import annotations

import re

from kinko.scan.sources.pyc_code import pyc_assignments

PYC_SUFFIXES = (".pyc", ".pyo")
_ASCII_TEXT = re.compile(rb"[\x09\x0a\x0d\x20-\x7e]*")
_MIN_LEN = 6
# A string record that may hold text: a type byte (with or without the 0x80 ref flag), its length (one byte for
# z/Z; four little-endian bytes, under 1 MiB, for s a A u t) and at least _MIN_LEN text-looking bytes. The regex
# only finds candidates quickly (most of a .pyc is bytecode and numbers); each is then checked whole.
_RECORD = re.compile(
    rb"[zZ\xfa\xda]([\x06-\xff])(?=[\x09\x0a\x0d\x20-\x7e]{6})"
    rb"|[aAuts\xe1\xc1\xf5\xf4\xf3]([\x06-\xff][\x00-\xff][\x00-\x0f]\x00)(?=[\x09\x0a\x0d\x20-\x7e\x80-\xff]{6})",
    re.DOTALL,
)


def is_pyc(name: str, data: bytes) -> bool:
    """A compiled Python file: its name, and the magic number's fixed `\\r\\n` tail."""
    return name.lower().endswith(PYC_SUFFIXES) and data[2:4] == b"\r\n"


def pyc_strings(data: bytes) -> bytes:
    """The printable string constants of a `.pyc`, one per line, quoted (empty when there are none)."""
    out: list[bytes] = []
    pos = 8  # the header (magic, flags / mtime, size) holds no strings
    while (record := _RECORD.search(data, pos)) is not None:
        short, long = record.group(1), record.group(2)
        size = short[0] if short is not None else int.from_bytes(long, "little")
        start = record.end()
        value = data[start : start + size]
        if len(value) == size and _is_text(value):
            out.append(b'"' + value.replace(b"\n", b"\\n") + b'"')
            pos = start + size  # never read a record inside this string
        else:
            pos = record.start() + 1
    for name, constant in pyc_assignments(data):  # `NAME = "value"`: what a generic rule needs to see
        stored = constant.encode("utf-8", "surrogatepass")
        if _is_text(stored) and len(stored) >= _MIN_LEN:
            out.append(name.encode("utf-8", "surrogatepass") + b' = "' + stored.replace(b"\n", b"\\n") + b'"')
    return b"\n".join(out) + b"\n" if out else b""


def _is_text(value: bytes) -> bool:
    if _ASCII_TEXT.fullmatch(value):
        return True
    try:  # types u/t: UTF-8 text with non-ASCII letters
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable() or all(c.isprintable() or c in "\n\t\r" for c in text)
