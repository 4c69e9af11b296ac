"""Tests for the connection-string kind: URL, JDBC and Key=Value forms, and that passwords never leak."""

from __future__ import annotations

import pytest

from kinko.core.types import validate_secret
from kinko.errors import InvalidSecretType

PASSWORD = "Pw0rdCANARY"


def _meta(text: str) -> dict[str, str]:
    meta = validate_secret("connection-string", text.encode())
    assert meta.pop("content_type") == "connection-string"
    for value in meta.values():
        assert PASSWORD not in value and "Pw0rd" not in value
    return meta


def _fields(meta: dict[str, str]) -> tuple[str, ...]:
    return tuple(meta[k] for k in ("scheme", "host", "port", "user", "database", "has_password"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"postgresql://app:{PASSWORD}@db:5432/x", ("postgresql", "db", "5432", "app", "x", "true")),
        (f"postgres://app:{PASSWORD}@db/x?sslmode=require", ("postgres", "db", "5432", "app", "x", "true")),
        ("mysql://root@mysql.internal:3307/shop", ("mysql", "mysql.internal", "3307", "root", "shop", "false")),
        (
            f"mongodb://u:{PASSWORD}@a:27018,b:27019/app?authSource=admin",
            ("mongodb", "a,b", "27018,27019", "u", "app", "true"),
        ),
        (
            f"mongodb+srv://u:{PASSWORD}@cluster0.abc.mongodb.net/app?retryWrites=true",
            ("mongodb+srv", "cluster0.abc.mongodb.net", "", "u", "app", "true"),
        ),
        (f"redis://:{PASSWORD}@cache:6380/2", ("redis", "cache", "6380", "", "2", "true")),
        ("rediss://cache", ("rediss", "cache", "6379", "", "", "false")),
        (f"amqps://guest:{PASSWORD}@mq/vhost", ("amqps", "mq", "5671", "guest", "vhost", "true")),
        ("amqp://mq", ("amqp", "mq", "5672", "", "", "false")),
        ("postgres://[::1]:5433/db", ("postgres", "::1", "5433", "", "db", "false")),
        (f"postgres://u%40corp:{PASSWORD}@db/my%20db", ("postgres", "db", "5432", "u@corp", "my db", "true")),
        (
            "postgresql:///app?host=/var/run/postgresql",
            ("postgresql", "/var/run/postgresql", "5432", "", "app", "false"),
        ),
        ("sqlite:///var/lib/app.db", ("sqlite", "", "", "", "/var/lib/app.db", "false")),
        (
            f"jdbc:postgresql://db:5432/x?user=app&password={PASSWORD}",
            ("jdbc:postgresql", "db", "5432", "app", "x", "true"),
        ),
        (
            f"jdbc:sqlserver://sql:1433;databaseName=x;user=sa;password={PASSWORD}",
            ("jdbc:sqlserver", "sql", "1433", "sa", "x", "true"),
        ),
        (
            f"jdbc:oracle:thin:scott/{PASSWORD}@//ora:1522/ORCL",
            ("jdbc:oracle:thin", "ora", "1522", "scott", "ORCL", "true"),
        ),
        ("jdbc:mysql:loadbalance://h1:3306,h2/shop", ("jdbc:mysql:loadbalance", "h1,h2", "3306", "", "shop", "false")),
        ("jdbc:oracle:thin:@ora:1521:SID", ("jdbc:oracle:thin", "ora", "1521", "", "SID", "false")),
    ],
)
def test_url_forms(text: str, expected: tuple[str, ...]) -> None:
    assert _fields(_meta(text)) == expected


@pytest.mark.parametrize("password", ["p@ss#w/rd", "a#b@c", "x/y@z"])
def test_unescaped_specials_in_password_do_not_leak(password: str) -> None:
    meta = validate_secret("connection-string", f"postgres://app:{password}@db:5432/x".encode())
    assert (meta["host"], meta["port"], meta["user"], meta["database"]) == ("db", "5432", "app", "x")
    assert all(password not in v and password[:3] not in v for v in meta.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"Server=tcp:x.database.windows.net,1433;Initial Catalog=db;User ID=app;Password={PASSWORD};",
            ("adonet", "x.database.windows.net", "1433", "app", "db", "true"),
        ),
        (
            f"Driver={{ODBC Driver 18 for SQL Server}};Server=sql;Database=x;Uid=u;Pwd={{{PASSWORD};}}}}x}};",
            ("odbc", "sql", "", "u", "x", "true"),
        ),
        (
            f'Host=pg;Port=5432;Database=app;Username=u;Password="{PASSWORD};x"',
            ("adonet", "pg", "5432", "u", "app", "true"),
        ),
        (
            "Data Source=localhost\\SQLEXPRESS;Integrated Security=SSPI",
            ("adonet", "localhost\\SQLEXPRESS", "", "", "", "false"),
        ),
        (
            f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={PASSWORD}=",
            ("adonet", "ns.servicebus.windows.net", "", "Root", "", "true"),
        ),
    ],
)
def test_key_value_forms(text: str, expected: tuple[str, ...]) -> None:
    assert _fields(_meta(text)) == expected


def test_odbc_driver_is_reported() -> None:
    assert _meta("Driver={PostgreSQL Unicode};Server=pg")["driver"] == "PostgreSQL Unicode"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (b"", "must not be empty"),
        (b"just some text", "not a URL (scheme://host/...), a JDBC URL or a Key=Value; string"),
        (b"postgres://u:p@db/x\npostgres://again", "single line"),
        (b"postgres://u:p@db:99999/x", "port must be a number from 1 to 65535"),
        (b"postgres://u:p@db:abc/x", "port must be a number"),
        (b"postgres:///x", "the URL names no host"),
        (b"postgres://a,,b/x", "a host in the host list is empty"),
        (b"postgres://db/my db", "must not contain whitespace"),
        (b"jdbc:oracle:thin:scott/tiger", "needs '@host'"),
        (b"Server=db;Password", "segment 2 of the Key=Value; string has no '='"),
        (b"Server=db;Password={abc", "unterminated quote or brace"),
        (b'Password="abc"def;Server=x', "text after a closing quote"),
        (b"Foo=bar;Baz=qux", "must name a server, database, user, password, driver or DSN"),
        (b"Server=db;Port=0", "port must be a number"),
        (b"\xff\xfe", "must be UTF-8 text"),
    ],
)
def test_rejects(text: bytes, rule: str) -> None:
    with pytest.raises(InvalidSecretType) as err:
        validate_secret("connection-string", text)
    assert err.value.message.startswith("connection-string: ")
    assert rule in err.value.message


@pytest.mark.parametrize(
    "text",
    [
        f"postgres://u:{PASSWORD}@db:0/x",
        f"postgres://u:{PASSWORD}@db/x y",
        f"Server=db;Password={{{PASSWORD}",
        f'Server=db;Password="{PASSWORD}"junk',
        f"Server=db;{PASSWORD}",
        f"jdbc:oracle:thin:scott/{PASSWORD}",
        f"{PASSWORD}",
    ],
)
def test_errors_never_contain_the_password(text: str) -> None:
    with pytest.raises(InvalidSecretType) as err:
        validate_secret("connection-string", text.encode())
    assert PASSWORD not in str(err.value) and PASSWORD not in repr(err.value)
