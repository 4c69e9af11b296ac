"""Baseline files: keyed hashes only, 0600, filtering known findings, rejecting malformed files."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from pathlib import Path

import pytest

from kinko.errors import InvalidInput
from kinko.scan.baseline import Baseline, fingerprint, parse_key
from kinko.scan.interface import Finding, FindingKind, Location, Severity

SECRET_A = "Zq8vN2kLp4Rt7wXyQ1"
SECRET_B = "Hy3mK9pW2sLq8RzT4v"


def _finding(secret: str, rule: str = "generic-password", path: str = "app/.env") -> Finding:
    return Finding(rule, "t", Severity.HIGH, FindingKind.SECRET, Location("img.tar", path, line=3, layer_index=0),
                   secret=secret)  # fmt: skip


def test_written_baseline_has_no_plaintext_and_is_private(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    Baseline.from_findings([_finding(SECRET_A), _finding(SECRET_A), _finding(SECRET_B)]).save(target)
    text = target.read_text()
    assert SECRET_A not in text and SECRET_B not in text
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    doc = json.loads(text)
    assert doc["version"] == 2 and doc["kind"] == "kinko-scan-baseline"
    key = bytes.fromhex(doc["key"])
    assert len(key) == 32
    assert len(doc["findings"]) == 2  # duplicates collapse
    # an image finding: the entry is bound to the archive and the in-image path
    want = hmac.new(key, f"generic-password\0img.tar\0app/.env\0{SECRET_A}".encode(), hashlib.sha256).hexdigest()
    entry = {"hash": want, "rule_id": "generic-password", "artifact": "img.tar", "path": "app/.env"}
    assert doc["findings"][0] == entry


def test_filter_drops_known_and_keeps_new(tmp_path: Path) -> None:
    target = tmp_path / "b.json"
    Baseline.from_findings([_finding(SECRET_A)]).save(target)
    loaded = Baseline.load(target)
    moved = _finding(SECRET_A, path="elsewhere/.env")  # same secret and rule in another file: new again
    new = _finding(SECRET_B)
    other_rule = _finding(SECRET_A, rule="generic-token")
    assert loaded.filter([_finding(SECRET_A), moved, new, other_rule]) == [moved, new, other_rule]


def test_keys_are_random_per_baseline() -> None:
    first, second = Baseline.new(), Baseline.new()
    assert first.key != second.key
    assert fingerprint(first.key, _finding(SECRET_A)) != fingerprint(second.key, _finding(SECRET_A))
    assert first.key.hex() not in repr(first)


def test_secretless_findings_are_fingerprinted_by_place() -> None:
    key = Baseline.new().key
    loc = Location("Dockerfile", "Dockerfile", line=3)
    a = Finding("dockerfile-add-url", "t", Severity.MEDIUM, FindingKind.MISCONFIG, loc, message="ADD http://x")
    b = Finding("dockerfile-add-url", "t", Severity.MEDIUM, FindingKind.MISCONFIG, loc, message="ADD http://y")
    assert fingerprint(key, a) == fingerprint(key, a)
    assert fingerprint(key, a) != fingerprint(key, b)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not json", "not valid JSON"),
        ('{"kind": "other", "version": 1}', "not a kinko baseline"),
        ('{"kind": "kinko-scan-baseline", "version": 1, "key": "zz", "findings": []}', "malformed"),
        ('{"kind": "kinko-scan-baseline", "version": 1, "key": "abcd", "findings": []}', "32 bytes"),
        ('{"kind": "kinko-scan-baseline", "version": 1, "key": "' + "00" * 32 + '", "findings": [{}]}', "malformed"),
    ],
)
def test_malformed_baselines_are_rejected(tmp_path: Path, content: str, fragment: str) -> None:
    target = tmp_path / "b.json"
    target.write_text(content)
    with pytest.raises(InvalidInput, match=fragment):
        Baseline.load(target)


def test_missing_baseline_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        Baseline.load(tmp_path / "nope.json")


def test_env_key_is_used_and_never_written(tmp_path: Path) -> None:
    """With KINKO_BASELINE_KEY's key the file holds only a reference, so a committed baseline cannot be brute-forced."""
    key = bytes(range(40))
    target = tmp_path / "b.json"
    Baseline.from_findings([_finding(SECRET_A)], key=bytes(32), env_key=key).save(target)  # env key wins
    text = target.read_text()
    doc = json.loads(text)
    assert doc["key"] == "env:KINKO_BASELINE_KEY"
    assert key.hex() not in text and bytes(32).hex() not in text
    message = f"generic-password\0img.tar\0app/.env\0{SECRET_A}".encode()
    assert doc["findings"][0]["hash"] == hmac.new(key, message, hashlib.sha256).hexdigest()
    loaded = Baseline.load(target, env_key=key)
    assert loaded.key == key
    assert loaded.filter([_finding(SECRET_A), _finding(SECRET_B)]) == [_finding(SECRET_B)]
    assert loaded.to_json() == text  # a rewrite keeps the reference, never the key


def test_env_key_baseline_needs_the_env_key(tmp_path: Path) -> None:
    target = tmp_path / "b.json"
    Baseline.from_findings([_finding(SECRET_A)], env_key=bytes.fromhex("ab" * 32)).save(target)
    with pytest.raises(InvalidInput, match="KINKO_BASELINE_KEY is not set"):
        Baseline.load(target)
    with pytest.raises(InvalidInput, match="not the key this baseline was written with"):
        Baseline.load(target, env_key=bytes.fromhex("cd" * 32))  # a different key: every hash would silently miss
    doc = json.loads(target.read_text())
    assert Baseline.from_document(doc, "doc", env_key=bytes.fromhex("ab" * 32)).filter([_finding(SECRET_A)]) == []


def test_new_takes_the_env_key_or_makes_a_random_one() -> None:
    key = bytes(range(32))
    assert (Baseline.new(key).key, Baseline.new(key).key_from_env) == (key, True)
    assert Baseline.new(None).key_from_env is False and len(Baseline.new(None).key) == 32


@pytest.mark.parametrize(("text", "key"), [
    (None, None), ("", None), ("  \n", None), ("ab" * 32, bytes.fromhex("ab" * 32)),
    (" " + "AB" * 40 + "\n", bytes.fromhex("ab" * 40)),
])  # fmt: skip
def test_parse_key_decodes_hex_of_at_least_32_bytes(text: str | None, key: bytes | None) -> None:
    assert parse_key(text) == key


@pytest.mark.parametrize("value", ["zz" * 32, "ab" * 31, "abc"])
def test_bad_env_key_is_rejected_without_echoing_it(value: str) -> None:
    with pytest.raises(InvalidInput, match="KINKO_BASELINE_KEY must be hex of at least 32 bytes") as caught:
        parse_key(value)
    assert value not in str(caught.value)


def test_embedded_key_baselines_still_load_with_an_env_key(tmp_path: Path) -> None:
    target = tmp_path / "b.json"
    Baseline.from_findings([_finding(SECRET_A)]).save(target)
    assert Baseline.load(target, env_key=bytes.fromhex("ab" * 32)).filter([_finding(SECRET_A)]) == []


def test_a_baselined_secret_copied_to_another_file_is_reported() -> None:
    baseline = Baseline.from_findings([_finding(SECRET_A, path="tests/fixtures/key.py")])
    copied = _finding(SECRET_A, path="src/prod_config.yaml")
    assert baseline.filter([copied]) == [copied]


def test_the_same_file_with_the_secret_on_another_line_is_still_suppressed() -> None:
    baseline = Baseline.from_findings([_finding(SECRET_A, path="tests/key.py")])
    moved = Finding("generic-password", "t", Severity.HIGH, FindingKind.SECRET,
                    Location("img.tar", "tests/key.py", line=40, layer_index=2), secret=SECRET_A)  # fmt: skip
    assert baseline.filter([moved]) == []


def test_image_entries_cover_archive_and_in_image_path() -> None:
    baseline = Baseline.from_findings([_finding(SECRET_A, path="app/.env")])
    other_path = _finding(SECRET_A, path="etc/app.env")
    other_image = Finding("generic-password", "t", Severity.HIGH, FindingKind.SECRET,
                          Location("other.tar", "app/.env", line=3, layer_index=0), secret=SECRET_A)  # fmt: skip
    assert baseline.filter([other_path, other_image]) == [other_path, other_image]


def test_manifest_entries_cover_the_file_not_the_object() -> None:
    def in_manifest(ref: str, file: str = "deploy/app.yaml") -> Finding:
        loc = Location("repo", f"{file}:{ref}:data.password", line=7, object_ref=ref)
        return Finding("generic-password", "t", Severity.HIGH, FindingKind.SECRET, loc, secret=SECRET_A)

    baseline = Baseline.from_findings([in_manifest("Secret/prod/db")])
    renamed = in_manifest("Secret/prod/database")  # same file: the entry still holds
    elsewhere = in_manifest("Secret/prod/db", file="deploy/other.yaml")
    assert baseline.filter([renamed, elsewhere]) == [elsewhere]


def test_version_1_baselines_still_load_with_their_old_meaning(tmp_path: Path) -> None:
    """A v1 entry is HMAC(rule NUL secret): it keeps suppressing the secret wherever it is."""
    key = bytes(range(32))
    digest = hmac.new(key, f"generic-password\0{SECRET_A}".encode(), hashlib.sha256).hexdigest()
    doc = {
        "version": 1,
        "kind": "kinko-scan-baseline",
        "algorithm": "hmac-sha256",
        "key": key.hex(),
        "findings": [{"hash": digest, "rule_id": "generic-password", "artifact": "img.tar", "path": "a"}],
    }
    target = tmp_path / "old.json"
    target.write_text(json.dumps(doc))
    loaded = Baseline.load(target)
    assert loaded.filter([_finding(SECRET_A, path="anywhere/else"), _finding(SECRET_B)]) == [_finding(SECRET_B)]
    assert json.loads(loaded.to_json())["version"] == 1  # rewritten as loaded: its hashes are v1 hashes
    rewritten = Baseline.from_findings([_finding(SECRET_A)], key=loaded.key)
    assert json.loads(rewritten.to_json())["version"] == 2
