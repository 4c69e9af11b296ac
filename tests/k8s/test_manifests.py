"""kinko.k8s.manifests: every document of a file with its node lines; broken or hostile documents become DocErrors."""

from __future__ import annotations

import time

from kinko.k8s.manifests import MAX_DEPTH, DocError, Document, load


def documents(text: str, *, is_json: bool = False) -> list[Document | DocError]:
    return list(load(text, is_json=is_json))


def test_multi_document_yaml_keeps_each_nodes_line() -> None:
    text = "kind: Secret\nmetadata:\n  name: a\n---\nkind: Pod\nspec:\n  volumes:\n  - name: v\n"
    first, second = documents(text)
    assert isinstance(first, Document) and isinstance(second, Document)
    assert (first.index, second.index) == (0, 1)
    assert first.data == {"kind": "Secret", "metadata": {"name": "a"}}
    assert first.line(("metadata", "name")) == 3
    assert second.line(("spec", "volumes", 0, "name")) == 8


def test_line_falls_back_to_the_nearest_ancestor() -> None:
    [doc] = documents("kind: Pod\nspec:\n  containers: []\n")
    assert isinstance(doc, Document)
    assert doc.line(("spec", "containers", 3, "env")) == 3
    assert doc.line(("nothing", "here")) == 1


def test_a_broken_document_does_not_hide_the_next_one() -> None:
    docs = documents("kind: A\n---\nkind: [\n---\nkind: C\n")
    assert [type(d).__name__ for d in docs] == ["Document", "DocError", "Document"]
    broken = docs[1]
    assert isinstance(broken, DocError) and broken.index == 1 and "invalid YAML at line" in broken.message
    assert not broken.limit  # not YAML at all: nothing a limit kept from being checked


def test_empty_documents_and_separators_are_skipped() -> None:
    docs = documents("---\n---\n\nkind: A\n---\n")
    assert len(docs) == 1 and isinstance(docs[0], Document) and docs[0].data == {"kind": "A"}


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    start = time.monotonic()
    [doc] = documents("\n".join(lines) + "\n")
    assert time.monotonic() - start < 5
    assert isinstance(doc, DocError) and "alias bomb" in doc.message and doc.limit


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    deep = "kind: Pod\nspec: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    [doc] = documents(deep)
    assert isinstance(doc, DocError) and doc.limit


def test_nesting_past_the_recursion_limit_is_a_limit_too() -> None:
    [doc] = documents("spec: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert isinstance(doc, DocError) and doc.limit and doc.message == "nested too deeply (over 64 levels); skipped"
    [doc] = documents("[" * 50_000 + "]" * 50_000, is_json=True)
    assert isinstance(doc, DocError) and doc.limit and doc.message == "JSON nested too deeply; skipped"


def test_json_is_one_document_without_a_line_map() -> None:
    [doc] = documents('{"kind": "Secret", "data": {"a": "b"}}', is_json=True)
    assert isinstance(doc, Document) and doc.data == {"kind": "Secret", "data": {"a": "b"}}
    assert doc.line(("data", "a")) is None
    [bad] = documents("{", is_json=True)
    assert isinstance(bad, DocError) and bad.message.startswith("invalid JSON") and not bad.limit
