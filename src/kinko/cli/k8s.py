"""`kinko k8s`: render SecretProviderClasses / native Secrets, and import Secret manifests into kinko."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from kinko import config
from kinko.cli._common import emit, handle_errors, output_option, vault_option
from kinko.cli._session import open_session
from kinko.core.types import K8S_TYPES
from kinko.deliver.k8s.render import (
    ANNOTATION_PREFIX,
    DEFAULT_MOUNT_PATH,
    DEFAULT_VOLUME_NAME,
    SECRET_WARNING,
    check_address,
    check_mount_path,
    dump_yaml,
    parse_object_ref,
    render_secret,
    render_spc,
    volume_snippet,
)
from kinko.errors import UsageError

#: The in-cluster address of the server in deploy/kinko-server.yaml.
DEFAULT_ADDRESS = "https://kinko.kinko.svc:8200"


@click.group("k8s")
def cli() -> None:
    """Kubernetes manifests: SecretProviderClasses, native Secrets, and importing existing Secrets."""


@cli.group("render")
def render() -> None:
    """Print manifests built from kinko paths."""


def _address(address: str | None) -> str:
    """--address, else KINKO_ADDR, else the in-cluster default; checked, with a warning when pods can't use it."""
    chosen = address or os.environ.get(config.ENV_ADDR) or DEFAULT_ADDRESS
    for warning in check_address(chosen, "--address" if address else "KINKO_ADDR"):
        click.echo(f"warning: {warning}", err=True)
    return chosen


@render.command("spc")
@click.argument("objects", nargs=-1, required=True)
@click.option("--name", required=True, help="SecretProviderClass name.")
@click.option("--namespace", required=True, help="Namespace of the pods that mount it.")
@click.option("--role", required=True, help="kinko Kubernetes auth role the pods log in with.")
@click.option("--address", help=f"kinko server URL as pods reach it (default KINKO_ADDR, else {DEFAULT_ADDRESS}).")
@click.option("--audience", help="Service-account token audience the role expects.")
@click.option("--mount-path", default=DEFAULT_MOUNT_PATH, show_default=True, help="Where containers see the files.")
@click.option("--volume-name", default=DEFAULT_VOLUME_NAME, show_default=True)
@output_option
@handle_errors
def render_spc_cmd(objects: tuple[str, ...], name: str, namespace: str, role: str, address: str | None,
                   audience: str | None, mount_path: str, volume_name: str, output: str) -> None:
    """OBJECTS: PATH[#key][=objectName] ... (files are 0400; the file name defaults to the key or last segment)."""
    parsed = [parse_object_ref(text) for text in objects]
    check_mount_path(mount_path)
    spc = render_spc(name, namespace, parsed, role=role, address=_address(address), audience=audience)
    snippet = volume_snippet(name, name=volume_name, mount_path=mount_path)
    if output == "json":
        click.echo(json.dumps({"secretProviderClass": spc, "pod": snippet}, indent=2))
        return
    click.echo(dump_yaml([spc]), nl=False)
    click.echo("# Pod spec: add under spec.volumes, and the mount under each container's volumeMounts.")
    click.echo("# " + dump_yaml([snippet]).replace("\n", "\n# ").rstrip("# ").rstrip())


@render.command("encryption-config")
@click.option("--socket", default="/var/run/kinko/kms.sock", show_default=True,
              help="The socket `kinko kms-plugin --socket` listens on (as the API server sees it).")
@click.option("--name", default="kinko", show_default=True, help="Provider name (stored with the data: keep it).")
@click.option("--timeout", default="3s", show_default=True)
@click.option("--resource", "resources", multiple=True, default=("secrets",), show_default=True,
              help="Resources to encrypt (repeatable).")
@click.option("--no-identity", is_flag=True, help="Leave out the identity fallback (only once every object was "
                                                  "rewritten encrypted).")
@output_option
@handle_errors
def render_encryption_config_cmd(socket: str, name: str, timeout: str, resources: tuple[str, ...],
                                 no_identity: bool, output: str) -> None:
    """The kube-apiserver EncryptionConfiguration for the kinko KMS v2 plugin (--encryption-provider-config)."""
    from kinko.deliver.kms.config import encryption_config

    doc = encryption_config(socket=socket, name=name, timeout=timeout, resources=resources,
                            keep_identity=not no_identity)
    emit(output, doc, lambda: dump_yaml([doc]).rstrip("\n"))


@render.command("secret")
@vault_option
@click.argument("path")
@click.option("--name", required=True, help="Secret name.")
@click.option("--namespace", required=True)
@click.option("--type", "secret_type", help="Kubernetes Secret type (default: the kinko secret's type, else Opaque).")
@click.option("--key", "single_key", help="Key for a single-value secret (default: the path's last segment).")
@click.option("--version", type=int, help="kinko version to render (default: current).")
@output_option
@handle_errors
def render_secret_cmd(vault_path: str, path: str, name: str, namespace: str, secret_type: str | None,
                      single_key: str | None, version: int | None, output: str) -> None:
    """Print a typed native Secret built from PATH (base64 is not encryption: prefer `render spc`)."""
    if secret_type is not None and secret_type not in K8S_TYPES:
        raise UsageError(f"--type {secret_type[:64]!r} is not a Kubernetes Secret type; use one of: "
                         f"{', '.join(sorted(K8S_TYPES))}")
    secret = open_session(vault_path).get(path, version)
    kind = secret_type or (secret.info.attributes.content_type
                           if secret.info.attributes.content_type in K8S_TYPES else "Opaque")
    annotations = {ANNOTATION_PREFIX + "source": f"{path}@{secret.info.version}"}
    doc = render_secret(name, namespace, secret.value, secret_type=kind,
                        single_key=single_key or path.rsplit("/", 1)[-1], annotations=annotations)
    click.echo(SECRET_WARNING, err=True)
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(dump_yaml([doc]), nl=False)


@cli.command("import")
@vault_option
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--prefix", required=True, help="kinko folder; each Secret goes to PREFIX/<namespace>/<name>.")
@click.option("--apply", "apply_", is_flag=True, help="Store the secrets and write the manifests (default: dry run).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="New or empty directory for the replacement manifests (needed with --apply).")
@click.option("--role", help="kinko Kubernetes auth role for the SecretProviderClasses (needed with --apply).")
@click.option("--address", help=f"kinko server URL for pods (default KINKO_ADDR, else {DEFAULT_ADDRESS}).")
@click.option("--audience", help="Service-account token audience the role expects.")
@click.option("--mount-path", default=DEFAULT_MOUNT_PATH, show_default=True,
              help="Where moved env vars appear as files: MOUNT/<secret>/<key>.")
@output_option
@handle_errors
def import_cmd(vault_path: str, source: Path, prefix: str, apply_: bool, out_dir: Path | None, role: str | None,
               address: str | None, audience: str | None, mount_path: str, output: str) -> None:
    """Move Secret manifests in SOURCE (file or directory) into kinko and rewrite their consumers to use CSI."""
    from kinko.deliver.k8s.importer import check_out_dir, plan_import, store_secrets, write_outputs

    if apply_ and (out_dir is None or not role):
        raise UsageError("--apply needs --out DIR and --role ROLE")
    check_mount_path(mount_path)
    if out_dir is not None:
        check_out_dir(out_dir)
    plan = plan_import(source, prefix, role=role or "CHANGE-ME", address=_address(address), audience=audience,
                       mount_root=mount_path)
    if apply_:
        assert out_dir is not None
        store_secrets(open_session(vault_path), plan.secrets)
        written = write_outputs(plan, out_dir)
    summary = {**plan.summary(), "applied": apply_, "diff": plan.diff()}
    if apply_:
        summary["written"] = [str(p) for p in written]
    emit(output, summary, lambda: _text(plan.diff(), summary))


def _text(diff: str, summary: dict[str, object]) -> str:
    lines = [diff.rstrip("\n")] if diff else []
    secrets = summary["secrets"]
    assert isinstance(secrets, list)
    verb = "stored" if summary["applied"] else "would store"
    lines.append(f"# {verb} {len(secrets)} secret(s) in kinko (values never shown):")
    lines += [f"#   {s['path']}  type={s['type']}  keys={','.join(s['keys'])}  from {s['source']}" for s in secrets]
    moved = summary["moved_env"]
    assert isinstance(moved, list)
    if moved:
        lines.append("# environment variables moved to read-only files (the application must read these files):")
        lines += [f"#   {m}" for m in moved]
    warnings = summary["warnings"]
    assert isinstance(warnings, list)
    lines += [f"# warning: {w}" for w in warnings]
    if summary["applied"]:
        lines.append(f"# wrote {len(summary['written'])} file(s)")  # type: ignore[arg-type]
    else:
        lines.append("# dry run: nothing stored, nothing written (add --apply --out DIR --role ROLE)")
    return "\n".join(lines)
