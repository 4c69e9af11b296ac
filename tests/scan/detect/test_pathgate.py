"""The path pre-check only ever skips paths no path rule could match, and path rules still fire where they should."""

from __future__ import annotations

import random
import re

import pytest

from kinko.scan.detect import HyperscanDetector, KeywordDetector, RuleDetector, load_rules
from kinko.scan.detect.loader import parse_rules_text
from kinko.scan.detect.pathgate import may_match, required_suffixes

SHIPPED = [r.path_regex for r in load_rules() if r.path_regex is not None]
PATTERNS = [
    *SHIPPED,
    re.compile(r"(?:^|/)id_rsa$|(?:^|/)id_ed25519$"),
    re.compile(r"\.p12$|\.pfx\Z"),
    re.compile(r"(?m)^secrets/.*\.env$"),
    re.compile(r"(?:^|/)\.?(?:git-)?credentials$"),
]
_PIECES = ["", "/", ".", "pgpass", "my", "sql", ".cnf", "my.ini", "id_rsa", "id_ed25519", "x.p12", ".pfx", "secrets/",
           "a.env", "credentials", "git-", "\n", "home", "etc/", "root/."]  # fmt: skip


def test_shipped_path_rules_have_a_precheck() -> None:
    suffixes = required_suffixes(SHIPPED)
    assert suffixes is not None
    assert "pgpass" in suffixes


@pytest.mark.parametrize("seed", range(5))
def test_precheck_never_hides_a_path_the_regexes_match(seed: int) -> None:
    rng = random.Random(seed)
    suffixes = required_suffixes(PATTERNS)
    assert suffixes is not None
    matched = 0
    for _ in range(4000):
        path = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 6)))
        if any(p.search(path) for p in PATTERNS):
            matched += 1
            assert may_match(path, suffixes), path
    assert matched > 100  # the generator really produces matching paths, trailing newlines included


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?i)(?:^|/)\.pgpass$",  # case-insensitive: a literal tail would be wrong
        r"(?:^|/)\.pgpass",  # no end anchor
        r"\.(?:pem|key)$",  # no literal right before `$`
        r"(?:^|/)\.pgpass$|secret",  # one alternative without an anchored tail
    ],
)
def test_precheck_is_off_when_the_tails_cannot_be_proven(pattern: str) -> None:
    assert required_suffixes([re.compile(pattern)]) is None
    assert may_match("anything/at/all", None)


_RULE = """
rules:
  - id: creds-file-line
    title: Line of a creds file
    severity: high
    path_regex: '(?:^|/)\\.?creds\\.txt$'
    regex: 'key=(?P<secret>[A-Za-z0-9]{12,})'
  - id: unrelated-content-rule
    title: A content rule beside it
    severity: low
    regex: 'zz-[0-9]{30}'
    keywords: ["zz-"]
"""


@pytest.fixture(params=["hyperscan", "keyword"])
def detector(request: pytest.FixtureRequest) -> RuleDetector:
    rules = parse_rules_text(_RULE, "test")
    return HyperscanDetector(rules) if request.param == "hyperscan" else KeywordDetector(rules)


@pytest.mark.parametrize(
    ("path", "found"),
    [("home/app/.creds.txt", True), ("creds.txt", True), ("creds.txt\n", True), ("home/creds.txt.bak", False)],
)
def test_path_rule_fires_only_on_its_files(detector: RuleDetector, path: str, found: bool) -> None:
    data = b"key=Qm7ZtR2vXk9LpW4s\n"
    assert bool(detector.scan(data, path=path)) is found
