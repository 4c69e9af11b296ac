"""Fuzz the manifest loader (kinko.k8s.manifests) with YAML and JSON, and the scanner's manifest rules over it.

Properties: `load` never raises (a bad or hostile document becomes a DocError) and stays bounded; YAML and JSON
written from data load back as that data, every node with a line inside the text; the Kubernetes rules accept
whatever loads, reporting problems as warnings.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kinko.k8s.manifests import DocError, Document, PathKey, load
from kinko.scan.detect import default_detector
from kinko.scan.sources.kubernetes.source import manifest_findings
from tests.fuzz.budget import EXAMPLES, fuzz

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.text(max_size=20), st.sampled_from(["0644", "0o600", "420", "yes", "~", "null", "---", "- a", "&a", "*a"]),
)  # fmt: skip
_KEYS = st.one_of(st.text(max_size=10), st.sampled_from(["kind", "apiVersion", "data", "stringData", "spec",
                                                         "metadata", "items", "volumes", "env", "<<"]))  # fmt: skip
DATA = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=8)

_PIECES = ["kind: Secret\n", "kind: Pod\n", "kind: List\nitems:\n", "apiVersion: v1\n", "- ", "  ", "---\n", "...\n",
           "data: {a: '!!'}\n", "spec:\n", "volumes: [{secret: {defaultMode: x}}]\n", "&a [1]\n", "*a\n", "*b\n",
           "<<: *a\n", "{", "}", "[", "]", "\t", ": ", "? ", '"', "'", "0o7\n", "!!binary x\n", "!!set {a}\n",
           "!!timestamp 2001-13-45\n", "!!python/object:os.system x\n", "%YAML 1.1\n", "%TAG ! x\n", "|\n", ">-\n",
           "#", "\ufeff", "\x00", "\r\n", "a: &x\n", "  b: *x\n", "key: [*x, *x]\n"]  # fmt: skip
TEXT = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=6)), max_size=30).map("".join),
    DATA.map(lambda d: json.dumps(d)[:200]),
)


def _laughs(width: int, levels: int) -> str:
    """A billion-laughs document: each level's list holds `width` aliases of the level below."""
    lines = ["a0: &a0 [lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


BOMBS = st.one_of(
    st.builds(_laughs, st.integers(2, 9), st.integers(2, 8)),
    st.integers(1, 600).map(lambda n: "k: " + "[" * n + "]" * n + "\n"),
    st.integers(1, 200).map(lambda n: "k:\n" + "".join("  " * i + "- \n" for i in range(n))),
)


def _check_documents(docs: list[Document | DocError], text: str) -> None:
    last = text.count("\n") + 1
    indexes = [d.index for d in docs]
    assert indexes == sorted(indexes) and all(i >= 0 for i in indexes)
    for doc in docs:
        if isinstance(doc, DocError):
            assert doc.message
            continue
        assert all(1 <= line <= last for line in doc.lines.values())


def _load_checked(text: str, is_json: bool) -> list[Document | DocError]:
    start = time.monotonic()
    docs = list(load(text, is_json=is_json))
    assert time.monotonic() - start < 10  # a loaded CI box; the worst documents take well under a second
    assert all(isinstance(d, Document | DocError) for d in docs)
    _check_documents(docs, text)
    return docs


@fuzz
@given(TEXT, st.booleans())
def test_load_never_raises(text: str, is_json: bool) -> None:
    _load_checked(text, is_json)


@settings(fuzz, max_examples=max(EXAMPLES // 15, 10))  # each bomb costs up to the limits: fewer examples
@given(st.lists(BOMBS, min_size=1, max_size=2).map("---\n".join))
def test_bombs_are_refused_as_limits_in_bounded_time(text: str) -> None:
    docs = _load_checked(text, False)
    assert all(d.limit for d in docs if isinstance(d, DocError))


def _paths(data: object, base: PathKey = ()) -> list[PathKey]:
    out = [base]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*base, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*base, i))
    return out


def _same(a: object, b: object) -> bool:
    """Equality where floats may differ in their last bit after a text round trip (-0.0 and 0.0 are alike)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@fuzz
@given(st.lists(DATA, min_size=1, max_size=2))
def test_yaml_written_from_data_loads_back(objects: list[Any]) -> None:
    # allow_unicode=False: PyYAML writes U+0085 raw, and reads it back as a line break (its own round-trip bug)
    text = yaml.safe_dump_all(objects, explicit_start=True)
    docs = list(load(text, is_json=False))
    assert all(isinstance(d, Document) for d in docs), docs
    assert len(docs) == len(objects) and all(_same(d.data, o) for d, o in zip(docs, objects, strict=True))
    _check_documents(docs, text)  # type: ignore[arg-type]
    for doc, obj in zip(docs, objects, strict=True):
        assert isinstance(doc, Document)
        assert all(doc.line(path) is not None for path in _paths(obj))


@fuzz
@given(DATA, st.booleans())
def test_json_written_from_data_loads_back(obj: Any, indent: bool) -> None:
    [doc] = load(json.dumps(obj, indent=2 if indent else None), is_json=True)
    assert isinstance(doc, Document) and _same(doc.data, obj)


_KINDS = st.sampled_from(["Secret", "ConfigMap", "Pod", "Deployment", "CronJob", "List", "SecretList", "Job"])
MANIFESTS = st.builds(lambda kind, body: {"apiVersion": "v1", "kind": kind, **body}, _KINDS,
                      st.dictionaries(st.sampled_from(["metadata", "data", "stringData", "spec", "items", "type",
                                                       "immutable"]), DATA, max_size=4))  # fmt: skip


@fuzz
@given(st.one_of(TEXT, st.lists(MANIFESTS, min_size=1, max_size=2).map(yaml.safe_dump_all)), st.booleans())
def test_manifest_rules_accept_whatever_loads(text: str, as_json: bool) -> None:
    warnings: list[str] = []
    skipped: list[str] = []
    path = "m.json" if as_json else "m.yaml"
    data = text.encode("utf-8", "surrogatepass")
    # default_detector() is built once per process and shared
    findings = manifest_findings(data, "m", path, default_detector(), warnings.append, skip=skipped.append)
    assert all(f.location.line is None or f.location.line >= 1 for f in findings)
    assert all(isinstance(w, str) and w for w in warnings + skipped)
