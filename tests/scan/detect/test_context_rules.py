"""Vendor-context rules (`context` + `value`), one secret reported once, and vendor-published example keys."""

from __future__ import annotations

import hashlib

import pytest

from kinko.errors import InvalidInput
from kinko.scan.detect import HyperscanDetector, KeywordDetector, RuleDetector, load_rules
from kinko.scan.detect.loader import parse_rules_text
from kinko.scan.detect.published import PUBLISHED, is_published

RULES = load_rules()
SECRET32 = "Rk2pQ9vXw7LmN4sT8yB1cD6fG3hJ5aZe"

#: every assignment syntax a context rule must accept, with the value at {v}
SYNTAXES = [
    'discordSecret="{v}"', "discord_secret = '{v}'", "DISCORD_SECRET={v}", '{{"discord_secret": "{v}"}}',
    '{{"app.ini": "DISCORD_SECRET={v}\\nDEBUG=1"}}', "<discordSecret>\n    {v}\n</discordSecret>",
    "discord_secret: {v}", 'string discordSecret = "{v}";', 'var discordSecret string = "{v}"',
    'discordSecret := "{v}"', "discordSecret := `{v}`", '$discordSecret .= "{v}";',
    'System.setProperty("DISCORD_SECRET", "{v}")', '  "discordSecret" => "{v}"', 'DISCORD_SECRET ?= "{v}"',
    'DISCORD_SECRET ::= "{v}"', 'DISCORD_SECRET :::= "{v}"', "discord:\n  client_secret: {v}",
    '$cfg["discord_secret"] = "{v}";',
]  # fmt: skip


@pytest.fixture(scope="module", params=["hyperscan", "keyword"])
def detector(request: pytest.FixtureRequest) -> RuleDetector:
    return HyperscanDetector(RULES) if request.param == "hyperscan" else KeywordDetector(RULES)


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_a_context_rule_reads_every_assignment_syntax(detector: RuleDetector, syntax: str) -> None:
    text = syntax.format(v=SECRET32).encode()
    assert [(m.rule_id, m.secret.decode()) for m in detector.scan(text)] == [("discord-client-secret", SECRET32)]


def test_a_context_rule_needs_the_vendor_word_in_the_key(detector: RuleDetector) -> None:
    for text in (f'client_secret = "{SECRET32}"', f'slack_secret = "{SECRET32}"', f'# discord\nsecret = "{SECRET32}"'):
        assert "discord-client-secret" not in [m.rule_id for m in detector.scan(text.encode())]


def test_a_lookahead_in_a_value_stays_out_of_the_hyperscan_prefilter() -> None:
    (rule,) = parse_rules_text(
        "rules:\n- {id: acme-key, title: Acme, severity: high, context: [acme], value: '(?!aio_)[a-z_]{20}'}\n",
        "test",
    )
    assert b"(?!" in rule.pattern and b"(?!" not in rule.prefilter
    assert rule.regex.search(b'acme_key = "abcdefghijklmnopqrst"') is not None
    assert rule.regex.search(b'acme_key = "aio_efghijklmnopqrst"') is None


def test_context_rules_take_their_keywords_from_the_context_words() -> None:
    (rule,) = parse_rules_text(
        "rules:\n- {id: acme-key, title: Acme, severity: high, context: [acme, acme_corp], value: '[a-z]{20}'}\n",
        "test",
    )
    assert rule.keywords == (b"acme", b"acme_corp")
    assert rule.regex.search(b'ACME_CORP_KEY = "abcdefghijklmnopqrst"') is not None


@pytest.mark.parametrize(
    "spec",
    [
        "{id: a, title: A, severity: high, context: [acme]}",  # no value
        "{id: a, title: A, severity: high, context: acme, value: 'x'}",  # not a list
        "{id: a, title: A, severity: high, context: [acme], value: 'x', regex: 'y'}",  # both
        "{id: a, title: A, severity: high, context: [''], value: 'x'}",  # empty word
    ],
)
def test_bad_context_rules_are_refused_with_the_rule_named(spec: str) -> None:
    with pytest.raises(InvalidInput, match="test/a"):
        parse_rules_text(f"rules:\n- {spec}\n", "test")


def test_one_secret_matched_by_two_specific_rules_is_reported_once_by_the_more_telling_one(
    detector: RuleDetector,
) -> None:
    key = "Zx9" + "Q" * 2 + "k" * 10 + "Rt5vB8nM2pL7wE4yU1iO6aS3dF0gH9jK" + "wxyz" * 4 + "AbC="
    conn = f"DefaultEndpointsProtocol=https;AccountName=shop;AccountKey={key[:86]}==;EndpointSuffix=core.windows.net"
    found = detector.scan(conn.encode())
    spans = [(m.start, m.end) for m in found]
    assert len(spans) == len(set(spans))  # never two findings for one secret


def test_vendor_published_example_keys_are_not_findings(detector: RuleDetector) -> None:
    published = "AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs"  # firebase-android-sdk's test configuration
    assert is_published(published.encode())
    assert detector.scan(f"apiKey: {published}\n".encode()) == []
    other = "AIzaSyBv4Kq9Xw2LmN7pR5sT8yB1cD6fG3hJ5aZ"
    assert [m.rule_id for m in detector.scan(f"apiKey: {other}\n".encode())] == ["gcp-api-key"]


def test_the_published_list_holds_digests_not_keys() -> None:
    assert PUBLISHED and all(len(d) == 64 and int(d, 16) >= 0 for d in PUBLISHED)
    assert hashlib.sha256(b"AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs").hexdigest() in PUBLISHED


def test_a_name_in_a_list_is_not_assigned_the_next_item(detector: RuleDetector) -> None:
    """`"required": ["DbPassword",\n "DbUser"]` (a JSON schema) names fields; `setProperty("K", "v")` is one line."""
    for text in (f'["discord_secret",\n    "{SECRET32}"]', '"required": [\n "DbPassword",\n "DbUser"\n]'):
        assert detector.scan(text.encode()) == []
    assert [m.rule_id for m in detector.scan(f'setProperty("DISCORD_SECRET", "{SECRET32}")'.encode())] == [
        "discord-client-secret"
    ]
