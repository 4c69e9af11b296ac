"""`make run`: a short, real walk-through on a fresh local vault file (init -> unseal -> put -> get -> list ->
delete -> recover). It prints what it does and only the one secret value it is asked to read."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from kinko.core.model import Caller
from kinko.errors import KinkoError
from kinko.vault import open_vault


def step(text: str) -> None:
    print(f"\n$ {text}")


def main(directory: str | None = None) -> int:
    workdir = Path(directory or tempfile.mkdtemp(prefix="kinko-demo-"))
    path = workdir / "vault.db"
    caller = Caller.local_operator()
    vault = open_vault(path, create=True)

    step(f"kinko operator init --vault {path}   (Shamir: 5 shares, threshold 3)")
    result = vault.init(shares=5, threshold=3)
    print(f"initialised vault {result.vault_id}; 5 unseal shares and a root token were issued")
    print("(a real init prints them once; the demo keeps them in memory and never shows them)")
    print(f"vault file mode: {oct(os.stat(path).st_mode & 0o777)}")

    step("kinko operator unseal   (3 of 5 shares)")
    for share in result.shares[:3]:
        status = vault.unseal(share=share)
        print(f"share accepted; sealed={status.sealed} progress={status.progress}/{status.threshold}")

    step("kinko secret put shop/db/url --type connection-string -   (value read from stdin)")
    db_url = f"postgresql://shop:{secrets.token_urlsafe(12)}@db.internal:5432/shop"
    info = vault.put(caller, "shop/db/url", db_url.encode(), content_type="connection-string")
    print(f"wrote {info.path} version {info.version} (AES-256-GCM, key term {info.key_term})")

    step("kinko secret put shop/api/stripe key=@key.txt --type Opaque")
    vault.put(caller, "shop/api/stripe", {"key": b"sk_demo_" + secrets.token_hex(12).encode()}, content_type="Opaque")
    print("wrote shop/api/stripe version 1")

    step("kinko secret get shop/db/url")
    secret = vault.get(caller, "shop/db/url")
    value = secret.value
    print(value.decode() if isinstance(value, bytes) else "")
    print(f"# library only: Secret.metadata, sealed with the value (no password): {dict(secret.metadata)}")

    step("kinko secret list shop/")
    print("\n".join(vault.list(caller, "shop/").keys))

    step("kinko secret delete shop/api/stripe")
    deleted = vault.delete(caller, "shop/api/stripe")
    print(f"deleted shop/api/stripe; recoverable until {deleted.to_dict()['scheduled_purge']}")
    step("kinko secret list --deleted")
    for item in vault.list_deleted(caller):
        print(f"{item.path}  deleted={item.to_dict()['deleted']}  purge_after={item.to_dict()['scheduled_purge']}")

    step("kinko secret recover shop/api/stripe")
    recovered = vault.recover(caller, "shop/api/stripe")
    print(f"recovered {recovered.path} (version {recovered.current_version})")

    step("kinko operator seal")
    vault.seal(caller)
    try:
        vault.get(caller, "shop/db/url")
    except KinkoError as exc:
        print(f"vault sealed\n\n$ kinko secret get shop/db/url\nerror: {exc}")
    vault.close()

    raw = b"".join(p.read_bytes() for p in workdir.iterdir() if p.name.startswith("vault.db"))
    print(f"\nplaintext of the secret in the vault files: {'FOUND (bug!)' if db_url.encode() in raw else 'absent'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(sys.argv[1]))
    with tempfile.TemporaryDirectory(prefix="kinko-demo-") as scratch:  # removed afterwards: it holds a vault
        sys.exit(main(scratch))
