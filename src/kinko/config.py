"""Where kinko looks by default (~/.kinko/...), the environment variables it reads, and the one duration parser.

Only cli/ and process entry points read the environment; they pass what they read to library code as
parameters. Durations use Vault's syntax everywhere: `90s`, `15m`, `1h30m`, `7d`, a plain number of seconds,
and `+90d` where a point in time is meant.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from kinko.errors import UsageError

DEFAULT_VAULT = "~/.kinko/vault.db"
TOKEN_FILE = "~/.kinko/token"

ENV_ADDR = "KINKO_ADDR"
ENV_TOKEN = "KINKO_TOKEN"
ENV_CACERT = "KINKO_CACERT"
ENV_VAULT = "KINKO_VAULT"
#: Where the vault is stored when it is not a local file: a PostgreSQL URL (`postgresql://user@host/db?...`).
ENV_STORAGE = "KINKO_STORAGE"
ENV_PASSPHRASE = "KINKO_PASSPHRASE"
ENV_UNSEAL_SHARES = "KINKO_UNSEAL_SHARES"
#: The scanner's baseline HMAC key (kept out of baseline files): a secret too.
ENV_BASELINE_KEY = "KINKO_BASELINE_KEY"
#: kinko's own credentials: never inherited by a command kinko starts (`kinko run`, the agent's hook).
CREDENTIAL_ENV = frozenset({ENV_TOKEN, ENV_PASSPHRASE, ENV_UNSEAL_SHARES, ENV_BASELINE_KEY})

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
EXAMPLES = "90s, 15m, 1h30m or 7d"


def expand(path: str) -> Path:
    """A user-given path with `~` expanded."""
    return Path(path).expanduser()


def is_storage_url(text: str) -> bool:
    """A PostgreSQL URL (`postgresql://` or `postgres://`), or `sqlite:PATH`: a storage location, not a file name."""
    return text.startswith(("postgresql://", "postgres://", "sqlite:"))


def check_storage_url(url: str, *, option: str, on_command_line: bool) -> str:
    """A storage URL as given; UsageError for one that is not a URL, or that holds a password on the command line
    (every user on the host can read a process's arguments): the password comes from `?passfile=FILE` or
    PGPASSFILE, or the URL from KINKO_STORAGE or the config file instead."""
    if not is_storage_url(url):
        raise UsageError(f"{option}: {url!r} is not a storage URL (postgresql://user@host:5432/db, sqlite:PATH)")
    if on_command_line and url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        if parts.password is not None or any(k.lower() == "password" for k, _ in parse_qsl(parts.query)):
            raise UsageError(f"{option}: a password in the URL would be visible to every user of this host (ps); "
                             f"give it in a passfile (?passfile=FILE or PGPASSFILE), or set the URL in "
                             f"{ENV_STORAGE} or the config file")
    return url


def shown_location(location: str | Path) -> str:
    """A storage location fit to print: a URL's password (in the authority or `?password=`) is left out."""
    text = str(location)
    if not text.startswith(("postgresql://", "postgres://")):
        return text
    parts = urlsplit(text)
    netloc = parts.netloc.rpartition("@")
    if parts.password is not None:
        netloc = (f"{parts.username}", "@", netloc[2])
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query) if k.lower() != "password")
    return parts._replace(netloc="".join(netloc), query=query).geturl()


def parse_duration(text: str | float, *, option: str, minimum: float = 0.0, maximum: float | None = None) -> float:
    """Seconds from `90s`, `15m`, `1h30m`, `7d`, `1.5h`, `500ms` or a plain number of seconds.

    Errors are UsageError naming `option` (a flag such as `--ttl` or a config key) with an example; a duration
    must be greater than `minimum` and at most `maximum`.
    """
    if isinstance(text, bool):
        raise UsageError(f"{option}: expected a duration such as {EXAMPLES}")
    seconds = float(text) if isinstance(text, int | float) else _parse_text(text.strip().lower(), option)
    if seconds <= minimum:
        raise UsageError(f"{option}: {text!r} must be longer than {_show(minimum)} (e.g. {EXAMPLES})")
    if maximum is not None and seconds > maximum:
        raise UsageError(f"{option}: {text!r} is longer than the maximum, {_show(maximum)}")
    return seconds


def _parse_text(text: str, option: str) -> float:
    if _NUMBER.fullmatch(text):
        return float(text)
    parts, end = [], 0
    for match in _PART.finditer(text):
        if match.start() != end:
            break
        parts.append(float(match.group(1)) * _UNITS[match.group(2)])
        end = match.end()
    if not parts or end != len(text):
        raise UsageError(f"{option}: {text!r} is not a duration; use e.g. {EXAMPLES} (or seconds)")
    return sum(parts)


def _show(seconds: float) -> str:
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def parse_moment(text: str, *, option: str, now: Callable[[], float] = time.time) -> float:
    """A point in time: ISO 8601 (UTC when no offset) or `+DURATION` from now (`+90d`, `+1h30m`)."""
    text = text.strip()
    if text.startswith("+"):
        return now() + parse_duration(text[1:], option=option)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not an ISO 8601 time (2030-01-31T12:00:00Z) or +DURATION "
                         f"(+90d, +1h30m)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class ClientSettings:
    """How to reach a server: address, token (never shown) and CA bundle."""

    addr: str | None
    token: str | None = field(default=None, repr=False)
    ca_file: str | None = None


def client_settings(env: Mapping[str, str], *, warn: Callable[[str], None] | None = None) -> ClientSettings:
    """KINKO_ADDR / KINKO_TOKEN / KINKO_CACERT; without KINKO_TOKEN, the token `kinko login` stored for that
    address (~/.kinko/token)."""
    addr = env.get(ENV_ADDR) or None
    token = env.get(ENV_TOKEN) or None
    if token is None and addr:
        token = stored_token(addr, expand(TOKEN_FILE), warn=warn)
    return ClientSettings(addr, token, env.get(ENV_CACERT) or None)


def server_addresses(addr: str) -> list[str]:
    """The servers an address setting names: one URL, or several separated by commas (KINKO_ADDR, the agent's
    `address`, the CSI provider's --addr) that a client tries in turn when one cannot be reached."""
    return [part.strip().rstrip("/") for part in addr.split(",") if part.strip()]


def same_server(a: str, b: str) -> bool:
    """Whether two address settings name the same servers, in the same order."""
    return [x.lower() for x in server_addresses(a)] == [y.lower() for y in server_addresses(b)]


def stored_token(addr: str, path: Path, *, warn: Callable[[str], None] | None = None) -> str | None:
    """The token `kinko login` stored for server `addr` ({"addr", "token"} JSON in `path`), else None.

    A file written for another server is not sent to this one; an old plain-token file does not say which
    server it is for, so it is ignored too. Either way `warn` hears one line saying to log in again.
    """
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    note = warn or (lambda _message: None)
    if not isinstance(doc, dict) or not isinstance(doc.get("addr"), str) or not isinstance(doc.get("token"), str):
        note(f"{TOKEN_FILE} does not say which server it is for (older format); ignored: run `kinko login`")
        return None
    if not same_server(doc["addr"], addr):
        note(f"{TOKEN_FILE} is for {doc['addr']}, not {addr}; ignored: run `kinko login` for this server")
        return None
    return doc["token"] or None


# -- the scanner (`kinko scan`) -------------------------------------------------------------------------------

ENV_SCAN_CACHE = "KINKO_SCAN_CACHE"
ENV_SCAN_ENGINE = "KINKO_SCAN_ENGINE"
ENV_XDG_CACHE_HOME = "XDG_CACHE_HOME"
#: `keyword` forces the pyahocorasick fallback; `auto` is hyperscan when it is installed.
ScanEngine = Literal["auto", "keyword"]
_OFF = frozenset({"0", "off", "no", "false"})


def scan_cache_dir(env: Mapping[str, str]) -> Path | None:
    """Where compiled scanner rules are kept: None when KINKO_SCAN_CACHE is 0/off/no/false, else
    `$XDG_CACHE_HOME/kinko` when that is an absolute path (as the XDG spec requires), else `~/.cache/kinko`."""
    if env.get(ENV_SCAN_CACHE, "1").strip().lower() in _OFF:
        return None
    base = env.get(ENV_XDG_CACHE_HOME, "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "kinko"


def scan_engine(env: Mapping[str, str]) -> ScanEngine:
    """`keyword` when KINKO_SCAN_ENGINE says so (benchmarks, debugging), else `auto`."""
    return "keyword" if env.get(ENV_SCAN_ENGINE, "").lower() == "keyword" else "auto"


def docker_config_path(env: Mapping[str, str]) -> Path:
    """The Docker client config `kinko scan image REF` takes registry credentials from, found as the docker CLI
    finds it: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    base = env.get("DOCKER_CONFIG", "")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"
