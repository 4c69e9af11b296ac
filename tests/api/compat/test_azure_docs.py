"""docs/compat.md's Key Vault example, run as written against a real TLS server (only its URL and CA file swapped)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.compat.conftest import KeyVault

DOC = Path(__file__).resolve().parents[3] / "docs" / "compat.md"


def test_the_documented_credential_and_client_work(keyvault: KeyVault, monkeypatch: pytest.MonkeyPatch) -> None:
    text = DOC.read_text()
    found = re.search(r"tested by tests/api/compat/test_azure_docs\.py.*?\n```python\n(.*?)```", text, re.S)
    assert found, "the example block is gone from docs/compat.md"
    code = found.group(1)
    assert "https://127.0.0.1:8200" in code and '"ca.pem"' in code and "verify_challenge_resource=False" in code
    code = code.replace("https://127.0.0.1:8200", keyvault.url).replace('"ca.pem"', repr(str(keyvault.ca)))
    monkeypatch.setenv("KINKO_TOKEN", keyvault.token)
    namespace: dict[str, object] = {"__name__": "compat_doc_example"}
    exec(compile(code, str(DOC), "exec"), namespace)
    keyvault.clients.append(namespace["client"])  # type: ignore[arg-type]  # closed before the server stops
