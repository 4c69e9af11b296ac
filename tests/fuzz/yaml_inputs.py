"""Hypothesis strategies shared by the delivery fuzz targets: any text, JSON-like values, YAML source fragments."""

from __future__ import annotations

from hypothesis import strategies as st

#: Any code point, lone surrogates included (JSON's "\ud800" escapes produce them).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
TRICKY = st.sampled_from([
    "0777", "0400", "0o644", "0644", "400", "-1", "²", "9" * 40, "latest", "..", "../x", "a/../b", "/etc/x", "a//b",
    "a\nb", "\u202e", "..data", "2001-13-45", "2001-02-03", "0x1F", "1e999", ".nan", "~", "null", "yes", "base64",
    "hex", "utf-8", "app/plain", "", " ", "\x00", "é" * 130, "x" * 300,
])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT | TRICKY
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    ANY_TEXT | TRICKY, inner, max_size=4), max_leaves=16)
#: YAML source fragments: anchors, aliases, tags, flow and block syntax, merges, multi-document markers.
FRAGMENTS = st.sampled_from([
    "- ", "[", "]", "{", "}", ":", ", ", "\n", "  ", "&a ", "*a", "&b ", "*b", "!!int ", "!!binary ", "!!float ",
    "!!timestamp ", "!!set ", "!!omap ", "!!python/object:os.system ", "!foo ", "? ", "<<: ", "---\n", "...\n", "|",
    ">", "'", '"', "\\u", "\\ud800", "#", "%YAML 1.1\n", "objectName: ", "secretPath: ", "filePermission: ",
    "version: ", "encoding: ", "p", "app/plain", "0777", "2001-13-45", "\t", "\x00", "\ud800", "é", "9" * 5000,
])
NESTED = st.tuples(st.sampled_from(["[", "- ", "{a: ", "- [", "&x [", "[*x, "]), st.integers(0, 3000)).map(
    lambda nest: nest[0] * nest[1])
