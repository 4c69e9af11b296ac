"""kinko.deliver.k8s.render: object references, SecretProviderClasses, CSI volume snippets, typed Secrets."""

from __future__ import annotations

import base64

import pytest

from kinko.deliver.k8s.render import (
    CSI_DRIVER,
    SPC_API_VERSION,
    CsiObject,
    parse_object_ref,
    render_secret,
    render_spc,
    volume_snippet,
)
from kinko.errors import InvalidInput, InvalidSecretType, UsageError
from tests.deliver.k8s.apps import CANARY, b64, load_all, spc_objects

ALLOWED_OBJECT_KEYS = {"objectName", "secretPath", "secretKey", "version", "filePermission", "encoding"}


def test_parse_object_ref_defaults_and_errors() -> None:
    assert parse_object_ref("team/app/db#password") == CsiObject("password", "team/app/db", "password")
    assert parse_object_ref("team/app/api") == CsiObject("api", "team/app/api")
    assert parse_object_ref("team/app/db#user=db-user.txt").object_name == "db-user.txt"
    for bad in ("team/app/db#", "team/app/db=", "team/../db", "team/app/db=../escape", "team/app/db=/abs"):
        with pytest.raises((UsageError, InvalidInput)):
            parse_object_ref(bad)


def test_render_spc_shape_and_objects_as_the_provider_reads_them() -> None:
    objects = [parse_object_ref("team/app/db#password"), parse_object_ref("team/app/api=api.txt")]
    spc = render_spc("app-secrets", "shop", objects, role="shop-app", address="https://kinko:8200", audience="kinko")
    assert spc["apiVersion"] == SPC_API_VERSION and spc["kind"] == "SecretProviderClass"
    assert spc["spec"]["provider"] == "kinko"
    params = spc["spec"]["parameters"]
    assert {k: params[k] for k in ("kinkoAddress", "roleName", "audience")} == {
        "kinkoAddress": "https://kinko:8200", "roleName": "shop-app", "audience": "kinko"}
    parsed = spc_objects(spc)
    assert all(set(o) <= ALLOWED_OBJECT_KEYS for o in parsed)  # the provider rejects unknown keys
    assert parsed[0] == {"objectName": "password", "secretPath": "team/app/db", "secretKey": "password",
                         "filePermission": 0o400}  # YAML 0400 -> 256, as yaml.v3 and PyYAML both read it
    assert "filePermission: 0400" in params["objects"]
    assert parsed[1]["objectName"] == "api.txt" and "secretKey" not in parsed[1]
    # The whole SPC survives a YAML round trip unchanged (the objects string stays a string).
    from kinko.deliver.k8s.render import dump_yaml
    assert load_all(dump_yaml([spc])) == [spc]


def test_render_spc_rejects_duplicates_and_bad_names() -> None:
    dup = [parse_object_ref("a/b#k"), parse_object_ref("a/c#k")]
    with pytest.raises(UsageError, match="used twice"):
        render_spc("x", "ns", dup, role="r", address="https://k")
    with pytest.raises(UsageError, match="subdomain"):
        render_spc("Bad_Name", "ns", [parse_object_ref("a/b")], role="r", address="https://k")
    with pytest.raises(UsageError):
        render_spc("x", "ns", [], role="r", address="https://k")


def test_volume_snippet_is_read_only_csi() -> None:
    snippet = volume_snippet("app-secrets")
    volume = snippet["volumes"][0]
    assert volume["csi"] == {"driver": CSI_DRIVER, "readOnly": True,
                             "volumeAttributes": {"secretProviderClass": "app-secrets"}}
    assert snippet["volumeMounts"][0]["readOnly"] is True and snippet["volumeMounts"][0]["name"] == volume["name"]


def test_render_secret_typed_and_validated() -> None:
    doc = render_secret("db", "shop", {"password": CANARY.encode()}, secret_type="Opaque", single_key="x")
    assert doc["type"] == "Opaque" and base64.b64decode(doc["data"]["password"]) == CANARY.encode()
    single = render_secret("api", "shop", b"tok", single_key="api-key")
    assert single["data"] == {"api-key": b64("tok")}
    with pytest.raises(InvalidSecretType, match=r"tls\.key"):
        render_secret("t", "shop", {"tls.crt": b"x"}, secret_type="kubernetes.io/tls", single_key="x")
    with pytest.raises(InvalidInput, match="not one of"):
        render_secret("t", "shop", b"v", secret_type="text", single_key="x")


def test_rendered_objects_parse_in_the_csi_provider() -> None:
    """What `render spc` and `import` write is what the provider (kinko.deliver.csi.params) accepts."""
    from kinko.deliver.csi.params import parse_objects

    objects = [parse_object_ref("team/app/db#password"), parse_object_ref("team/app/api=conf/api.txt")]
    spc = render_spc("app", "shop", objects, role="r", address="https://k")
    parsed = parse_objects(spc["spec"]["parameters"]["objects"])
    assert [(o.object_name, o.secret_path, o.secret_key, o.file_permission) for o in parsed] == [
        ("password", "team/app/db", "password", 0o400), ("conf/api.txt", "team/app/api", None, 0o400)]
