"""The `kinko` command group. Subcommand modules are imported lazily so `kinko --help` starts fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

#: command name -> "module:attribute"; each module owns one command group.
_COMMANDS: dict[str, tuple[str, str]] = {
    "operator": ("kinko.cli.operator", "Initialise, unseal, seal, inspect and rotate a vault."),
    "secret": ("kinko.cli.secret", "Store, read, list, delete and recover secrets."),
    "server": ("kinko.cli.server", "Serve the HTTP API (or a throwaway --dev server)."),
    "login": ("kinko.cli.login", "Check a token against a server and store it for later commands."),
    "token": ("kinko.cli.token", "Create, look up, renew and revoke tokens."),
    "policy": ("kinko.cli.policy", "Write, read, list and delete access policies."),
    "key": ("kinko.cli.key", "Named keys: encrypt, decrypt, rewrap, sign and verify; the key never leaves."),
    "audit": ("kinko.cli.audit", "Hash a value as the audit log does; verify an audit file's chain."),
    "scan": ("kinko.cli.scan", "Find secrets leaked into images, Dockerfiles, manifests and files."),
    "run": ("kinko.cli.run", "Run a command with secrets in its environment (resolved first, all or nothing)."),
    "agent": ("kinko.cli.agent", "Render secrets into files and keep them current (token or Kubernetes auth)."),
    "auth": ("kinko.cli.auth", "Configure Kubernetes auth and its roles; log in with a service-account token."),
    "csi-provider": ("kinko.cli.csi", "Serve the Secrets Store CSI driver's provider API on a Unix socket."),
    "kms-plugin": ("kinko.cli.kms", "Serve the Kubernetes KMS v2 plugin API on a Unix socket (etcd encryption)."),
    "k8s": ("kinko.cli.k8s", "Render SecretProviderClasses and Secrets; import Secret manifests into kinko."),
    "remediate": ("kinko.cli.remediate", "Turn a scan report into a plan: import, rewrite, deliver, rotate."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = module.cli
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help uses the short descriptions above so listing commands imports nothing.
        rows = [(name, _COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kinko")
def cli() -> None:
    """kinko (金庫): a self-hosted secrets vault for containers and Kubernetes, and a leak scanner."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="kinko")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
