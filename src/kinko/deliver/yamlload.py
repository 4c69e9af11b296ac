"""Bounded YAML loading for delivery settings (agent.yaml, a SecretProviderClass's `objects`): one safe document."""

from __future__ import annotations

from typing import Any

import yaml

from kinko.errors import InvalidInput

#: Real settings nest a handful of levels; deeper means a hostile document or an alias cycle.
MAX_DEPTH = 32
#: Nodes per document, every use of an alias counted: bounds "billion laughs" documents.
MAX_NODES = 100_000


class _TooDeep(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing nesting past MAX_DEPTH while it scans and composes: PyYAML's scanner costs
    O(tokens x flow depth), so 2000 nested `[` take seconds and 256 KiB of them would take hours."""

    _depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise _TooDeep
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str | bytes, what: str, *, max_nodes: int = MAX_NODES) -> object:
    """The one document in `text` (safe loader; None when empty), nesting and size bounded.

    Every failure is InvalidInput naming `what` and at most the line and column: the parser's own words can quote
    the input.
    """
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # this already refuses a str with unprintable characters
        node = loader.get_single_node()
        if node is None:
            return None
        _check_shape(node, what, max_nodes)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{what} is not valid YAML{_where(exc)}") from None
    except (_TooDeep, RecursionError):
        raise InvalidInput(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, TypeError, ArithmeticError, LookupError, AttributeError) as exc:
        # a scalar PyYAML's constructors choke on: `2001-13-45`, `!!int ''`, `!!bool x`, `!!timestamp x`, ...
        raise InvalidInput(f"{what} holds a value YAML cannot build ({type(exc).__name__})") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_shape(root: yaml.Node, what: str, max_nodes: int) -> None:
    stack = [(root, 1)]
    seen = 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > max_nodes:
            raise InvalidInput(f"{what} nests deeper than {MAX_DEPTH} levels or has more than {max_nodes} nodes "
                               "(each use of a YAML alias counts)")
        if isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
