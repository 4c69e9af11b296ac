"""Fuzz the agent config loader: whatever YAML (or bytes) agent.yaml holds, only UsageError/InvalidInput, quickly."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from kinko.deliver.agent import load_config
from kinko.errors import InvalidInput, UsageError
from tests.fuzz.budget import fuzz
from tests.fuzz.yaml_inputs import ANY_TEXT, FRAGMENTS, NESTED, VALUES

TRICKY = st.sampled_from([
    "0777", "0400", "0644", "0o600", "400", "90s", "1h30m", "2d", "nan", ".nan", "-1", "1e999", "~", "~nobody/x",
    "..", "../x", "/abs", "a/b", "a\nb", "\x00", "\ud800", "..data", "HUP", "SIGKILL", "NOPE", "2001-13-45", "",
    "http://x", "é" * 130, "x" * 300, "{{ .key }}", "{{ x | y }}",
])
LEAF = VALUES | TRICKY
FILE_KEYS = ["path", "key", "template", "destination", "name", "mode"]
TOP_KEYS = ["address", "ca_file", "token_file", "kubernetes", "interval", "max_backoff", "files", "exec", "signal",
            "shared_directories"]
#: Mostly-valid file entries with a few settings fuzzed.
FILE = st.dictionaries(st.sampled_from(FILE_KEYS) | ANY_TEXT, LEAF, max_size=3).map(
    lambda fuzzed: {"path": "team/app/db", "destination": "out", **fuzzed})
SECTIONS = {
    "files": st.lists(FILE | LEAF, max_size=4) | LEAF,
    "kubernetes": st.dictionaries(st.sampled_from(["role", "jwt_file"]) | ANY_TEXT, LEAF, max_size=3) | LEAF,
    "exec": st.dictionaries(st.just("command") | ANY_TEXT, st.lists(LEAF, max_size=3) | LEAF, max_size=2) | LEAF,
    "signal": st.dictionaries(st.sampled_from(["pid_file", "signal"]) | ANY_TEXT, LEAF, max_size=3) | LEAF,
}


@st.composite
def configs(draw: st.DrawFn) -> str | bytes:
    """A near-valid config with some settings fuzzed, or YAML fragments, deep nesting, or raw bytes."""
    kind = draw(st.sampled_from(["settings", "settings", "settings", "fragments", "nested", "bytes", "text"]))
    if kind == "fragments":
        return "".join(draw(st.lists(FRAGMENTS | st.sampled_from(["files:\n", "  - path: a\n", "    mode: "]),
                                     max_size=60)))
    if kind == "nested":
        return "files: " + draw(NESTED)
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(ANY_TEXT)
    doc: dict[object, object] = {"address": "http://x", "token_file": "t", "files": [{"path": "a", "destination": "d"}]}
    for key in draw(st.lists(st.sampled_from(TOP_KEYS) | ANY_TEXT, max_size=3)):
        doc[key] = draw(SECTIONS.get(key, LEAF)) if isinstance(key, str) else draw(LEAF)
    return yaml.safe_dump(doc, allow_unicode=True)



@fuzz
@given(configs())
def test_load_config_raises_only_usage_errors(tmp_path: Path, text: str | bytes) -> None:
    file = tmp_path / "agent.yaml"
    try:
        file.write_bytes(text if isinstance(text, bytes) else text.encode(errors="surrogatepass"))
    except OSError:  # pragma: no cover - the test machine's own problem, not the loader's
        return
    started = time.monotonic()
    try:
        load_config(file, env={})
    except (UsageError, InvalidInput) as exc:
        assert exc.message and "\n" not in exc.message
    assert time.monotonic() - started < 5.0
