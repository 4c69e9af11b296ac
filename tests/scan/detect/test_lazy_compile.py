"""Shipped rules compile their regex on first use; every one of them must compile and name its secret group."""

from __future__ import annotations

import pickle
import re

import pytest

from kinko.errors import InvalidInput
from kinko.scan.detect import load_rules
from kinko.scan.detect.loader import parse_rules_text


def test_every_shipped_rule_compiles_and_resolves_its_group() -> None:
    for rule in load_rules():
        assert isinstance(rule.regex, re.Pattern), rule.id
        group = rule.group
        assert group is None or group in rule.regex.groupindex or isinstance(group, int), rule.id


def test_named_secret_group_is_used_when_none_is_declared() -> None:
    [named, declared, whole] = parse_rules_text(
        "rules:\n"
        "  - {id: named, title: t, severity: low, regex: 'k=(?P<secret>[a-z]+)'}\n"
        "  - {id: declared, title: t, severity: low, regex: 'k=([a-z]+)', secret_group: 1}\n"
        "  - {id: whole, title: t, severity: low, regex: 'k=[a-z]+'}\n",
        "custom",
        compile_now=False,
    )
    assert (named.group, declared.group, whole.group) == ("secret", 1, None)


def test_user_rules_are_still_checked_when_parsed() -> None:
    with pytest.raises(InvalidInput, match="custom/x: bad regex"):
        parse_rules_text("rules: [{id: x, title: t, severity: high, regex: '(unclosed'}]", "custom")


def test_rule_pickles_before_and_after_first_use() -> None:
    rule = load_rules()[0]
    fresh = pickle.loads(pickle.dumps(rule))
    assert fresh == rule and fresh.regex.pattern == rule.pattern
    rule.regex  # noqa: B018 - compiles and caches
    assert pickle.loads(pickle.dumps(rule)).regex.pattern == rule.pattern
