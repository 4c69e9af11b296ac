"""Connection-string parsing for the `connection-string` kind: URL, JDBC and `Key=Value;` (ADO.NET) forms.

Returns only non-sensitive parts (scheme, host, port, user, database) and whether a password is present;
the password itself is never returned and no error message quotes any part of the string.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from kinko.errors import InvalidSecretType

_KIND = "connection-string"
# ':' is allowed for JDBC sub-protocols such as jdbc:mysql:loadbalance://
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.:\-]*)://")
_DEFAULT_PORTS = {
    "postgres": "5432", "postgresql": "5432", "mysql": "3306", "mariadb": "3306", "mongodb": "27017",
    "redis": "6379", "rediss": "6379", "amqp": "5672", "amqps": "5671", "sqlserver": "1433", "mssql": "1433",
}  # fmt: skip
# Schemes whose connection strings legitimately name no network host (a file or a socket path).
_HOSTLESS = {"sqlite", "sqlite3", "file"}
_PASSWORD_PARAMS = ("password", "pwd", "passwd", "pass")
_USER_PARAMS = ("user", "username", "uid", "user id")
_DATABASE_PARAMS = ("database", "dbname", "databasename", "db")

# Key=Value forms: keys are case-insensitive and compared with single spaces.
_KV_HOST = {"server", "data source", "host", "hostname", "address", "addr", "network address", "endpoint"}
_KV_PORT = ("port",)
_KV_DATABASE = ("database", "initial catalog", "dbname", "db", "databasename")
_KV_USER = ("user id", "uid", "user", "username", "user name", "sharedaccesskeyname", "accountname")
_KV_PASSWORD = ("password", "pwd", "passwd", "accountkey", "sharedaccesskey", "sharedaccesssignature")
_KV_ANY_KNOWN = {*_KV_HOST, *_KV_DATABASE, *_KV_USER, *_KV_PASSWORD, "driver", "dsn"}


def _fail(rule: str) -> InvalidSecretType:
    return InvalidSecretType(f"{_KIND}: {rule}")


def parse_connection_string(text: str) -> dict[str, str]:
    """Metadata for a connection string, or InvalidSecretType naming the broken rule."""
    if not text.strip():
        raise _fail("value must not be empty")
    if "\n" in text or "\r" in text or "\x00" in text:
        raise _fail("value must be a single line (no newline or NUL characters)")
    text = text.strip()
    if text.lower().startswith("jdbc:oracle:"):
        return _oracle_jdbc(text)
    scheme_match = _URL_SCHEME.match(text.removeprefix("jdbc:") if text.lower().startswith("jdbc:") else text)
    if scheme_match:
        return _url_form(text)
    if "=" in text:
        return _key_value_form(text)
    raise _fail("not a URL (scheme://host/...), a JDBC URL or a Key=Value; string")


# ---------------------------------------------------------------------------------------------------------
# URL forms: postgres[ql]://, mysql://, mongodb[+srv]://, redis[s]://, amqp[s]://, jdbc:<sub>://, ...


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """Split `user:pass@hosts...` at the LAST '@' before the query, so an unescaped '@', '/' or '#' in a
    password stays in the user-info (which is never reported) instead of leaking into host or database."""
    before_query = rest.split("?", 1)[0]
    at = before_query.rfind("@")
    if at < 0:
        return None, rest
    return rest[:at], rest[at + 1 :]


def _split_host_port(item: str) -> tuple[str, str]:
    if item.startswith("["):  # [IPv6]:port
        host, _, tail = item[1:].partition("]")
        return host, tail.removeprefix(":")
    host, _, port = item.partition(":")
    return host, port


def _check_port(port: str) -> str:
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise _fail("port must be a number from 1 to 65535")
    return port


def _url_form(text: str) -> dict[str, str]:
    jdbc = text.lower().startswith("jdbc:")
    body = text[5:] if jdbc else text
    if any(ch.isspace() for ch in body):
        raise _fail("a URL must not contain whitespace")
    scheme, _, rest = body.partition("://")
    scheme = scheme.lower()
    userinfo, remainder = _split_userinfo(rest)
    cut = min((i for i in (remainder.find(c) for c in "/?#;") if i >= 0), default=len(remainder))
    authority, tail = remainder[:cut], remainder[cut:]
    hosts, ports = [], []
    for item in authority.split(",") if authority else []:
        host, port = _split_host_port(item)
        if not host:
            raise _fail("a host in the host list is empty")
        hosts.append(unquote(host))
        ports.append(_check_port(port))
    params = _url_params(tail)
    user, has_password = _userinfo_parts(userinfo)
    user = user or next((params[p] for p in _USER_PARAMS if params.get(p)), "")
    has_password = has_password or any(params.get(p) for p in _PASSWORD_PARAMS)
    if not hosts and params.get("host"):
        hosts = [params["host"]]
    if not hosts and scheme not in _HOSTLESS:
        raise _fail("the URL names no host")
    meta = {
        "scheme": f"jdbc:{scheme}" if jdbc else scheme,
        "host": ",".join(hosts),
        "port": ",".join(p for p in ports if p) or params.get("port", "") or _DEFAULT_PORTS.get(scheme, ""),
        "user": user,
        "database": _url_database(tail, params, whole_path=scheme in _HOSTLESS),
        "has_password": "true" if has_password else "false",
    }
    _check_port(meta["port"] if "," not in meta["port"] else "")
    return meta


def _userinfo_parts(userinfo: str | None) -> tuple[str, bool]:
    if userinfo is None:
        return "", False
    user, colon, password = userinfo.partition(":")
    return unquote(user), bool(colon and password)


def _url_params(tail: str) -> dict[str, str]:
    """Query parameters (`?a=b&c=d`) and JDBC SQL Server properties (`;a=b;c=d`), keys lower-cased."""
    params: dict[str, str] = {}
    query = tail.split("?", 1)[1].split("#", 1)[0] if "?" in tail else ""
    for key, item in parse_qsl(query, keep_blank_values=True):
        params[key.strip().lower()] = item
    if tail.startswith(";"):
        for part in tail[1:].split(";"):
            key, eq, item = part.partition("=")
            if eq:
                params[key.strip().lower()] = item.strip()
    return params


def _url_database(tail: str, params: dict[str, str], *, whole_path: bool) -> str:
    """First path segment (or the whole path for file databases), else a database query parameter."""
    path = re.split(r"[?#;]", tail, maxsplit=1)[0]
    if whole_path:
        return unquote(path)
    database = unquote(path.lstrip("/").split("/", 1)[0]) if path.startswith("/") else ""
    return database or next((params[p] for p in _DATABASE_PARAMS if params.get(p)), "")


def _split_first(text: str, separators: str) -> tuple[str, str, str]:
    """Partition `text` at the first of several separator characters."""
    cut = min((i for i in (text.find(c) for c in separators) if i >= 0), default=-1)
    return (text, "", "") if cut < 0 else (text[:cut], text[cut], text[cut + 1 :])


def _oracle_jdbc(text: str) -> dict[str, str]:
    """jdbc:oracle:thin:[user/pass]@[//]host[:port][/service|:SID]; user/pass is never reported."""
    if any(ch.isspace() for ch in text):
        raise _fail("a JDBC URL must not contain whitespace")
    _, _, rest = text.partition(":oracle:")
    driver, _, rest = rest.partition(":")
    credentials, at, target = rest.rpartition("@")
    if not at or not target:
        raise _fail("an Oracle JDBC URL needs '@host' (jdbc:oracle:thin:@//host:port/service)")
    user, slash, password = credentials.partition("/")
    host, sep, after = _split_first(target.removeprefix("//"), ":/")
    port, database = "", after
    if sep == ":":
        port, _, database = _split_first(after, ":/")
    if not host:
        raise _fail("an Oracle JDBC URL needs a host")
    return {
        "scheme": f"jdbc:oracle:{driver.lower()}",
        "host": host,
        "port": _check_port(port) or "1521",
        "user": user,
        "database": database,
        "has_password": "true" if slash and password else "false",
    }


# ---------------------------------------------------------------------------------------------------------
# Key=Value forms: ADO.NET / ODBC (`Server=tcp:db,1433;Database=x;User ID=u;Password=p`), Azure-style


def _kv_pairs(text: str) -> list[tuple[str, str]]:
    """Split `k=v;k=v` honouring ODBC braces (`{a;b}`, `}}` escapes) and ADO.NET quotes around values."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        eq = text.find("=", i)
        semi = text.find(";", i)
        if semi >= 0 and (eq < 0 or semi < eq):
            if text[i:semi].strip():
                raise _fail(f"segment {len(pairs) + 1} of the Key=Value; string has no '='")
            i = semi + 1
            continue
        if eq < 0:
            if text[i:].strip():
                raise _fail(f"segment {len(pairs) + 1} of the Key=Value; string has no '='")
            break
        key = " ".join(text[i:eq].split()).lower()
        value, i = _kv_value(text, eq + 1, len(pairs) + 1)
        if not key:
            raise _fail(f"segment {len(pairs) + 1} of the Key=Value; string has an empty key")
        pairs.append((key, value))
    return pairs


def _kv_value(text: str, start: int, segment: int) -> tuple[str, int]:
    """The value starting at `start` and the index just past its terminating ';'."""
    j = start
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] in "{\"'":
        close = "}" if text[j] == "{" else text[j]
        k, out = j + 1, []
        while k < len(text):
            if text[k] == close and text[k + 1 : k + 2] == close:  # doubled = escaped
                out.append(close)
                k += 2
            elif text[k] == close:
                break
            else:
                out.append(text[k])
                k += 1
        else:
            raise _fail(f"segment {segment} of the Key=Value; string has an unterminated quote or brace")
        value = "".join(out)
        if text[j] == "{":
            value = "{" + value + "}"  # ODBC keeps braces as part of the value (e.g. Driver={...})
        end = text.find(";", k + 1)
        if text[k + 1 : end if end >= 0 else len(text)].strip():
            raise _fail(f"segment {segment} of the Key=Value; string has text after a closing quote")
    else:
        end = text.find(";", j)
        value = text[j : end if end >= 0 else len(text)].strip()
    return value, (end + 1 if end >= 0 else len(text))


def _kv_host(server: str) -> tuple[str, str]:
    """`tcp:host,1433` / `host:5432` / `sb://ns.servicebus.windows.net/` -> (host, port)."""
    if "://" in server:
        server = server.split("://", 1)[1].split("/", 1)[0]
    for prefix in ("tcp:", "np:", "lpc:", "admin:"):
        if server.lower().startswith(prefix):
            server = server[len(prefix) :]
    host, comma, port = server.partition(",")
    if not comma and server.count(":") == 1:
        host, _, port = server.partition(":")
    return host.strip(), port.strip()


def _key_value_form(text: str) -> dict[str, str]:
    pairs = _kv_pairs(text)
    values = {key: value for key, value in pairs}
    if not any(key in _KV_ANY_KNOWN for key in values):
        raise _fail("a Key=Value; string must name a server, database, user, password, driver or DSN")
    host, port = "", ""
    for key in values:
        if key in _KV_HOST and values[key]:
            host, port = _kv_host(values[key])
            break
    port = port or next((values[k] for k in _KV_PORT if values.get(k)), "")
    first = {group: next((values[k] for k in keys if values.get(k)), "")
             for group, keys in (("database", _KV_DATABASE), ("user", _KV_USER))}  # fmt: skip
    meta = {
        "scheme": "odbc" if "driver" in values or "dsn" in values else "adonet",
        "host": host,
        "port": _check_port(port),
        "user": first["user"],
        "database": first["database"],
        "has_password": "true" if any(values.get(k) for k in _KV_PASSWORD) else "false",
    }
    if values.get("driver"):
        meta["driver"] = values["driver"].strip("{}")
    return meta
