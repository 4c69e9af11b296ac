"""Dockerfile rules and DockerfileSource, with the real detector on real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kinko.errors import ScanError
from kinko.scan.detect import default_detector
from kinko.scan.interface import Finding, FindingKind, ScanResult, Severity
from kinko.scan.sources.dockerfile import DockerfileSource

SEED = "FROM gcr.io/distroless/static\nCOPY secret /root/bad-secret\nRUN rm -f /root/bad-secret"
PG_URL = "postgresql://app:Sup3rS3cretPw9@db.internal:5432/app"


def scan(tmp_path: Path, text: str) -> tuple[list[Finding], ScanResult]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    result = ScanResult()
    return list(DockerfileSource(path).scan(default_detector(), result)), result


def rules(findings: list[Finding]) -> list[tuple[str, int | None]]:
    return sorted((f.rule_id, f.location.line) for f in findings if f.kind is FindingKind.MISCONFIG)


def test_seed_copy_then_rm(tmp_path: Path) -> None:
    findings, result = scan(tmp_path, SEED)
    [hit] = [f for f in findings if f.rule_id == "dockerfile-copy-then-rm"]
    assert hit.severity is Severity.HIGH and hit.location.line == 2
    assert "layer created by line 2 still contains it" in hit.message
    assert "/root/bad-secret" in hit.message and "--mount=type=secret" in hit.fix
    assert result.artifacts == [str(tmp_path / "Dockerfile")] and result.bytes_scanned == len(SEED)
    # removed, so not also reported as a credential file left in the final stage
    assert "dockerfile-credential-file-final-stage" not in {f.rule_id for f in findings}


@pytest.mark.parametrize(
    "text",
    [
        "FROM a\nCOPY secret /root/bad-secret\nRUN rm -rf /root",
        "FROM a\nWORKDIR /root\nCOPY secret ./\nRUN rm secret",
        "FROM a\nCOPY id_rsa /root/.ssh/\nRUN chmod 600 /root/.ssh/id_rsa && rm -f /root/.ssh/*",
        "FROM a\nARG D=/opt\nCOPY .npmrc ${D}/\nRUN npm ci && rm $D/.npmrc",
        "FROM a\nCOPY creds.pem /tmp/c.pem\nRUN <<EOF\nset -e\nrm /tmp/c.pem\nEOF",
        'FROM a\nCOPY app.key /k\nRUN ["rm", "-f", "/k"]',
        'FROM a\nCOPY .env /app/.env\nRUN ["/bin/sh", "-c", "cat /app/.env && rm /app/.env"]',
        "FROM a\nCOPY . /app\nRUN rm -f /app/.env",
        "# escape=`\nFROM a\nCOPY token.txt /t\nRUN echo `\n  && rm /t",
    ],
)
def test_copy_then_rm_variants(tmp_path: Path, text: str) -> None:
    findings, _ = scan(tmp_path, text)
    hits = [f for f in findings if f.rule_id == "dockerfile-copy-then-rm"]
    assert len(hits) == 1 and hits[0].severity is Severity.HIGH


def test_copy_then_rm_of_plain_file_is_medium_and_other_stage_does_not_count(tmp_path: Path) -> None:
    text = "FROM a\nCOPY requirements.txt /tmp/\nRUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt\n"
    findings, _ = scan(tmp_path, text)
    [hit] = [f for f in findings if f.rule_id == "dockerfile-copy-then-rm"]
    assert hit.severity is Severity.MEDIUM
    findings, _ = scan(tmp_path, "FROM a AS one\nCOPY secret /s\nFROM b\nRUN rm /s\n")
    assert "dockerfile-copy-then-rm" not in {f.rule_id for f in findings}


def test_copy_then_rm_in_unshipped_stage_is_medium(tmp_path: Path) -> None:
    findings, _ = scan(tmp_path, "FROM a AS build\nCOPY secret /s\nRUN rm /s\nFROM scratch\nCOPY --from=build /o /o\n")
    [hit] = [f for f in findings if f.rule_id == "dockerfile-copy-then-rm"]
    assert hit.severity is Severity.MEDIUM and "not in the final image" in hit.message
    findings, _ = scan(tmp_path, "FROM a AS base\nCOPY secret /s\nRUN rm /s\nFROM base\nRUN true\n")
    [hit] = [f for f in findings if f.rule_id == "dockerfile-copy-then-rm"]
    assert hit.severity is Severity.HIGH  # the final stage is built FROM base: its layers ship


def test_secret_mount_is_the_fix_and_not_flagged(tmp_path: Path) -> None:
    text = (
        "FROM node\n"
        "RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci\n"
        "RUN --mount=type=secret,id=tok,env=NPM_TOKEN npm publish --token $NPM_TOKEN\n"
        'RUN --mount=type=secret,id=pw curl -u "bob:$(cat /run/secrets/pw)" https://example.com\n'
    )
    findings, _ = scan(tmp_path, text)
    assert rules(findings) == []


def test_add_remote_url(tmp_path: Path) -> None:
    text = (
        "FROM a\nADD https://example.com/tool.tgz /opt/\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3c"
        "afd48dd869a9b2945d1036d1dc68d https://example.com/t.tgz /opt/\nADD git@github.com:o/r.git /src\n"
        "ADD local.tgz /opt/\n"
    )
    findings, _ = scan(tmp_path, text)
    assert rules(findings) == [("dockerfile-add-remote-url", 2), ("dockerfile-add-remote-url", 4)]


def test_secret_arg_and_env_names(tmp_path: Path) -> None:
    text = (
        "ARG GITHUB_TOKEN\nFROM a\nARG NPM_TOKEN\nARG DB_PASSWORD=hunter2\nENV API_KEY=x AppSecret=y\n"
        "ENV LEGACY_PASSWORD some value\nENV PASSWORD_FILE=/run/secrets/pw GPG_KEY=abc PATH=/bin\nARG VERSION=1\n"
    )
    findings, _ = scan(tmp_path, text)
    got = [(f.location.line, f.message.split(" at ")[0]) for f in findings if f.rule_id == "dockerfile-secret-arg-env"]
    assert got == [
        (1, "ARG GITHUB_TOKEN"),
        (3, "ARG NPM_TOKEN"),
        (4, "ARG DB_PASSWORD"),
        (5, "ENV API_KEY"),
        (5, "ENV AppSecret"),
        (6, "ENV LEGACY_PASSWORD"),
    ]
    default = next(f for f in findings if "DB_PASSWORD" in f.message)
    assert "default is recorded in the image history" in default.message


def test_credential_file_in_final_stage(tmp_path: Path) -> None:
    text = (
        "FROM a AS build\nCOPY id_ed25519 /root/.ssh/id_ed25519\n"
        "FROM b\nCOPY server.pem /etc/tls/\nCOPY config.json /root/.docker/\nCOPY app.py /app/\n"
        "COPY id_ed25519.pub /root/.ssh/\nCOPY --from=build /root/.ssh/id_ed25519 /k\n"
    )
    findings, _ = scan(tmp_path, text)
    assert rules(findings) == [
        ("dockerfile-credential-file-final-stage", 4),
        ("dockerfile-credential-file-final-stage", 5),
        ("dockerfile-credential-file-final-stage", 8),  # copied from another stage: still in the final image
    ]


@pytest.mark.parametrize(
    "run",
    [
        "curl -fsSL -u deploy:S3cretPass https://repo.example.com/x",
        "git clone https://bob:gh-pass-1234@github.com/o/r.git",
        "docker login -p hunter2hunter registry.example.com -u bob",
        "mysql -uroot -pRootPw123 -e 'select 1'",
        "echo '//registry.npmjs.org/:_authToken=npm_abcdefabcdef' > ~/.npmrc",
        "sshpass -p 'letmein99' ssh host",
        "export DB_PASSWORD=Zq8s7d6f5 && ./migrate",
        "./tool --password=abc123xyz",
    ],
)
def test_run_inline_credentials(tmp_path: Path, run: str) -> None:
    findings, _ = scan(tmp_path, f"FROM a\nRUN {run}\n")
    hits = [f for f in findings if f.rule_id == "dockerfile-run-inline-credentials"]
    assert hits and hits[0].location.line == 2 and hits[0].secret
    assert hits[0].secret not in hits[0].message  # the value stays out of messages


@pytest.mark.parametrize(
    "run",
    [
        'curl -u "$USER:$PASS" https://x',
        "docker login --password-stdin registry < /run/secrets/pw",
        "mysql -u root -p",
        "export TOKEN=$(cat /run/secrets/token) && ./go",
        "./tool --password=changeme",
    ],
)
def test_run_without_literal_credentials(tmp_path: Path, run: str) -> None:
    findings, _ = scan(tmp_path, f"FROM a\nRUN {run}\n")
    assert "dockerfile-run-inline-credentials" not in {f.rule_id for f in findings}


def test_inline_credentials_in_heredoc_get_their_own_line(tmp_path: Path) -> None:
    findings, _ = scan(tmp_path, "FROM a\nRUN <<EOF\nset -e\ncurl -u bob:Pa55word9 https://x\nEOF\n")
    [hit] = [f for f in findings if f.rule_id == "dockerfile-run-inline-credentials"]
    assert hit.location.line == 4


def test_detector_finds_literal_secrets_with_lines(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    text = (
        f"FROM a\nARG DATABASE_URL={PG_URL}\nENV AWS_ACCESS_KEY_ID=AKIAQ3EGRZ7XLM4VNB2K\n"
        f"RUN cat > /k.pem <<EOF\n{pem}EOF\n"
    )
    findings, _ = scan(tmp_path, text)
    secrets = {(f.rule_id, f.location.line) for f in findings if f.kind is FindingKind.SECRET}
    lines = {line for _, line in secrets}
    assert {2, 3, 5} <= lines, secrets
    assert any(rule.startswith("aws-access-key") and line == 3 for rule, line in secrets), secrets
    pg = next(f for f in findings if f.kind is FindingKind.SECRET and f.location.line == 2)
    assert pg.secret in PG_URL and "Sup3rS3cretPw9" not in repr(pg)


def test_kinko_allow_suppresses_rule_findings(tmp_path: Path) -> None:
    findings, _ = scan(tmp_path, "FROM a\nADD https://example.com/x /x\nLABEL note=kinko:allow\n")
    assert rules(findings) == [("dockerfile-add-remote-url", 2)]


def test_source_errors(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="cannot read Dockerfile"):
        list(DockerfileSource(tmp_path / "missing").scan(default_detector(), ScanResult()))
    (tmp_path / "Dockerfile").write_text("FROM a\nBOGUS x\n")
    with pytest.raises(ScanError, match=r"Dockerfile:2: unknown instruction"):
        list(DockerfileSource(tmp_path / "Dockerfile").scan(default_detector(), ScanResult()))


def test_meta_arg_scope_follows_buildkit(tmp_path: Path) -> None:
    # A meta ARG (before FROM) is only visible inside a stage that re-declares it.
    redeclared = "ARG DIR=/opt\nFROM a\nARG DIR\nCOPY .npmrc $DIR/\nRUN rm /opt/.npmrc\n"
    findings, _ = scan(tmp_path, redeclared)
    assert [f.location.line for f in findings if f.rule_id == "dockerfile-copy-then-rm"] == [4]
    not_declared = "ARG DIR=/opt\nFROM a\nCOPY .npmrc $DIR/\nRUN rm /opt/.npmrc\n"
    findings, _ = scan(tmp_path, not_declared)
    assert "dockerfile-copy-then-rm" not in {f.rule_id for f in findings}


def test_rm_of_a_double_slash_path_is_the_same_file(tmp_path: Path) -> None:
    """Found by tests/fuzz/test_scan_dockerfile.py: `//root/x` was kept as written (normpath keeps a leading //),
    so `rm -f //root/bad-secret` did not count as removing /root/bad-secret."""
    findings, _ = scan(tmp_path, SEED.replace("rm -f /root/", "rm -f //root/"))
    assert [f.location.line for f in findings if f.rule_id == "dockerfile-copy-then-rm"] == [2]
