"""What the scanner needs from RUN shell text: the paths `rm`/`unlink` delete, and secret-looking names."""

from __future__ import annotations

import posixpath
import re
import shlex
from fnmatch import fnmatchcase

from kinko.scan.sources.dockerfile.words import expand

_SEPARATORS = frozenset(";&|()<>")
_WRAPPERS = frozenset({"sudo", "exec", "command", "nohup", "time", "env", "doas"})
_SCRIPT_SHELL = re.compile(r"^(?:<<|(?:\S*/)?(?:ba|da|a|z)?sh\b)")

#: Exact file names (lower-case) that hold credentials.
_SECRET_NAMES = frozenset(
    [
        ".env",
        ".npmrc",
        ".pypirc",
        ".netrc",
        "_netrc",
        ".git-credentials",
        ".gitcredentials",
        "kubeconfig",
        ".dockercfg",
        ".htpasswd",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
        "credentials",
        "credentials.json",
        ".boto",
        ".s3cfg",
        ".pgpass",
        ".my.cnf",
        "secrets.yaml",
        "secrets.yml",
        "secrets.json",
        "secret",
        ".vault-token",
        "vault-token",
        "service-account.json",
        "service_account.json",
        ".terraformrc",
        "terraform.rc",
        "credentials.tfrc.json",
    ]
)
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".keytab", ".ppk", ".ovpn", ".kubeconfig")
_SECRET_WORDS = ("secret", "password", "passwd", "token", "credential", "apikey", "api_key", "private_key")
_SECRET_DIRS = (".ssh/", ".aws/", ".gnupg/", ".kube/", ".docker/config.json", "/run/secrets/")


def looks_secret(path: str) -> bool:
    """Name heuristics for credential files (`/etc/passwd` and `*.pub` are not secrets)."""
    lowered = path.lower().rstrip("/")
    base = posixpath.basename(lowered)
    if not base or base.endswith(".pub") or base in ("passwd", "shadow-", "group"):
        return False
    if base in _SECRET_NAMES or base.startswith(".env.") or base.endswith(".env"):
        return True
    if base.endswith(_SECRET_SUFFIXES):
        return True
    if any(word in base for word in _SECRET_WORDS):
        return True
    return any(marker in lowered + "/" for marker in _SECRET_DIRS)


def script_text(rest: str, heredoc_bodies: list[str]) -> str:
    """The shell text a RUN executes: its command line, plus heredocs when they are the script itself."""
    if heredoc_bodies and _SCRIPT_SHELL.match(rest.strip()):
        return rest + "\n" + "\n".join(heredoc_bodies)
    return rest


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: fall back to a plain split, like a lenient shell reader
        return text.replace(";", " ; ").replace("&&", " && ").split()


def _segments(tokens: list[str]) -> list[list[str]]:
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token and all(ch in _SEPARATORS for ch in token):
            segments.append([])
        else:
            segments[-1].append(token)
    return [seg for seg in segments if seg]


def removed_paths(text: str, env: dict[str, str], workdir: str) -> list[str]:
    """Absolute paths (possibly globs) that `rm`, `unlink` or `shred -u` in this shell text delete."""
    out: list[str] = []
    # Newlines end commands too (shlex treats them as plain whitespace).
    for seg in _segments(_tokens(text.replace("\\\n", " ").replace("\n", " ; "))):
        words = _drop_prefix(seg)
        if not words:
            continue
        prog = posixpath.basename(words[0])
        args = words[1:]
        if prog == "shred" and not any(a in ("-u", "--remove") or (a[:1] == "-" and "u" in a) for a in args):
            continue
        if prog not in ("rm", "unlink", "shred"):
            continue
        out.extend(resolve(expand(a, env), workdir) for a in _operands(args))
    return out


def exec_removed_paths(args: list[str], env: dict[str, str], workdir: str) -> list[str]:
    """Exec-form RUN ["rm", "-f", "/x"]; a shell wrapper (["sh", "-c", "..."]) is parsed as shell text."""
    if len(args) >= 3 and posixpath.basename(args[0]).endswith("sh") and args[1] == "-c":
        return removed_paths(args[2], env, workdir)
    if args and posixpath.basename(args[0]) in ("rm", "unlink"):
        return [resolve(expand(a, env), workdir) for a in _operands(args[1:])]
    return []


def _drop_prefix(words: list[str]) -> list[str]:
    """Skip `VAR=x` assignments and wrappers such as sudo."""
    i = 0
    while i < len(words) and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i]) or words[i] in _WRAPPERS):
        i += 1
    return words[i:]


def _operands(args: list[str]) -> list[str]:
    out: list[str] = []
    options_done = False
    for arg in args:
        if not options_done and arg == "--":
            options_done = True
        elif options_done or not arg.startswith("-"):
            out.append(arg)
    return out


def resolve(path: str, workdir: str) -> str:
    """Absolute, normalised path; `~` is root's home (the build user unless USER changed it)."""
    if path == "~" or path.startswith("~/"):
        path = "/root" + path[1:]
    if not path.startswith("/"):
        path = posixpath.join(workdir or "/", path)
    # normpath keeps a leading "//" (POSIX leaves it implementation-defined); Linux reads it as "/"
    return "/" + posixpath.normpath(path).lstrip("/")


def removes(target: str, copied: str, copied_may_be_dir: bool) -> bool:
    """Whether deleting `target` (maybe a glob) deletes `copied` or part of it."""
    if target == copied or fnmatchcase(copied, target):
        return True
    root = target.rstrip("/")
    if copied.startswith(root + "/"):
        return True
    return copied_may_be_dir and (target.startswith(copied.rstrip("/") + "/") or fnmatchcase(copied, root))
