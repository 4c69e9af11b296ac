"""Assignments of string constants in compiled Python (`NAME = "..."`, `self.attr = "..."`), from the `.pyc` bytes.

`pyc.py` gives a `.pyc`'s string constants one per line, so a value with a vendor's format is found; a generic
`password = "..."` also needs the name the constant is stored to, and that is in the bytecode: `LOAD_CONST i`
followed by `STORE_NAME j` (or `STORE_GLOBAL`, `STORE_FAST`, or one load and `STORE_ATTR`). This reads the
marshal stream with a small bounded reader of its own — `marshal.loads` is documented as unsafe on hostile input,
and its code-object layout is that of the running Python only — and knows the code-object layouts and the opcode
numbers of CPython 3.6 to 3.13 (told apart by the magic number). Anything else, or any malformed byte, gives no
pairs: the constants are still scanned by `pyc.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

#: (first magic, last magic, header bytes, ints before co_code, names after co_consts, opcodes)
#: opcodes: LOAD_CONST, STORE_NAME, STORE_GLOBAL, STORE_FAST, STORE_ATTR, EXTENDED_ARG, CACHE (None before 3.11)
_OPS_36 = (100, 90, 97, 125, 95, 144, None)
_OPS_311 = (100, 90, 97, 125, 95, 144, 0)
_OPS_313 = (83, 114, 113, 110, 108, 71, 0)
_VERSIONS = (
    (3360, 3379, 12, 5, "legacy", _OPS_36),  # 3.6
    (3390, 3394, 16, 5, "legacy", _OPS_36),  # 3.7
    (3400, 3439, 16, 6, "legacy", _OPS_36),  # 3.8 - 3.10: + co_posonlyargcount
    (3450, 3531, 16, 5, "localsplus", _OPS_311),  # 3.11 - 3.12: no co_nlocals, locals+cells+frees in one tuple
    (3550, 3571, 16, 5, "localsplus", _OPS_313),  # 3.13: the same layout, opcodes renumbered
)
_MAX_DEPTH = 64
#: marshal types with no payload: NULL, None, False, True, StopIteration, Ellipsis
_SIMPLE: dict[str, object] = {"0": None, "N": None, "F": False, "T": True, "S": None, ".": None}
_MAX_OBJECTS = 500_000
_FLAG_REF = 0x80


class _Malformed(Exception):
    pass


@dataclass
class _Code:
    code: bytes
    consts: tuple[object, ...]
    names: tuple[object, ...]
    local_names: tuple[object, ...]


class _Reader:
    """A forward-only reader of the marshal format; strings as str (bytes for `s`), code objects as `_Code`."""

    def __init__(self, data: bytes, pos: int, ints: int, layout: str) -> None:
        self.data, self.pos, self.ints, self.layout = data, pos, ints, layout
        self.refs: list[object] = []
        self.count = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Malformed
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int32(self) -> int:
        return int.from_bytes(self.take(4), "little", signed=True)

    def obj(self, depth: int = 0) -> object:
        self.count += 1
        if depth > _MAX_DEPTH or self.count > _MAX_OBJECTS:
            raise _Malformed
        code = self.take(1)[0]
        flag, kind = code & _FLAG_REF, chr(code & ~_FLAG_REF)
        if kind == "r":
            index = self.int32()
            if not 0 <= index < len(self.refs):
                raise _Malformed
            return self.refs[index]
        slot = len(self.refs)
        if flag:
            self.refs.append(None)  # reserved before the contents, as marshal numbers them
        value = self._value(kind, depth)
        if flag:
            self.refs[slot] = value
        return value

    def _value(self, kind: str, depth: int) -> object:
        if kind in _SIMPLE:
            return _SIMPLE[kind]
        if kind == "i":
            return self.int32()
        if kind in "Ig":
            return self.take(8)
        if kind == "y":
            return self.take(16)
        if kind in "fx":
            return [self.take(self.take(1)[0]) for _ in range(1 if kind == "f" else 2)]
        if kind == "l":
            return self.take(2 * abs(self.int32()))
        if kind in "zZ":
            return self.take(self.take(1)[0]).decode("latin-1")
        if kind in "aAut":
            return self.take(self.int32()).decode("utf-8", "surrogatepass")
        if kind == "s":
            return self.take(self.int32())
        if kind in "()[<>":
            size = self.take(1)[0] if kind == ")" else self.int32()
            return tuple(self.obj(depth + 1) for _ in range(size))
        if kind == "{":
            items = []
            while self.data[self.pos : self.pos + 1] != b"0":
                items.append((self.obj(depth + 1), self.obj(depth + 1)))
            self.take(1)
            return items
        if kind == "c":
            return self._code(depth)
        raise _Malformed

    def _code(self, depth: int) -> _Code:
        self.take(4 * self.ints)
        code, consts, names = self.obj(depth + 1), self.obj(depth + 1), self.obj(depth + 1)
        local_names = self.obj(depth + 1)
        rest = 7 if self.layout == "localsplus" else 6  # kinds, filename, name, qualname, line, table, exc | ...
        for i in range(rest):
            if i == 4:  # co_firstlineno, a raw int in both layouts, not an object
                self.int32()
            else:
                self.obj(depth + 1)
        if not isinstance(code, bytes) or not isinstance(consts, tuple) or not isinstance(names, tuple):
            raise _Malformed
        return _Code(code, consts, names, local_names if isinstance(local_names, tuple) else ())


def pyc_assignments(data: bytes) -> list[tuple[str, str]]:
    """(name, value) of each string constant stored to a name or attribute; empty for anything not understood."""
    magic = int.from_bytes(data[:2], "little")
    for first, last, header, ints, layout, ops in _VERSIONS:
        if first <= magic <= last:
            try:
                top = _Reader(data, header, ints, layout).obj()
            except (_Malformed, RecursionError, UnicodeDecodeError):
                return []
            return list(_pairs(top, ops)) if isinstance(top, _Code) else []
    return []


def _pairs(top: _Code, ops: tuple[int | None, ...]) -> Iterator[tuple[str, str]]:
    load_const, store_name, store_global, store_fast, store_attr, _, _ = ops
    stack = [top]
    while stack:
        code = stack.pop()
        stack.extend(c for c in code.consts if isinstance(c, _Code))
        instructions = list(_instructions(code.code, ops))
        for i, (op, arg) in enumerate(instructions):
            if op != load_const or arg >= len(code.consts) or not isinstance(code.consts[arg], str):
                continue
            value = str(code.consts[arg])
            after = instructions[i + 1 : i + 3]
            table: tuple[object, ...] = ()
            index = 0
            if after and after[0][0] in (store_name, store_global):
                table, index = code.names, after[0][1]
            elif after and after[0][0] == store_fast:
                table, index = code.local_names, after[0][1]
            elif len(after) == 2 and after[1][0] == store_attr:
                table, index = code.names, after[1][1]
            if table and index < len(table) and isinstance(name := table[index], str) and not name.startswith("__"):
                yield name, value  # `__qualname__ = "Client"` and the like are the compiler's, not the code's


def _instructions(code: bytes, ops: tuple[int | None, ...]) -> Iterator[tuple[int, int]]:
    """(opcode, argument) of the wordcode, EXTENDED_ARG folded in and 3.11+ inline CACHE entries skipped."""
    extended_arg, cache = ops[5], ops[6]
    extended = 0
    for i in range(0, len(code) - 1, 2):
        op, arg = code[i], code[i + 1] | extended
        if op == extended_arg:
            extended = arg << 8
            continue
        extended = 0
        if op != cache:
            yield op, arg
