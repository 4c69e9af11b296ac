"""The keyring: numbered AES-256 key terms. New writes use the newest term; older terms stay readable."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field

from kinko.errors import CorruptVault

KEY_BYTES = 32


@dataclass
class Keyring:
    """Terms are kept as bytearrays so `wipe()` can overwrite them when the vault seals (best effort)."""

    terms: dict[int, bytearray] = field(default_factory=dict, repr=False)
    created: dict[int, float] = field(default_factory=dict)

    @classmethod
    def new(cls) -> Keyring:
        ring = cls()
        ring.add_term()
        return ring

    @property
    def active_term(self) -> int:
        return max(self.terms)

    def key(self, term: int) -> bytes:
        return bytes(self.terms[term])

    def add_term(self) -> int:
        term = (max(self.terms) + 1) if self.terms else 1
        self.terms[term] = bytearray(os.urandom(KEY_BYTES))
        self.created[term] = time.time()
        return term

    def to_bytes(self) -> bytes:
        doc = {
            str(t): {"key": base64.b64encode(bytes(k)).decode(), "created": self.created.get(t, 0.0)}
            for t, k in self.terms.items()
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Keyring:
        try:
            doc = json.loads(raw)
            ring = cls()
            for t, entry in doc.items():
                key = base64.b64decode(entry["key"])
                if len(key) != KEY_BYTES:
                    raise ValueError("bad key length")
                ring.terms[int(t)] = bytearray(key)
                ring.created[int(t)] = float(entry["created"])
        except (ValueError, KeyError, TypeError):
            raise CorruptVault("keyring is unreadable") from None
        if not ring.terms:
            raise CorruptVault("keyring is empty")
        return ring

    def wipe(self) -> None:
        for key in self.terms.values():
            key[:] = b"\0" * len(key)
        self.terms.clear()
