"""Fuzz the CSI Mount parser: whatever the attributes, secrets, permission and `objects` YAML, only InvalidInput."""

from __future__ import annotations

import json
import time

import yaml
from hypothesis import given
from hypothesis import strategies as st

from kinko.deliver.csi.params import OBJECT_KEYS, TOKENS_ATTR, parse_request
from kinko.errors import InvalidInput
from tests.fuzz.budget import fuzz
from tests.fuzz.yaml_inputs import ANY_TEXT, FRAGMENTS, NESTED, TRICKY, VALUES

#: Mostly-valid entries with a few keys fuzzed, so the checks after objectName and secretPath are reached too.
ENTRY = st.dictionaries(st.sampled_from(sorted(OBJECT_KEYS)) | ANY_TEXT, VALUES | TRICKY, max_size=3).map(
    lambda fuzzed: {"objectName": "p", "secretPath": "app/plain", **fuzzed})
OBJECTS = st.one_of(
    st.lists(ENTRY, max_size=4).map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)),
    st.lists(ENTRY | VALUES, max_size=4).map(json.dumps),
    st.lists(FRAGMENTS, max_size=60).map("".join),
    NESTED,
    ANY_TEXT,
)
DEEP_JSON = st.integers(0, 5000).map(lambda depth: "[" * depth)
NOT_A_MAP = st.one_of(ANY_TEXT, VALUES.map(json.dumps), DEEP_JSON)
TOKENS = st.one_of(st.dictionaries(ANY_TEXT, VALUES, max_size=3).map(json.dumps), NOT_A_MAP)
SECRETS = st.one_of(st.dictionaries(ANY_TEXT | st.just(TOKENS_ATTR), ANY_TEXT | TOKENS | VALUES, max_size=3).map(
    json.dumps), NOT_A_MAP)
PERMISSION = st.one_of(st.integers().map(str), st.floats().map(str), TRICKY, NOT_A_MAP)
GOOD_TOKENS = json.dumps({"kinko": {"token": "eyJ.e30.sig"}})
FIELDS = ["objects", "objects", "objects", "attributes", "tokens", "extra", "secrets", "permission", "all"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, str]:
    """(attributes, secrets, permission): one field fuzzed (or all), the others valid, so every check is reached."""
    broken = draw(st.sampled_from(FIELDS))
    fuzzed = {name: broken in (name, "all") for name in FIELDS}
    attrs: dict[str, object] = {
        "roleName": "app", "objects": draw(OBJECTS) if fuzzed["objects"] else "- {objectName: p, secretPath: a/b}",
        TOKENS_ATTR: draw(TOKENS) if fuzzed["tokens"] else GOOD_TOKENS}
    if fuzzed["extra"]:
        attrs.update(draw(st.dictionaries(st.sampled_from(["audience", "kinkoAddress", "roleName", "objects"])
                                          | ANY_TEXT, ANY_TEXT | TRICKY | VALUES, max_size=3)))
    return (draw(NOT_A_MAP) if fuzzed["attributes"] else json.dumps(attrs),
            draw(SECRETS) if fuzzed["secrets"] else "null",
            draw(PERMISSION) if fuzzed["permission"] else "420")



@fuzz
@given(requests())
def test_parse_request_raises_only_invalid_input(request: tuple[str, str, str]) -> None:
    started = time.monotonic()
    try:
        parse_request(*request)
    except InvalidInput as exc:
        assert exc.message and "\n" not in exc.message
    assert time.monotonic() - started < 5.0
