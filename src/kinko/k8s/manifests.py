"""Bounded loading of Kubernetes manifests: multi-document YAML (safe loader only) and JSON, with node lines.

Every node's source line is kept; limits keep hostile input (alias bombs, huge or deep files) cheap.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

#: A Kubernetes object is capped near 1.5 MiB by etcd; anything far bigger is not a manifest we must parse.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Nodes visited per document, aliases expanded: bounds "billion laughs" documents (a file gets this plus one
#: per character of its text in all).
MAX_NODES = 200_000
#: Real manifests nest a few dozen levels; deeper means a cyclic alias or a hostile document.
MAX_DEPTH = 64
_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)

PathKey = tuple[str | int, ...]


@dataclass
class Document:
    """One parsed document. `lines` maps a path such as ("spec", "volumes", 0) to its 1-based line."""

    index: int
    data: object = field(repr=False)
    lines: dict[PathKey, int] = field(default_factory=dict, repr=False)

    def line(self, path: PathKey) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            found = self.lines.get(path[:cut])
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class DocError:
    """A document that was not loaded. `limit`: it hit a size, depth or alias limit (it may be a valid manifest,
    so its content went unchecked); otherwise it is not valid YAML/JSON."""

    index: int
    message: str
    limit: bool = False


class _TooManyNodes(Exception):
    pass


class _TooDeep(Exception):
    pass


class _Budget:
    """Nodes a whole file may still expand to (aliases expanded): `MAX_NODES` plus one per character of text, so a
    file of many small alias bombs costs at most about what its size allows, and no alias-free file runs out."""

    def __init__(self, text: str) -> None:
        self.left = MAX_NODES + len(text)


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing to compose deeper than MAX_DEPTH: PyYAML recurses per level, and its scanner
    tracks every open flow level per token, so a few thousand `[` took seconds before Python's recursion limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.depth > MAX_DEPTH:
            raise _TooDeep
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _timestamp(self, node: yaml.ScalarNode) -> object:
        """PyYAML's `!!timestamp` crashes (AttributeError) on a value that is not one; refuse it as YAML does."""
        if not isinstance(node.value, str) or self.timestamp_regexp.match(node.value) is None:
            raise yaml.constructor.ConstructorError(None, None, "!!timestamp value is not a timestamp", node.start_mark)
        return self.construct_yaml_timestamp(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader._timestamp)


def load(text: str, *, is_json: bool) -> Iterator[Document | DocError]:
    """Every document of a file; a broken document yields a DocError and the next one is still read."""
    if is_json:
        yield _load_json(text)
        return
    index = 0
    budget = _Budget(text)
    for offset, chunk in _chunks(text):
        if not chunk.strip(" \t\r\n-"):
            continue
        yield from _load_chunk(chunk, offset, index, budget)
        index += 1


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """Split at `---` lines so one broken document does not hide the ones after it."""
    starts = [m.start() for m in _DOC_START.finditer(text)]
    bounds = [0, *[s for s in starts if s > 0], len(text)]
    line = 0
    for begin, end in itertools.pairwise(bounds):
        chunk = text[begin:end]
        yield line, chunk
        line += chunk.count("\n")


def _load_chunk(chunk: str, offset: int, index: int, budget: _Budget) -> Iterator[Document | DocError]:
    try:
        loader = _Loader(chunk)  # the reader refuses control characters right here
    except yaml.YAMLError as exc:
        yield _invalid(exc, index, offset)
        return
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines = _line_map(node, offset, budget)
            yield Document(index, loader.construct_document(node), lines)
    except _TooManyNodes:
        limits = f"more than {MAX_NODES} nodes or {MAX_DEPTH} levels"
        yield DocError(index, f"expands to {limits} (YAML alias bomb or cycle?); skipped", limit=True)
    except (_TooDeep, RecursionError):
        yield DocError(index, f"nested too deeply (over {MAX_DEPTH} levels); skipped", limit=True)
    except yaml.YAMLError as exc:
        yield _invalid(exc, index, offset)
    except (ValueError, TypeError) as exc:
        yield DocError(index, f"cannot load document: {type(exc).__name__}")
    finally:
        loader.dispose()


def _invalid(exc: yaml.YAMLError, index: int, offset: int) -> DocError:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1 + offset}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return DocError(index, f"invalid YAML{where}: {problem}")


def _line_map(root: yaml.Node, offset: int, budget: _Budget) -> dict[PathKey, int]:
    """Walk the node graph (aliases expanded, so the budget also bounds later walks over the data)."""
    lines: dict[PathKey, int] = {}
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    visited = 0
    while stack:
        node, path = stack.pop()
        visited += 1
        budget.left -= 1
        if visited > MAX_NODES or len(path) > MAX_DEPTH or budget.left < 0:
            raise _TooManyNodes
        lines.setdefault(path, node.start_mark.line + 1 + offset)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                stack.append((value, (*path, str(name))))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((value, (*path, i)) for i, value in enumerate(node.value))
    return lines


def _load_json(text: str) -> Document | DocError:
    try:
        return Document(0, json.loads(text))
    except ValueError as exc:
        return DocError(0, f"invalid JSON: {str(exc)[:120]}")
    except RecursionError:
        return DocError(0, "JSON nested too deeply; skipped", limit=True)
