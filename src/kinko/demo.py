"""`make run`: a short, real walk-through on a fresh local vault file (init -> unseal -> put -> get -> list ->
delete -> recover). It prints what it does and only the one secret value it is asked to read."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from kinko.errors import KinkoError
from kinko.vault import Caller, open_vault


def step(text: str) -> None:
    print(f"\n$ {text}")


def main(directory: str | None = None) -> int:
    workdir = Path(directory or tempfile.mkdtemp(prefix="kinko-demo-"))
    path = workdir / "vault.db"
    vault = open_vault(path, create=True)
    session = vault.session(Caller.local_operator())  # what every `kinko` command works through

    step(f"kinko operator init --vault {path}   (Shamir: 5 shares, threshold 3)")
    result = session.init(shares=5, threshold=3)
    print(f"initialised vault {result.vault_id}; 5 unseal shares and a root token were issued")
    print("(a real init prints them once; the demo keeps them in memory and never shows them)")
    print(f"vault file mode: {oct(os.stat(path).st_mode & 0o777)}")

    step("kinko operator unseal   (3 of 5 shares)")
    for share in result.shares[:3]:
        status = session.unseal(share=share)
        print(f"share accepted; sealed={status.sealed} progress={status.progress}/{status.threshold}")

    step("kinko secret put shop/db/url --type connection-string -   (value read from stdin)")
    db_url = f"postgresql://shop:{secrets.token_urlsafe(12)}@db.internal:5432/shop"
    info = session.put("shop/db/url", db_url.encode(), content_type="connection-string")
    print(f"wrote {info.path} version {info.version} (AES-256-GCM, key term {info.key_term})")

    step("kinko secret put shop/api/stripe key=@key.txt --type Opaque")
    session.put("shop/api/stripe", {"key": b"sk_demo_" + secrets.token_hex(12).encode()}, content_type="Opaque")
    print("wrote shop/api/stripe version 1")

    step("kinko secret get shop/db/url")
    secret = session.get("shop/db/url")
    value = secret.value
    print(value.decode() if isinstance(value, bytes) else "")
    print(f"# library only: Secret.metadata, sealed with the value (no password): {dict(secret.metadata)}")

    step("kinko secret list shop/")
    print("\n".join(session.list("shop/").keys))

    step("kinko secret delete shop/api/stripe")
    deleted = session.delete("shop/api/stripe")
    print(f"deleted shop/api/stripe; recoverable until {deleted.to_dict()['scheduled_purge']}")
    step("kinko secret list --deleted")
    for item in session.list_deleted():
        print(f"{item.path}  deleted={item.to_dict()['deleted']}  purge_after={item.to_dict()['scheduled_purge']}")

    step("kinko secret recover shop/api/stripe")
    recovered = session.recover("shop/api/stripe")
    print(f"recovered {recovered.path} (version {recovered.current_version})")

    step("kinko operator seal")
    session.seal()
    try:
        session.get("shop/db/url")
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
