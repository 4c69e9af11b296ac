"""Generic rules judge the value as a secret would look; every hit has a confidence (the issue's real-package cases)."""

from __future__ import annotations

import pytest

from kinko.scan.detect import HyperscanDetector, KeywordDetector, RuleDetector, load_rules
from kinko.scan.detect.context import file_context
from kinko.scan.detect.judge import encodes_text, looks_like_words, parse_assignment
from kinko.scan.interface import Confidence

RULES = load_rules()


@pytest.fixture(scope="module", params=["hyperscan", "keyword"])
def detector(request: pytest.FixtureRequest) -> RuleDetector:
    return HyperscanDetector(RULES) if request.param == "hyperscan" else KeywordDetector(RULES)


def _ids(detector: RuleDetector, text: str, path: str = "app/settings.py") -> list[str]:
    return [m.rule_id for m in detector.scan(text.encode(), path=path)]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('"ClientRequestToken": "1d2129a1-3d38-460a-9756-e5b91fddb951"', "app/request.json"),
        ('"ChangeToken": "abcd12f2-46da-4fdb-b8d5-fbd4c466928f"', "waf/client.json"),
        ('"NextToken": "eyJOZXh0VG9rZW4iOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAxMH0="', "app/page.json"),
        ('"input_token": "ExclusiveStartShardId"', "kinesis/paginate.json"),
        ("secrets: Resource$Projects$Locations$Secrets;", "googleapis/v1.ts"),
        ('secret = "Resource$Projects$Locations$Secrets"', "googleapis/v1.py"),
        ('"Resource": "arn:aws:secretsmanager:*:*:secret:databrew!default-*"', "policy.json"),
        ('"Condition": "secretsmanager:ResourceTag/AppSecretKeyPolicy"', "policy.json"),
        ("const signer = { apiKey: _HttpApiKeyAuthSigner };", "sdk/auth.js"),
        ('api_key = "_HttpApiKeyAuthSigner"', "sdk/auth.py"),
        ('token = "refreshTokenClientAcquireTokenByRefreshToken"', "msal/events.py"),
        ("password: SignUpAttributeV2;", "auth/result.ts"),
        ("const secret = !!this.config.auth.clientSecret;", "msal/node.js"),
        ('X_AWS_EC2_METADATA_TOKEN_TTL = "x-aws-ec2-metadata-token-ttl-seconds"', "smithy/constants.py"),
        ('"VerificationToken": "QTKknzFg2J4ygwa+XvHAxUl1hyHoY0gVfZdfjIedHZ0="', "ses/responses.py"),
        ('password = "$6$/bQCntzQ7VrgVcFa$VaMkmevkY1dqrx8neaenUDlVU.6L/.ojRbrnI4ID.yBHU6XON"', "filter/hash.yml"),
        ('secret_token = "k1zPZM6uVxMQ3oxqgoYlNuJPyRTZ1vREs76zTQE3eJk="', "awscli/examples/iam/create.rst"),
        ('{"password": "k1zPZM6uVxMQ3oxqgoYlNu"}', "apis/iam.examples.json"),
        ('{"version": "2.0", "metadata": {}, "operations": {"token": "k1zPZM6uVxMQ3oxqgoYlNuJPyRTZ"}}', "m.json"),
        ('password = "k1zPZM6uVxMQ3oxqgoYlNu"', "tests/test_login.py"),
        ('home_password = "/Users/maciej/projects"', "node/process.py"),
        # ansible's lookup docs (a Python docstring) and an SDK call with a keyword argument
        ("password: \"{{ lookup('ansible.builtin.password', 'credentials/' + client, length=15) }}\"", "lookup.py"),
        ('secret_client.get_secret("my-secret", logging_enable=True)', "app/main.py"),
    ],
)
def test_generic_rules_do_not_flag_what_is_no_secret(detector: RuleDetector, text: str, path: str) -> None:
    assert not [i for i in _ids(detector, text, path) if i.startswith("generic-")]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('api_key = "1d2129a1-3d38-460a-9756-e5b91fddb951"', "app/settings.py"),  # a UUID under a credential key
        ('CLIENT_SECRET = "9f1c2e7a4b0d8e3f6a5c1b9d2e7f4a08"', "app/settings.py"),
        ("DB_PASSWORD=VPvfCnABW1Z9gV", "deploy/.env"),
        ('ACCESS_TOKEN: "lpf5lTWUCPUa4qywx7M48DkKdkaQIcRoNsYtR9VH"', "deploy/values.yaml"),
        ('"password": "LHf5xpNzuBAS"', "app/config.json"),
    ],
)
def test_generic_rules_still_flag_real_looking_values(detector: RuleDetector, text: str, path: str) -> None:
    hits = [m for m in detector.scan(text.encode(), path=path) if m.rule_id.startswith("generic-")]
    assert hits and all(m.confidence is Confidence.MEDIUM for m in hits)


def test_a_specific_format_in_documentation_is_low_confidence(detector: RuleDetector) -> None:
    text = b"STRIPE_KEY=sk_live_QSIQwaxDEQ4RTEawjROSooZp\n"
    path = "stripe/examples/charge.rst"
    (doc,) = [m for m in detector.scan(text, path=path) if m.rule_id == "stripe-live-secret-key"]
    (real,) = [m for m in detector.scan(text, path="app/deploy.sh") if m.rule_id == "stripe-live-secret-key"]
    assert doc.confidence is Confidence.LOW
    assert real.confidence is Confidence.HIGH


def test_an_access_key_id_alone_in_documentation_is_an_example(detector: RuleDetector) -> None:
    text = b"aws_access_key_id = AKIA32P3D2JDNMVAJLGF\n"
    assert detector.scan(text, path="awscli/examples/ecr/get-url.rst") == []
    assert [m.rule_id for m in detector.scan(text, path="deploy/creds.ini")] == ["aws-access-key-id"]


def test_pem_marker_strings_in_code_are_no_key(detector: RuleDetector) -> None:
    code = b"if (pem.indexOf('-----BEGIN CERTIFICATE-----') !== 0) { parse('-----BEGIN PRIVATE KEY-----') }\n"
    doc = b"@param key e.g. `-----BEGIN RSA PRIVATE KEY----- MIIEpQIBAAKCAQEAuyf. -----END RSA PRIVATE KEY-----`\n"
    for text in (code, doc, b"-----BEGIN CERTIFICATE-----\n" + code):
        assert detector.scan(text, path="lib/x509.js") == []


def test_a_key_file_in_an_examples_folder_is_still_a_key(detector: RuleDetector) -> None:
    from tests.scan.keygen import generate

    pem = generate("rsa")
    data = pem if isinstance(pem, bytes) else pem.encode()
    hits = detector.scan(data, path="usr/share/doc/libxmlsec1-dev/examples/rsakey.pem")
    assert [(m.rule_id, m.confidence) for m in hits] == [("rsa-private-key", Confidence.HIGH)]


def test_documented_example_keys_are_dropped(detector: RuleDetector) -> None:
    body = "\n".join(["MIIEowIBAAKCAQEAEXAMPLEqeU2toBy5O5v7wnRLVo/tngVickL5+6Jf4tPrPeuoeb"] * 4)
    text = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\n".encode()
    assert detector.scan(text, path="notes/key.txt") == []


def test_files_are_docs_by_path_and_by_content_shape() -> None:
    assert file_context("pkg/docs/guide.txt", b"").docs
    assert file_context("README", b"").docs
    assert file_context("types/index.d.ts", b"").docs
    assert file_context("data/iam/2010-05-08/examples-1.json", b"{}").docs
    assert file_context("data/x.json", b'{\n  "kind": "discovery#restDescription", "discoveryVersion": "v1"').docs
    assert file_context("api.yaml", b"openapi: 3.0.1\ninfo: {}\n").docs
    assert not file_context("app/settings.json", b'{"password": "x"}').docs
    assert file_context("azure_keyvault_secrets-4.12.0.dist-info/METADATA", b"Metadata-Version: 2.1\n").docs
    assert file_context("pkg.egg-info/PKG-INFO", b"").docs and not file_context("app/metadata.json", b"{}").docs
    assert file_context("app/main.go", b"").code
    assert file_context("src/tests/test_api.py", b"").tests


def test_assignments_are_read_backwards_from_the_value() -> None:
    data = b'    "ClientRequestToken": "v"'
    found = parse_assignment(data, data.index(b'v"'))
    assert found is not None and found.key == b"ClientRequestToken" and found.quoted
    data = b"var apiToken string = `v`"
    found = parse_assignment(data, data.index(b"v`"))
    assert found is not None and found.key == b"apiToken" and found.separator == b"="


def test_word_and_text_shapes() -> None:
    assert looks_like_words(b"ExclusiveStartShardId")
    assert looks_like_words(b"my_sharedSecretHash")
    assert not looks_like_words(b"IeL7smt8Bd5EiKm3DCSwDUTeUKmUCjE")
    assert not looks_like_words(b"Summer2024Secret!")
    assert encodes_text(b"bXlzdGVyaW91c1BhZ2luYXRpb25Ub2tlbg==")
    assert not encodes_text(b"k1zPZM6uVxMQ3oxqgoYlNuJPyRTZ1vREs76zTQE3eJk=")
