"""How unseal and seal reach every worker process of one server: an unseal log in anonymous shared memory.

The server's parent process maps an anonymous shared region (never a file) before it forks the workers.
A worker that accepts unseal material over HTTP (a share, a passphrase, "use the key file") checks it against
its own vault first, then appends it to the log; every other worker replays the log through the public
`Vault.unseal` before its next request, so unseal progress and the unsealed state are the same everywhere.
A seal, or a failed unseal attempt with well-formed material, starts a new epoch: every worker drops its keys and
progress (malformed shares and the wrong method are refused first, without a new epoch). Key-file vaults also
auto-unseal in each worker at start. Nothing here is written to disk: the log lives only in
the memory of this server's processes and disappears with them.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import multiprocessing
import struct
import time
from typing import Any

from kinko.errors import KinkoError, TooLarge
from kinko.vault import SealType, Vault, VaultStatus

_SEAL_TYPES = {"share": SealType.SHAMIR, "passphrase": SealType.PASSPHRASE, "key_file": SealType.KEY_FILE}
_HEADER = struct.Struct("<QQI")  # generation, epoch, length of the JSON log
DEFAULT_SIZE = 64 * 1024


class UnsealBroadcast:
    """Create in the parent before forking; every worker calls `sync` per request and `unseal`/`sealed`."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._mem = mmap.mmap(-1, size)  # anonymous + MAP_SHARED: shared with forked children, never on disk
        self._lock = multiprocessing.get_context("fork").Lock()
        self._seen_gen = 0
        self._epoch = 0
        self._applied = 0

    # -- shared state --------------------------------------------------------------------------------------
    def _read(self) -> tuple[int, int, list[list[Any]]]:
        gen, epoch, length = _HEADER.unpack_from(self._mem, 0)
        log: list[list[Any]] = json.loads(self._mem[_HEADER.size:_HEADER.size + length]) if length else []
        return gen, epoch, log

    def _write(self, gen: int, epoch: int, log: list[list[Any]]) -> None:
        raw = json.dumps(log).encode()
        if _HEADER.size + len(raw) > len(self._mem):
            raise TooLarge("too much unseal material in progress; seal and start again")
        self._mem[_HEADER.size:_HEADER.size + len(raw)] = raw
        _HEADER.pack_into(self._mem, 0, gen, epoch, len(raw))

    # -- per request ---------------------------------------------------------------------------------------
    def sync(self, vault: Vault) -> None:
        """Catch up with unseals/seals done by other workers. Cheap when nothing changed."""
        (gen,) = struct.unpack_from("<Q", self._mem, 0)
        if gen == self._seen_gen:
            return
        with self._lock:
            self._sync_locked(vault)

    def _sync_locked(self, vault: Vault) -> None:
        gen, epoch, log = self._read()
        if epoch != self._epoch:
            vault.drop_keys()  # a seal or a failed attempt elsewhere: drop keys and partial progress
            self._epoch, self._applied = epoch, 0
        for kind, value, given_at in log[self._applied:]:
            # A failure was already reported by the publishing worker, which also starts a new epoch.
            with contextlib.suppress(KinkoError):
                _apply(vault, kind, value, given_at)
            self._applied += 1
        self._seen_gen = gen

    def unseal(self, vault: Vault, kind: str, value: str) -> VaultStatus:
        """Apply unseal material here and publish it to the other workers; on failure reset everyone."""
        with self._lock:
            self._sync_locked(vault)
            if not vault.initialized or not vault.status().sealed:
                return vault.status()
            # Material that cannot be right (a malformed share, the wrong method) is refused here, before it
            # can start a new epoch: otherwise anyone could wipe every worker's unseal progress at will.
            vault.precheck_unseal(_SEAL_TYPES[kind], value if kind == "share" else None)
            given_at = time.monotonic()  # one clock for every worker on this host: progress expires alike
            try:
                status = _apply(vault, kind, value, given_at)
            except KinkoError:
                self._new_epoch(vault)
                raise
            gen, epoch, log = self._read()
            log.append([kind, value, given_at])
            self._write(gen + 1, epoch, log)
            self._seen_gen, self._applied = gen + 1, len(log)
            return status

    def sealed(self, vault: Vault) -> None:
        """Call after this worker sealed its vault: every other worker drops its keys too."""
        with self._lock:
            self._new_epoch(vault)

    def _new_epoch(self, vault: Vault) -> None:
        gen, epoch, _ = self._read()
        self._mem[_HEADER.size:] = bytes(len(self._mem) - _HEADER.size)  # wipe old material
        self._write(gen + 1, epoch + 1, [])
        vault.drop_keys()
        self._seen_gen, self._epoch, self._applied = gen + 1, epoch + 1, 0

def _apply(vault: Vault, kind: str, value: str, given_at: float) -> VaultStatus:
    if kind == "share":
        return vault.unseal(share=value, given_at=given_at)
    if kind == "passphrase":
        return vault.unseal(passphrase=value)
    return vault.unseal()  # key file recorded at init


def material(body: dict[str, Any]) -> tuple[str, str]:
    """(kind, value) from an unseal request body; exactly one of share / passphrase / key_file."""
    from kinko.errors import InvalidInput

    given = [k for k in ("share", "passphrase", "key_file") if body.get(k) not in (None, False)]
    if len(given) != 1:
        raise InvalidInput("give exactly one of share, passphrase or key_file")
    kind = given[0]
    return kind, "" if kind == "key_file" else str(body[kind])
