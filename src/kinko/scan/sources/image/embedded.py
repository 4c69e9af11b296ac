"""Content hidden one level down inside a layer file: base64 `data:` values of Kubernetes Secret YAML."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

_MAX_YAML = 4 << 20  # bigger YAML files are scanned raw only
_KIND_SECRET = re.compile(rb"^kind:\s*[\"']?Secret[\"']?\s*$", re.M)
_DATA_KEY = re.compile(rb"^(\s*)data:\s*$")
_ENTRY = re.compile(rb"^(\s+)([A-Za-z0-9._-]+):\s*[\"']?([A-Za-z0-9+/]{8,}={0,2})[\"']?\s*$")


def is_yaml(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def k8s_secret_values(data: bytes) -> Iterator[tuple[str, int, bytes]]:
    """(key, line, decoded value) for every base64 entry under `data:` in a `kind: Secret` YAML document.

    Base64 is not encryption: a Secret manifest baked into an image leaks its values as surely as plain text.
    A line scanner (not a YAML parser) keeps this cheap and safe on hostile input; multi-document files work.
    """
    if len(data) > _MAX_YAML or not _KIND_SECRET.search(data):
        return
    data_indent: int | None = None
    for lineno, line in enumerate(data.splitlines(), start=1):
        if line.startswith(b"---"):
            data_indent = None
            continue
        start = _DATA_KEY.match(line)
        if start:
            data_indent = len(start.group(1))
            continue
        if data_indent is None:
            continue
        entry = _ENTRY.match(line)
        if entry and len(entry.group(1)) > data_indent:
            try:
                value = base64.b64decode(entry.group(3), validate=True)
            except (binascii.Error, ValueError):
                continue
            yield entry.group(2).decode("ascii"), lineno, value
        elif line.strip() and len(line) - len(line.lstrip()) <= data_indent:
            data_indent = None  # left the data: block
