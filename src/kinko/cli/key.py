"""`kinko key`: named keys that never leave the vault — create, list, show, rotate, config, delete, and encrypt,
decrypt, rewrap, datakey, sign, verify through a VaultSession (the same operations as Vault's transit API)."""

from __future__ import annotations

import base64
import datetime
import sys
from collections.abc import Callable
from typing import Any

import click

from kinko.cli._common import emit, handle_errors, output_option, read_source, vault_option
from kinko.cli._session import open_session
from kinko.vault import KEY_TYPES, KeyInfo

DATA_HELP = "the data: literal text, `@file` or `-` (stdin)"


@click.group("key")
def cli() -> None:
    """Named keys: encrypt, decrypt, sign and verify without the key ever leaving the vault."""


def _show(info: KeyInfo) -> str:
    lines = [f"name: {info.name}", f"type: {info.type}", f"latest_version: {info.latest_version}",
             f"min_decryption_version: {info.min_decryption_version}",
             f"min_encryption_version: {info.min_encryption_version}",
             f"deletion_allowed: {str(info.deletion_allowed).lower()}", f"derived: {str(info.derived).lower()}",
             f"exportable: {str(info.exportable).lower()}", "versions:"]
    for number, (created, _name, public) in sorted(info.versions.items()):
        when = datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat(timespec="seconds")
        lines.append(f"  {number}: created {when}" + ("" if not public else " (public key below)"))
        if public:
            lines.append("    " + public.strip().replace("\n", "\n    "))
    return "\n".join(lines)


def _key_command(name: str, help_text: str) -> Callable[[Callable[..., Any]], click.Command]:
    """A `kinko key NAME ...` command; decorators written above it append their parameters bottom-up."""

    def register(func: Callable[..., Any]) -> click.Command:
        func.__doc__ = help_text
        wrapped = handle_errors(output_option(click.argument("name")(vault_option(func))))
        return cli.command(name)(wrapped)
    return register


@click.option("--type", "key_type", type=click.Choice(KEY_TYPES), default="aes256-gcm96", show_default=True)
@click.option("--derived", is_flag=True, help="Derive a key per --context (AES/ChaCha keys).")
@_key_command("create", "Create a key (an existing key is shown unchanged).")
def create(vault_path: str, name: str, output: str, key_type: str, derived: bool) -> None:
    info = open_session(vault_path).create_key(name, key_type=key_type, derived=derived)
    emit(output, info.to_dict(), lambda: _show(info))


@_key_command("show", "Show a key's settings, versions and public keys (never key material).")
def show(vault_path: str, name: str, output: str) -> None:
    info = open_session(vault_path).read_key(name)
    emit(output, info.to_dict(), lambda: _show(info))


@cli.command("list")
@vault_option
@output_option
@handle_errors
def list_(vault_path: str, output: str) -> None:
    """List key names."""
    names = open_session(vault_path).list_keys()
    emit(output, names, lambda: "\n".join(names))


@_key_command("rotate", "Add a new version; new encryptions and signatures use it.")
def rotate(vault_path: str, name: str, output: str) -> None:
    info = open_session(vault_path).rotate_key(name)
    emit(output, info.to_dict(), lambda: f"rotated {name}: version {info.latest_version}")


@click.option("--min-decryption-version", type=int, help="Refuse ciphertexts and signatures of older versions.")
@click.option("--min-encryption-version", type=int, help="The oldest version an operation may ask for (0: any).")
@click.option("--deletion-allowed/--no-deletion-allowed", default=None, help="Whether `key delete` may delete it.")
@_key_command("config", "Change a key's version limits or whether it may be deleted.")
def config(vault_path: str, name: str, output: str, min_decryption_version: int | None,
           min_encryption_version: int | None, deletion_allowed: bool | None) -> None:
    info = open_session(vault_path).configure_key(name, min_decryption_version=min_decryption_version,
                                                  min_encryption_version=min_encryption_version,
                                                  deletion_allowed=deletion_allowed)
    emit(output, info.to_dict(), lambda: _show(info))


@_key_command("delete", "Delete a key for good (only once `key config --deletion-allowed` was set).")
def delete(vault_path: str, name: str, output: str) -> None:
    open_session(vault_path).delete_key(name)
    emit(output, {"deleted": name}, lambda: f"deleted key {name}")


def _aad(value: str | None) -> bytes:
    return b"" if value is None else read_source(value)


def _ctx(value: str | None) -> bytes | None:
    return None if value is None else read_source(value)


_AAD = click.option("--associated-data", "aad", help="Associated data the ciphertext is bound to (text, @file, -).")
_CONTEXT = click.option("--context", help="The derivation context of a derived key (text, @file, -).")


@click.argument("data")
@_AAD
@_CONTEXT
@_key_command("encrypt", f"Encrypt DATA ({DATA_HELP}); prints vault:v<N>:<base64>.")
def encrypt(vault_path: str, name: str, output: str, data: str, aad: str | None, context: str | None) -> None:
    ciphertext = open_session(vault_path).encrypt(name, read_source(data), associated_data=_aad(aad),
                                                  context=_ctx(context))
    emit(output, {"ciphertext": ciphertext}, lambda: ciphertext)


@click.argument("ciphertext")
@_AAD
@_CONTEXT
@_key_command("decrypt", "Decrypt a vault:v<N>: CIPHERTEXT; writes the plaintext bytes to stdout.")
def decrypt(vault_path: str, name: str, output: str, ciphertext: str, aad: str | None, context: str | None) -> None:
    plain = open_session(vault_path).decrypt(name, read_source(ciphertext).decode().strip(),
                                             associated_data=_aad(aad), context=_ctx(context))
    if output == "json":
        emit(output, {"plaintext": base64.b64encode(plain).decode()}, str)
    else:
        sys.stdout.buffer.write(plain)
        sys.stdout.buffer.flush()


@click.argument("ciphertext")
@_AAD
@_CONTEXT
@_key_command("rewrap", "Re-encrypt CIPHERTEXT with the latest version (the plaintext is never shown).")
def rewrap(vault_path: str, name: str, output: str, ciphertext: str, aad: str | None, context: str | None) -> None:
    new = open_session(vault_path).rewrap_ciphertext(name, read_source(ciphertext).decode().strip(),
                                                     associated_data=_aad(aad), context=_ctx(context))
    emit(output, {"ciphertext": new}, lambda: new)


@click.option("--bits", type=click.Choice(["128", "256", "512"]), default="256", show_default=True)
@click.option("--wrapped-only", is_flag=True, help="Only the wrapped key (decrypt it where it is needed).")
@_key_command("datakey", "A new random data key wrapped by the key (and in base64 unless --wrapped-only).")
def datakey(vault_path: str, name: str, output: str, bits: str, wrapped_only: bool) -> None:
    wrapped, plain = open_session(vault_path).data_key(name, bits=int(bits), plaintext=not wrapped_only)
    shown = None if plain is None else base64.b64encode(plain).decode()
    emit(output, {"ciphertext": wrapped, "plaintext": shown},
         lambda: wrapped if shown is None else f"ciphertext: {wrapped}\nplaintext: {shown}")


_HASH = click.option("--hash", "hash_name", default="sha2-256", show_default=True,
                     help="sha2-224/256/384/512, sha3-*, sha1 (ignored by ed25519).")
_ALGO = click.option("--signature-algorithm", type=click.Choice(["pss", "pkcs1v15"]), default="pss",
                     show_default=True, help="RSA keys only.")


@click.argument("data")
@_HASH
@_ALGO
@_key_command("sign", f"Sign DATA ({DATA_HELP}); prints vault:v<N>:<base64>.")
def sign(vault_path: str, name: str, output: str, data: str, hash_name: str, signature_algorithm: str) -> None:
    signature = open_session(vault_path).sign(name, read_source(data), hash_name=hash_name,
                                              signature_algorithm=signature_algorithm)
    emit(output, {"signature": signature}, lambda: signature)


@click.argument("data")
@click.argument("signature")
@_HASH
@_ALGO
@_key_command("verify", f"Check SIGNATURE over DATA ({DATA_HELP}); exit 1 if it does not verify.")
def verify(vault_path: str, name: str, output: str, signature: str, data: str, hash_name: str,
           signature_algorithm: str) -> None:
    valid = open_session(vault_path).verify(name, read_source(data), signature, hash_name=hash_name,
                                            signature_algorithm=signature_algorithm)
    emit(output, {"valid": valid}, lambda: "valid" if valid else "invalid")
    if not valid:
        sys.exit(1)
