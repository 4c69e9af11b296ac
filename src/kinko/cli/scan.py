"""The `kinko scan` command group: image, dockerfile, k8s and dir scans with text/JSON/SARIF reports."""

from __future__ import annotations

import datetime
import functools
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from kinko import config
from kinko.cli._common import failing_with
from kinko.scan.interface import ScanResult, Severity, Source

if TYPE_CHECKING:
    from kinko.scan.detect.known import KnownValues
from kinko.scan.report import FORMATS

F = TypeVar("F", bound=Callable[..., Any])
_SEVERITIES = [s.name.lower() for s in Severity]
#: A scan that failed (not an image, a bad baseline, an unreadable path) did not scan: it exits like an
#: incomplete one (kinko.scan.run.INCOMPLETE), never 1, which means "found something".
_FAILED = 3


def common_options(func: F) -> F:
    """Options every scan subcommand takes."""
    options = [
        click.option("--output", "-o", type=click.Choice(FORMATS), default="text",
                     show_default=True, help="Report format."),
        click.option("--output-file", type=click.Path(dir_okay=False, writable=True),
                     help="Write the report here instead of stdout."),
        click.option("--show-secrets", is_flag=True, help="Print secret values instead of a redacted prefix."),
        click.option("--fail-on", type=click.Choice(_SEVERITIES, case_sensitive=False), default="high",
                     show_default=True, help="Exit 1 when a finding is at least this severe."),
        click.option("--allow-incomplete", is_flag=True,
                     help="Exit 0 (or 1 for findings) even when part of the artifact was not scanned (a size or "
                          "bomb limit hit, an unreadable file or layer); without it such a scan exits 3. The report "
                          "lists every skipped part either way."),
        click.option("--exit-code", "exit_status", type=click.IntRange(0, 255), default=None,
                     help="Exit with this status (instead of 1) when a finding reaches --fail-on (like Trivy's "
                          "--exit-code); 0 reports findings without failing."),
        click.option("--known-from-vault", is_flag=True,
                     help="Also report every exact occurrence of a value stored in the vault (KINKO_ADDR, else the "
                          "local --vault), critical, with its vault path, whatever its shape. Needs the `scan` "
                          "capability on the paths; the vault answers keyed fingerprints made with a random "
                          "per-scan key, never values."),
        click.option("--vault-prefix", default="", show_default=True,
                     help="With --known-from-vault: only the secrets under this vault path."),
        click.option("--vault", "vault_path", envvar=config.ENV_VAULT, default=config.DEFAULT_VAULT,
                     type=click.Path(dir_okay=False), help="Local vault for --known-from-vault (env KINKO_VAULT)."),
        click.option("--baseline", type=click.Path(exists=True, dir_okay=False),
                     help="Ignore findings listed in this baseline file."),
        click.option("--write-baseline", type=click.Path(dir_okay=False, writable=True),
                     help="Write every current finding to this baseline file (mode 0600) and accept them: "
                          "the report still lists them, but the exit status is 0. The file holds keyed hashes; "
                          "without KINKO_BASELINE_KEY (hex, >= 32 bytes) it also holds the key, so anyone who reads "
                          "it can test guessed secrets offline. Commit a baseline only with KINKO_BASELINE_KEY set "
                          "(e.g. in CI secrets): the key then stays out of the file and is needed to read it."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def _progress() -> Iterator[Callable[[ScanResult], None]]:
    """A spinner with counts on stderr, only when stderr is a terminal (CI logs stay clean)."""
    if not sys.stderr.isatty():
        yield lambda result: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:  # fmt: skip
        task = progress.add_task("scanning")

        def tick(result: ScanResult) -> None:
            mib = result.bytes_scanned / 2**20
            progress.update(task, description=f"scanning: {len(result.findings)} finding(s), {mib:.1f} MiB")

        yield tick


def _write_report(text: str, output_file: str | None, show_secrets: bool) -> None:
    if output_file is None:
        click.echo(text, nl=False)
        return
    if show_secrets:
        _write_private(text, Path(output_file))
        return
    fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_private(text: str, target: Path) -> None:
    """A report with real secret values: a new 0600 file renamed over `target`.

    Truncating in place would keep an existing file's (maybe world-readable) mode and write through a symlink
    planted at `target`; a rename replaces the directory entry itself.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _known_values(vault_path: str, prefix: str) -> KnownValues:
    """Fingerprints of the vault's values under `prefix`, keyed with a fresh random key kept only in memory."""
    import secrets as random

    from kinko.cli._session import open_session
    from kinko.core.fingerprints import DEFAULT_ALGORITHM, KEY_BYTES
    from kinko.scan.detect.known import KnownValues

    key = random.token_bytes(KEY_BYTES)
    known = KnownValues(open_session(vault_path).scan_fingerprints(prefix, key, DEFAULT_ALGORITHM), key)
    where = f" under {prefix!r}" if prefix else ""
    click.echo(f"known-from-vault: {len(known)} stored value(s){where} to look for", err=True)
    return known


def run_scan(source: Source, *, output: str, output_file: str | None, show_secrets: bool, fail_on: str,
             baseline: str | None, write_baseline: str | None, allow_incomplete: bool = False,
             exit_status: int | None = None, known_values: KnownValues | None = None) -> None:  # fmt: skip
    """Scan (kinko.scan.run), write the report, and exit with `exit_code`: 1 if a finding reaches `fail_on`,
    else 3 if part of the artifact was not scanned (unless `allow_incomplete`).

    The environment is read here (KINKO_BASELINE_KEY, KINKO_SCAN_ENGINE, KINKO_SCAN_CACHE, XDG_CACHE_HOME) and
    passed down: the scanner library never reads it.
    """
    from kinko.scan.baseline import parse_key
    from kinko.scan.report import ReportOptions, render
    from kinko.scan.run import FINDINGS, INCOMPLETE, exit_code, scan

    # Decoded before scanning: a malformed key is refused (never echoed) even on runs that would not use it.
    baseline_key = parse_key(os.environ.get(config.ENV_BASELINE_KEY))
    engine, cache_dir = config.scan_engine(os.environ), config.scan_cache_dir(os.environ)
    with _progress() as tick:
        result = scan(source, baseline=baseline, write_baseline=write_baseline, on_finding=tick,
                      baseline_key=baseline_key, engine=engine, cache_dir=cache_dir,
                      known_values=known_values)  # fmt: skip
    if result.accepted is not None:
        click.echo(f"baseline written to {write_baseline}: {result.accepted} finding(s) accepted", err=True)
        if baseline_key is None:
            click.echo("note: the baseline's HMAC key is stored in the file; anyone who reads it can confirm a "
                       "guessed secret. Set KINKO_BASELINE_KEY (a CI secret) before committing a baseline.", err=True)
    options = ReportOptions(show_secrets=show_secrets, fingerprint_key=result.fingerprint_key)
    # A terminal gets colors and its own width; a pipe or a file gets plain text, never hard-wrapped.
    color = output == "text" and output_file is None and sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if color else None
    report = render(result, output, options, rules=result.rules, color=color, width=width)
    _write_report(report, output_file, show_secrets)
    code = exit_code(result, Severity.parse(fail_on), allow_incomplete)
    if code == INCOMPLETE:
        click.echo(f"scan incomplete: {len(result.incomplete)} part(s) not scanned (listed in the report); exit "
                   "status 3. --allow-incomplete accepts an incomplete scan.", err=True)  # fmt: skip
    if code == FINDINGS and exit_status is not None:
        code = exit_status
    if code:
        sys.exit(code)


def _scan_command(func: F) -> F:
    """Common options + one-line errors for a subcommand whose body returns the Source to scan."""

    @functools.wraps(func)
    def wrapper(*args: Any, output: str, output_file: str | None, show_secrets: bool, fail_on: str,
                baseline: str | None, write_baseline: str | None, allow_incomplete: bool,
                exit_status: int | None, known_from_vault: bool, vault_prefix: str, vault_path: str,
                **kwargs: Any) -> None:  # fmt: skip
        source = func(*args, **kwargs)
        known = _known_values(vault_path, vault_prefix) if known_from_vault else None
        run_scan(source, output=output, output_file=output_file, show_secrets=show_secrets, fail_on=fail_on,
                 baseline=baseline, write_baseline=write_baseline, allow_incomplete=allow_incomplete,
                 exit_status=exit_status, known_values=known)  # fmt: skip

    return common_options(failing_with(_FAILED)(cast(F, wrapper)))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Find secrets leaked into images, Dockerfiles, Kubernetes manifests and files.

    Exit status: 0 clean (or --write-baseline given: the findings are accepted), 1 a finding at or above
    --fail-on, 2 usage error, 3 incomplete: part of the artifact was not scanned (a size or bomb limit hit, an
    unreadable file or layer; --allow-incomplete accepts it), or the scan failed (not an image, a bad baseline,
    an unreachable registry; never accepted). Findings win: 1 even if incomplete.
    """


@cli.command("image")
@click.argument("image")
@click.option("--no-config", is_flag=True, help="Skip the image config (Env, Labels, Cmd, history).")
@click.option("--workers", type=click.IntRange(min=1), help="Layers scanned in parallel (default: CPU count).")
@click.option("--platform", default="linux/amd64", show_default=True,
              help="Which image of a multi-platform index to pull (os/arch[/variant]).")
@click.option("--plain-http/--tls", "plain_http", default=None,
              help="Speak plain HTTP (or TLS) to the registry. Default: plain HTTP to a loopback registry only.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA bundle for the registry's TLS.")
@_scan_command
def image_command(image: str, no_config: bool, workers: int | None, platform: str, plain_http: bool | None,
                  ca_file: str | None) -> Source:  # fmt: skip
    """Scan every layer of an image, deleted files included: a `docker save` / OCI / podman archive (a path), or
    an image pulled from a registry (`host[:port]/name[:tag][@sha256:...]`; credentials from the Docker config,
    $DOCKER_CONFIG/config.json or ~/.docker/config.json; the layers go to a private temp dir, removed after)."""
    from kinko.scan.sources.image import ImageSource

    if _is_path(image):
        if not Path(image).exists():
            raise click.BadParameter(f"{image!r}: no such file or directory", param_hint="IMAGE")
        return ImageSource(image, workers=workers, scan_config=not no_config)
    from kinko.scan.sources.registry import RegistrySource

    return RegistrySource(image, docker_config=config.docker_config_path(os.environ), plain_http=plain_http,
                          platform=platform, ca_file=Path(ca_file) if ca_file else None, workers=workers,
                          scan_config=not no_config)  # fmt: skip


def _is_path(image: str) -> bool:
    """A path (an archive or OCI layout dir) rather than a registry reference: it exists, or it is written like
    a path (`./x`, `/x`, `~/x`, an archive suffix)."""
    written_as_path = image.startswith((".", "/", "~")) or image.lower().endswith(_ARCHIVE_SUFFIXES)
    return written_as_path or Path(image).exists()


_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".oci")


@cli.command("dockerfile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_scan_command
def dockerfile_command(file: str) -> Source:
    """Scan a Dockerfile for baked-in secrets and unsafe build practices."""
    from kinko.scan.sources.dockerfile import DockerfileSource

    return DockerfileSource(file)


@cli.command("k8s")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@_scan_command
def k8s_command(paths: tuple[str, ...]) -> Source:
    """Scan Kubernetes manifests (files or directories, YAML or JSON)."""
    from kinko.scan.sources.kubernetes import KubernetesSource

    return KubernetesSource([Path(p) for p in paths])


@cli.command("dir")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@click.option("--exclude", multiple=True, help="gitignore-style pattern to skip (repeatable).")
@_scan_command
def dir_command(paths: tuple[str, ...], exclude: tuple[str, ...]) -> Source:
    """Scan folders (honours .gitignore and --exclude), files, or `-` (standard input); several at once, as a
    pre-commit hook passes them."""
    from kinko.scan.sources.directory import DirectorySource
    from kinko.scan.sources.many import ManySource

    sources = [DirectorySource(path, excludes=list(exclude)) for path in paths]
    return sources[0] if len(sources) == 1 else ManySource(sources)


@cli.command("git")
@click.argument("repo", default=".", type=click.Path(exists=True, file_okay=False))
@click.option("--branch", help="Walk this branch's history instead of HEAD's.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Only commits made on or after this date (YYYY-MM-DD).")  # fmt: skip
@click.option("--staged", is_flag=True, help="Scan only what is staged (the pre-commit view), not history.")
@_scan_command
def git_command(repo: str, branch: str | None, since: datetime.datetime | None, staged: bool) -> Source:
    """Scan a git repository's history (every blob ever committed, with commit, author date and path), or what is
    staged. A secret removed since is still in every clone: such findings are `deleted`, not gone."""
    from kinko.scan.sources.git import GitSource

    when = since.replace(tzinfo=datetime.UTC) if since is not None else None
    return GitSource(repo, branch=branch, since=when, staged=staged)
