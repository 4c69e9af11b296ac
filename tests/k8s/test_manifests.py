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
    start = time.process_time()  # CPU time: a busy machine must not fail a test about work done
    [doc] = documents("\n".join(lines) + "\n")
    assert time.process_time() - start < 5
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


def test_a_control_character_is_invalid_yaml_not_a_crash() -> None:
    """Found by tests/fuzz/test_k8s_manifests.py: PyYAML's reader refuses \\x1f while the loader is built, which
    was outside the error handling (ReaderError escaped `load`)."""
    first, second = documents("kind: Secret\x1f\n---\nkind: Pod\n")
    assert isinstance(first, DocError) and not first.limit and "invalid YAML" in first.message
    assert isinstance(second, Document) and second.data == {"kind": "Pod"}


def test_deep_flow_nesting_is_refused_in_bounded_time() -> None:
    """Found by fuzzing: PyYAML's scanner and composer took seconds per document on a few thousand `[`."""
    start = time.process_time()  # CPU time: a busy machine must not fail a test about work done
    docs = documents("---\n".join("k: " + "[" * 3000 + "]" * 3000 + "\n" for _ in range(4)))
    assert time.process_time() - start < 6  # was 2 to 2.5 s per document; now under 1
    assert [(type(d).__name__, getattr(d, "limit", None)) for d in docs] == [("DocError", True)] * 4
    assert all(isinstance(d, DocError) and d.message == "nested too deeply (over 64 levels); skipped" for d in docs)


def test_many_small_alias_bombs_share_one_budget() -> None:
    """Each document stays under MAX_NODES, but a file of them is bounded by its size, not by their count."""
    lines = ["a0: &a0 [lol]"] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 6)]
    bomb = "\n".join(lines) + "\n"
    start = time.process_time()  # CPU time: a busy machine must not fail a test about work done
    docs = documents("---\n".join([bomb] * 40))
    assert time.process_time() - start < 10
    refused = [d for d in docs if isinstance(d, DocError)]
    assert len(docs) == 40 and len(refused) >= 37 and all(d.limit for d in refused)


def test_a_timestamp_tag_on_a_non_timestamp_is_invalid_yaml_not_a_crash() -> None:
    """Found by tests/fuzz/test_k8s_manifests.py: PyYAML's `!!timestamp` constructor raised AttributeError."""
    bad, good = documents("when: !!timestamp tomorrow\n---\nwhen: !!timestamp 2001-12-14\n")
    assert isinstance(bad, DocError) and not bad.limit and "is not a timestamp" in bad.message
    assert isinstance(good, Document) and str(good.data) == "{'when': datetime.date(2001, 12, 14)}"
