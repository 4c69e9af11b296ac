"""What kind of file a hit is in: documentation and examples, an API/service model, source code, or config."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

#: Folders whose files are documentation, examples or samples (any depth).
_DOC_DIRS = frozenset(
    {"doc", "docs", "documentation", "example", "examples", "sample", "samples", "demo", "demos", "man", "manual"}
)
#: File names that are prose (README, CHANGELOG, ...), whatever their extension.
_DOC_NAMES = re.compile(r"^(?:readme|changelog|changes|history|news|authors|contributing|faq|howto)(?:[._-]|$)", re.I)
#: Python package metadata (`*.dist-info/METADATA`, `PKG-INFO`): the package's README with a header.
_PACKAGE_README = frozenset({"metadata", "pkg-info"})
#: Extensions of prose and markup, declarations (`.d.ts` holds types and doc comments, never a value) and man pages.
_DOC_EXTENSIONS = (
    ".md", ".markdown", ".rst", ".adoc", ".asciidoc", ".html", ".htm", ".rdoc", ".pod", ".texi", ".d.ts", ".d.mts",
    ".d.cts", ".1", ".2", ".3", ".5", ".7", ".8", ".1.gz", ".3.gz", ".5.gz", ".8.gz", ".ipynb",
)  # fmt: skip
#: A file whose name says it is an example (`examples-1.json`, `x.examples.json`, `config.example.yaml`).
_EXAMPLE_NAME = re.compile(r"(?:^|[._-])(?:examples?|samples?|paginators?|waiters?)(?:[._-]|$)", re.I)
#: Source code: a literal there is quoted; an unquoted right-hand side is an expression, a name or a type.
_CODE_EXTENSIONS = frozenset(
    {
        ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".mts", ".cts", ".go", ".rs", ".java", ".kt",
        ".kts", ".scala", ".groovy", ".rb", ".php", ".cs", ".swift", ".c", ".h", ".cc", ".cpp", ".hpp", ".m", ".dart",
        ".lua", ".pl", ".pm", ".ex", ".exs", ".erl", ".clj", ".vue", ".svelte", ".map",
    }
)  # fmt: skip
#: API and service models (botocore/aws-sdk JSON, Google discovery documents, OpenAPI, Smithy): their values are
#: shapes, documentation and examples. Judged from the first bytes of the content, never from a package name.
_MODEL_HEAD = re.compile(
    rb'"(?:discoveryVersion|swagger|openapi|smithy|shapes|operations)"\s*:'
    rb'|^\s*\{\s*(?:"version"\s*:\s*"[\d.]+"\s*,\s*)?"(?:examples|pagination|metadata|waiters)"\s*:'
    rb"|^(?:openapi|swagger)\s*:\s*[\"']?\d",
    re.MULTILINE,
)
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "fixtures", "testdata"})


@dataclass(frozen=True)
class FileContext:
    """How to read a hit in this file. `docs`: documentation, an example or an API model (generic hits there are
    not secrets, specific ones are of low confidence); `code`: source code (generic values must be quoted
    literals); `tests`: a test or fixture path."""

    docs: bool = False
    code: bool = False
    tests: bool = False


PLAIN = FileContext()


def file_context(path: str, data: bytes) -> FileContext:
    """The context of `path` (as scanned: layer path, relative path, `archive!inner`) holding `data`."""
    if not path:
        return FileContext(docs=bool(_MODEL_HEAD.search(data[:4096])))
    inner = path.rsplit("!", 1)[-1] or path.split("!", 1)[0]
    if inner == "constants" and "!" in path:  # a `.pyc`'s string constants: the context is the `.pyc`'s own path
        inner = path.rsplit("!", 1)[0].rsplit("!", 1)[-1]
    lowered = inner.lower()
    parts = [p for p in lowered.split("/") if p]
    name = parts[-1] if parts else lowered
    docs = (
        any(p in _DOC_DIRS for p in parts[:-1])
        or bool(_DOC_NAMES.match(name))
        or name in _PACKAGE_README
        or lowered.endswith(_DOC_EXTENSIONS)
        or bool(_EXAMPLE_NAME.search(name))
        or (lowered.startswith("usr/share/doc/") or "/usr/share/doc/" in lowered)
        or bool(_MODEL_HEAD.search(data[:4096]))
    )
    ext = posixpath.splitext(name)[1]
    if ext in (".pyc", ".pyo"):
        ext = ".py"  # its constants are the source's literals
    tests = any(p in _TEST_DIRS for p in parts[:-1]) or bool(re.search(r"(?:^|[._-])(?:test|spec)s?[._]", name))
    return FileContext(docs=docs, code=ext in _CODE_EXTENSIONS, tests=tests)
