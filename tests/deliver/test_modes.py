"""One file-mode policy: the agent's `mode` and the CSI provider's `filePermission` accept and refuse the same modes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from kinko.deliver.agent import load_config
from kinko.deliver.csi.params import TOKENS_ATTR, parse_request
from kinko.deliver.modes import parse_mode, secret_mode
from kinko.errors import InvalidInput, UsageError

REFUSED = ["0777", "0755", "0700", "0500", "0100", "0660", "0620", "0602", "0410", "0401", 0o777, 0o666, 400]
QUIET = ["0400", "0600", "0", "0200", 0o400, 0o600]
WARNED = ["0440", "0444", "0640", "0644", "0404", 0o644]


def agent_mode(tmp: Path, mode: object) -> int | None:
    doc = {"address": "http://x", "token_file": "t", "files": [{"path": "a/b", "destination": "d", "mode": mode}]}
    (tmp / "agent.yaml").write_text(yaml.safe_dump(doc))
    return load_config(tmp / "agent.yaml", env={}).files[0].mode


def csi_mode(mode: object) -> tuple[int | None, tuple[str, ...]]:
    objects = yaml.safe_dump([{"objectName": "p", "secretPath": "a/b", "filePermission": mode}])
    attrs = {"roleName": "r", "objects": objects, "secretProviderClass": "spc",
             "csi.storage.k8s.io/pod.namespace": "prod", TOKENS_ATTR: json.dumps({"kinko": {"token": "t"}})}
    plan = parse_request(json.dumps(attrs), "null", "420")
    return plan.objects[0].file_permission, plan.warnings


@pytest.mark.parametrize("mode", REFUSED)
def test_execute_bits_and_group_other_write_are_refused_by_both(tmp_path: Path, mode: object) -> None:
    # 400 without a leading 0 is decimal in YAML: 0o620, which group can write (the mistake is refused, not kept)
    with pytest.raises(UsageError, match=r"files\[0\]: mode .*(execute|write)"):
        agent_mode(tmp_path, mode)
    with pytest.raises(InvalidInput, match=r"object 'p': filePermission .*(execute|write)"):
        csi_mode(mode)


@pytest.mark.parametrize("mode", QUIET)
def test_owner_only_modes_are_accepted_silently(tmp_path: Path, mode: object,
                                               caplog: pytest.LogCaptureFixture) -> None:
    expected = int(mode, 8) if isinstance(mode, str) else mode
    with caplog.at_level(logging.WARNING):
        assert agent_mode(tmp_path, mode) == expected
        assert csi_mode(mode) == (expected, ())
    assert caplog.records == []


@pytest.mark.parametrize("mode", WARNED)
def test_modes_others_can_read_are_accepted_with_a_warning(tmp_path: Path, mode: object,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    expected = int(mode, 8) if isinstance(mode, str) else mode
    with caplog.at_level(logging.WARNING, logger="kinko.agent"):
        assert agent_mode(tmp_path, mode) == expected
    assert [r.getMessage() for r in caplog.records] == [
        f"agent config: files[0]: mode {expected:04o} makes the secret file readable by group/other "
        "(the default is 0400)"]
    permission, warnings = csi_mode(mode)
    assert permission == expected
    assert warnings == (f"SecretProviderClass 'spc' in namespace 'prod': object 'p': filePermission "
                        f"{expected:04o} makes the secret file readable by group/other (the default is 0400)",)


@pytest.mark.parametrize("text", ["0400", "0o400", "0O400", "400", " 0400 ", "0o0400"])
def test_octal_spellings(text: str) -> None:
    assert parse_mode(text, "m") == 0o400


@pytest.mark.parametrize("value", ["0800", "rw", "0_400", "+400", "-1", "0x100", "0o", "04000", "٤٠٠", 0o1777, -1,
                                   True, 4.0, [0o400], {"m": 1}])
def test_malformed_modes_are_refused_by_both(tmp_path: Path, value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^invalid_input: m "):
        parse_mode(value, "m")
    with pytest.raises(UsageError, match="mode"):
        agent_mode(tmp_path, value)
    with pytest.raises(InvalidInput, match="filePermission"):
        csi_mode(value)


def test_no_mode_means_the_default() -> None:
    assert parse_mode(None, "m") is None and parse_mode("", "m") is None
    assert secret_mode(0o400, "m") is None
