"""New families and syntaxes: checksummed tokens, the assignment shapes of common languages, placeholder keys."""

from __future__ import annotations

import pytest

from kinko.scan.detect import HyperscanDetector, KeywordDetector, RuleDetector, load_rules
from kinko.scan.detect.checksums import base64_jwt, crc32_tail
from kinko.scan.interface import Confidence
from tests.scan.tokens import github_token

RULES = load_rules()


@pytest.fixture(scope="module", params=["hyperscan", "keyword"])
def detector(request: pytest.FixtureRequest) -> RuleDetector:
    return HyperscanDetector(RULES) if request.param == "hyperscan" else KeywordDetector(RULES)


def test_the_rule_set_passes_200_families() -> None:
    assert len(RULES) >= 200


def test_github_and_npm_tokens_are_proved_by_their_crc32_tail(detector: RuleDetector) -> None:
    good, npm = github_token(), github_token("npm_")
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert crc32_tail(good.encode()) and not crc32_tail(bad.encode())
    by_secret = {m.secret.decode(): m.confidence for m in detector.scan(f"a={good}\nb={bad}\nc={npm}\n".encode())}
    assert by_secret == {good: Confidence.HIGH, bad: Confidence.LOW, npm: Confidence.HIGH}


def test_base64_wrapped_jwts_must_decode_to_a_jwt(detector: RuleDetector) -> None:
    jwt = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTE3In0.Dq7fWz0G0Ul9JjFOg2kr3cXhLhQ6Cz1S9Qx2p1oK8nE"
    import base64

    wrapped = base64.b64encode(jwt)
    assert base64_jwt(wrapped)
    assert [m.rule_id for m in detector.scan(b"TOKEN=" + wrapped + b"\n")] == ["jwt-base64"]
    noise = base64.b64encode(b'eyJ{"not": "a jwt at all, just json text that is long enough"}')
    assert "jwt-base64" not in [m.rule_id for m in detector.scan(b"X=" + noise + b"\n")]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('var apiToken string = "lpf5lTWUCPUa4qywx7M48DkKdkaQIcRoNsYtR9VH"', "main.go"),
        ("const dbPassword = `VPvfCnABW1Z9gV`", "app.go"),
        ('"{\\"password\\": \\"VPvfCnABW1Z9gV\\",\\n\\"user\\": \\"app\\"}"', "config.json"),
        ("DB_PASSWORD ?= VPvfCnABW1Z9gV", "Makefile"),
        ("API_TOKEN ::= lpf5lTWUCPUa4qywx7M48DkKdkaQIcRoNsYtR9VH", "Makefile"),
        ('System.setProperty("X_TOKEN", "lpf5lTWUCPUa4qywx7M48DkKdkaQIcRoNsYtR9VH");', "App.java"),
        ('$password .= "VPvfCnABW1Z9gV";', "db.php"),
        ("<password>\n    VPvfCnABW1Z9gV\n</password>", "settings.xml"),
        ("<apiKey>h8Kq2mZ7xVb4Nc9Lp3Rt6Wy1</apiKey>", "app.config"),
    ],
)
def test_assignment_syntaxes_of_common_languages(detector: RuleDetector, text: str, path: str) -> None:
    hits = [m for m in detector.scan(text.encode(), path=path) if m.rule_id.startswith("generic-")]
    assert hits and all(m.confidence is Confidence.MEDIUM for m in hits), text


@pytest.mark.parametrize(
    "text",
    [
        "ANTHROPIC_API_KEY=sk-ant-api03-abc123def456ghi789jkl012mno345pqr678stu901vwx234yz567abc890def123ghi456jk",
        "apiKey: 'AIzaSyDOCAbC123dEf456GhI789jKl012-MnO'",
        "SLACK_TOKEN=xoxp-1234-1234-1234-abcdefabcdefabcdefabcdefabcdefab",
    ],
)
def test_placeholder_looking_keys_are_not_flagged(detector: RuleDetector, text: str) -> None:
    assert detector.scan(text.encode(), path="app/.env") == []


def test_a_keyword_yaml_reads_as_a_mapping_is_refused() -> None:
    """`- kinko-share:` unquoted is a one-key mapping in YAML; taken as text it would never match."""
    from kinko.errors import InvalidInput
    from kinko.scan.detect.loader import parse_rules_text

    text = "rules:\n- id: x-token\n  title: X\n  severity: high\n  regex: x-[a-z]{9}\n  keywords:\n  - x-share:\n"
    with pytest.raises(InvalidInput, match="keywords must be strings"):
        parse_rules_text(text, "test")


def test_kinko_shares_are_proved_by_their_checksum() -> None:
    import secrets

    from kinko.crypto.shares import encode_share, split
    from kinko.scan.detect.checksums import kinko_share

    share = encode_share(split(secrets.token_bytes(32), 3, 2)[0])
    assert kinko_share(share.encode())
    assert not kinko_share(share[:-1].encode() + (b"0" if share[-1] != "0" else b"1"))
