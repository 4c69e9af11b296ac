"""Engine behaviour: lines, allow comments, binary input, long keys, threads, pickling, filler FPs, loader."""

from __future__ import annotations

import pickle
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kinko.errors import InvalidInput
from kinko.scan.detect import (
    HyperscanDetector,
    KeywordDetector,
    RuleDetector,
    built_with,
    default_detector,
    load_rules,
)
from kinko.scan.detect.entropy import is_placeholder, looks_like_identifier, shannon_entropy
from kinko.scan.detect.loader import parse_rules_text
from kinko.scan.findings import matches_to_findings
from kinko.scan.interface import FindingKind, Location, Severity
from tests.scan.data.filler import filler_files
from tests.scan.keygen import generate
from tests.scan.tokens import github_token

RULES = load_rules()
_rng = random.Random(7)
GH = github_token()
PG = "postgres://app:Zq8vN2kLp4Rt7wXy@db.prod.internal:5432/app"


@pytest.fixture(scope="module", params=["hyperscan", "keyword"])
def detector(request: pytest.FixtureRequest) -> RuleDetector:
    return HyperscanDetector(RULES) if request.param == "hyperscan" else KeywordDetector(RULES)


def test_line_numbers_and_offsets(detector: RuleDetector) -> None:
    data = f"a\nb\nTOKEN={GH}\n\n\nurl: {PG}\n".encode()
    found = {m.rule_id: m for m in detector.scan(data)}
    assert found["github-pat"].line == 3
    assert found["postgres-connection-url"].line == 6
    gh = found["github-pat"]
    assert data[gh.start : gh.end] == GH.encode() == gh.secret


def test_specific_rule_wins_over_generic(detector: RuleDetector) -> None:
    ids = [m.rule_id for m in detector.scan(f"DATABASE_URL={PG}".encode())]
    assert ids == ["postgres-connection-url"]


def test_inline_allow_comment_suppresses_only_that_line(detector: RuleDetector) -> None:
    data = f"a = '{GH}'  # kinko:allow\nb = '{GH[:-1]}Q'\n".encode()
    matches = detector.scan(data)
    assert [m.line for m in matches] == [2]


def test_binary_buffer_with_embedded_secret(detector: RuleDetector) -> None:
    blob = bytes(random.Random(3).randbytes(50_000))
    data = blob + b"\x00" + GH.encode() + b"\x00" + blob
    assert [m.rule_id for m in detector.scan(data)] == ["github-pat"]


def test_secret_far_into_a_large_buffer(detector: RuleDetector) -> None:
    pad = b"lorem ipsum dolor\n" * 200_000  # ~3.6 MB
    matches = detector.scan(pad + GH.encode() + b"\n" + pad)
    assert len(matches) == 1 and matches[0].line == 200_001


def test_large_rsa_key_is_matched_whole(detector: RuleDetector) -> None:
    pem = generate("rsa4096")
    assert isinstance(pem, str)
    matches = [m for m in detector.scan(pem.encode()) if m.rule_id == "rsa-private-key"]
    assert len(matches) == 1 and matches[0].secret == pem.strip().encode()


def test_placeholders_are_not_reported(detector: RuleDetector) -> None:
    data = b"password: changeme\nPASSWORD=${DB_PASSWORD}\ntoken: <your-token-here>\nsecret: '{{ .Values.s }}'\n"
    assert detector.scan(data) == []


def test_path_rules_need_the_file_name(detector: RuleDetector) -> None:
    line = b"db.internal:5432:*:app:Zq8vN2kLp4Rt7wXy\n"
    assert [m.rule_id for m in detector.scan(line, path="home/u/.pgpass")] == ["pgpass-entry"]
    assert detector.scan(line, path="notes.txt") == []
    assert detector.scan(line) == []


def test_empty_input(detector: RuleDetector) -> None:
    assert detector.scan(b"") == []


def test_no_false_positives_on_filler(detector: RuleDetector) -> None:
    size = 8 * 2**20 if isinstance(detector, HyperscanDetector) else 2 * 2**20
    hits = [m.rule_id for buf in filler_files(size, seed=99) for m in detector.scan(buf)]
    assert hits == []


def test_stand_in_passwords_in_plain_source_text_stay_quiet() -> None:
    """The relaxed check is only for deployed values: a README's `user:pass` URL is still not reported."""
    detector = default_detector()
    assert detector.scan(b"connect with postgresql://user:pass@host/db") == []
    [hit] = detector.scan_deployed(b"postgresql://user:pass@host/db")
    assert hit.rule_id == "postgres-connection-url"


def test_thread_safe_results() -> None:
    detector = HyperscanDetector(RULES)
    data = (f"x={GH}\n" * 50 + f"y={PG}\n").encode()
    expected = detector.scan(data)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: detector.scan(data), range(40)))
    assert all(r == expected for r in results)


def test_detectors_pickle_and_rebuild() -> None:
    for detector in (HyperscanDetector(RULES), KeywordDetector(RULES)):
        clone = pickle.loads(pickle.dumps(detector))
        assert type(clone) is type(detector)
        assert [m.rule_id for m in clone.scan(GH.encode())] == ["github-pat"]


def test_default_detector_is_cached_and_fast_engine() -> None:
    assert default_detector() is default_detector()
    assert isinstance(default_detector(), HyperscanDetector)
    assert default_detector().rule_info("github-pat") == ("GitHub personal access token (classic)", Severity.CRITICAL)
    with pytest.raises(InvalidInput):
        default_detector().rule_info("no-such-rule")


def test_default_detector_is_built_once_per_engine_and_cache_dir(tmp_path: Path) -> None:
    auto, keyword = default_detector(), default_detector("keyword")
    assert default_detector("auto", None) is auto and isinstance(keyword, KeywordDetector)
    cached = default_detector(cache_dir=tmp_path / "cache")
    assert isinstance(cached, HyperscanDetector) and cached is not auto
    assert default_detector("auto", tmp_path / "cache") is cached
    assert list((tmp_path / "cache").glob("*.hsdb"))  # the compiled rules went into the given dir
    # built_with names the arguments that built this very object, and builds nothing to find out.
    assert built_with(auto) == ("auto", None) and built_with(keyword) == ("keyword", None)
    assert built_with(cached) == ("auto", tmp_path / "cache")
    assert built_with(HyperscanDetector(RULES)) is None
    with pytest.raises(ValueError, match="unknown scan engine"):
        default_detector("fast")  # type: ignore[arg-type]


def test_matches_to_findings_dedupes_and_hides_secret() -> None:
    detector = default_detector()
    data = f"{GH}\n{GH}\n".encode()
    matches = detector.scan(data) + detector.scan(data)
    findings = matches_to_findings(detector, matches, lambda line: Location("art", "f.txt", line=line))
    assert [(f.location.line, f.kind) for f in findings] == [(1, FindingKind.SECRET), (2, FindingKind.SECRET)]
    assert findings[0].secret == GH and GH not in repr(findings[0])
    assert findings[0].severity is Severity.CRITICAL


def test_entropy_and_placeholder_helpers() -> None:
    assert shannon_entropy(b"") == 0.0
    assert shannon_entropy(b"aaaa") == 0.0
    assert shannon_entropy(bytes(range(16))) == pytest.approx(4.0)
    for value in (b"changeme", b"${VAR}", b"$(VAR)", b"{{ var }}", b"<token>", b"xxxxxxxx", b"********", b"dummy1"):
        assert is_placeholder(value), value
    assert not is_placeholder(b"Zq8vN2kLp4Rt7wXy")
    assert looks_like_identifier(b"self.password") and looks_like_identifier(b"my-db-secret")
    assert not looks_like_identifier(b"Zq8vN2kLp4Rt7wXy")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rules: [{id: x, title: t, severity: high, regex: '('}]", "bad regex"),
        ("rules: [{id: x, title: t, severity: urgent, regex: 'a'}]", "unknown severity"),
        ("rules: [{id: x, title: t, severity: high, regex: 'a', colour: red}]", "unknown fields"),
        ("rules: [{id: Bad_Id, title: t, severity: high, regex: 'a'}]", "lowercase"),
        ("rules: [{id: x, severity: high, regex: 'a'}]", "title"),
        ("nope: 1", "rules"),
    ],
)
def test_loader_rejects_bad_rules_naming_the_rule(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_rules_text(text, "custom")


def test_bad_hyperscan_prefilter_names_the_rule() -> None:
    rules = parse_rules_text("rules: [{id: lookahead, title: t, severity: low, regex: 'a(?=b)'}]", "custom")
    with pytest.raises(InvalidInput, match="lookahead"):
        HyperscanDetector(rules)


@pytest.mark.parametrize(
    "text",
    [
        b"db = 'postgres://user:pass@localhost:5432/db'",  # documentation stand-ins
        b"url = 'https://user:a%20secret@example.org/'",
        b"private_key: ed25519.Ed25519PrivateKey = load()",  # type annotations, not values
        b"secret_key = PKCS7PrivateKeyTypes",
        b"password=\x17\x00\x00\xda\x06submitz\x18Server",  # bytes around a keyword in a .pyc
        b"postgres://postgres:postgres@localhost/test_db",
    ],
)
def test_code_and_documentation_noise_is_not_reported(detector: RuleDetector, text: bytes) -> None:
    assert detector.scan(text) == []


def test_bytearray_and_memoryview_input(detector: RuleDetector) -> None:
    for data in (bytearray(GH.encode()), memoryview(GH.encode())):
        matches = detector.scan(data)  # type: ignore[arg-type]
        assert [type(m.secret) for m in matches] == [bytes]
