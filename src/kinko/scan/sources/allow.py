"""The inline `kinko:allow` comment for file sources: structural findings on such a line are dropped too.

The detector engine already drops its own matches there.
"""

from __future__ import annotations

ALLOW_MARKER = b"kinko:allow"


def allowed_lines(data: bytes) -> set[int]:
    """1-based numbers of lines carrying the inline `kinko:allow` comment."""
    if ALLOW_MARKER not in data:
        return set()
    return {i + 1 for i, line in enumerate(data.split(b"\n")) if ALLOW_MARKER in line}
