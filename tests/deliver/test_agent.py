"""kinko agent: templates and config, then the real `kinko agent` process against a real `kinko server`."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kinko.client import RemoteVault
from kinko.deliver.agent import DEFAULT_JWT_FILE, backoff, load_config, render_file, render_template
from kinko.deliver.modes import parse_mode
from kinko.errors import InvalidInput, UsageError
from tests.access.test_identity import AUDIENCE, ISSUER, Issuer
from tests.api.conftest import KINKO, Server, start_server, stop_server
from tests.pg import free_port

CANARY = "kinko-canary-agent-5d1e"


# -- pure parts -----------------------------------------------------------------------------------------------
def test_template_substitutes_keys_only() -> None:
    values = {"user": b"app", "password": CANARY.encode()}
    assert render_template("postgres://{{ .user }}:{{password}}@db/app", values, "t") == \
        f"postgres://app:{CANARY}@db/app".encode()
    for bad in ("{{ .missing }}", "{{ .user | upper }}", "{{ __import__('os') }}", "x {{ user"):
        with pytest.raises(InvalidInput) as caught:
            render_template(bad, values, "t")
        assert CANARY not in caught.value.message


def test_render_file_whole_key_or_template(tmp_path: Path) -> None:
    spec = load_spec({"path": "a/b", "destination": "d"}, tmp_path)
    assert render_file(spec, b"whole") == b"whole"
    with pytest.raises(InvalidInput, match="has keys"):
        render_file(spec, {"k": b"v"})
    assert render_file(load_spec({"path": "a/b", "destination": "d", "key": "k"}, tmp_path), {"k": b"v"}) == b"v"
    with pytest.raises(InvalidInput, match="no key 'x'"):
        render_file(load_spec({"path": "a/b", "destination": "d", "key": "x"}, tmp_path), {"k": b"v"})


def load_spec(entry: dict[str, Any], tmp: Path) -> Any:
    return load_config(_write_config(tmp / "spec-agent.yaml", {"address": "http://x", "token_file": "t",
                                                              "files": [entry]}), env={}).files[0]


def _write_config(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def test_modes_and_config_errors(tmp_path: Path) -> None:
    assert parse_mode("0400", "m") == parse_mode("0o400", "m") == parse_mode(0o400, "m") == 0o400
    for bad in ("0800", "rw", 0o1777, True):
        with pytest.raises(InvalidInput):
            parse_mode(bad, "m")
    base = {"address": "http://x", "token_file": "t", "files": [{"path": "a", "destination": "d"}]}
    for change in ({"bogus": 1}, {"kubernetes": {"role": "r"}}, {"token_file": None}, {"files": []},
                   {"interval": 0}, {"files": [{"path": "a"}]}, {"exec": {"command": "sh -c x"}},
                   {"signal": {"pid_file": "p", "signal": "NOPE"}}):
        with pytest.raises(UsageError):
            load_config(_write_config(tmp_path / "a.yaml", {**base, **change}), env={})
    config = load_config(_write_config(tmp_path / "b.yaml", {**{k: v for k, v in base.items() if k != "address"},
                                                             "kubernetes": {"role": "r"}, "token_file": None}),
                         env={"KINKO_ADDR": "http://y"})
    assert config.address == "http://y" and config.k8s_role == "r"
    assert str(config.jwt_file) == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_interval_and_backoff_take_seconds_or_vault_durations(tmp_path: Path) -> None:
    base = {"address": "http://x", "token_file": "t", "files": [{"path": "a", "destination": "d"}]}
    config = load_config(_write_config(tmp_path / "a.yaml", {**base, "interval": "1m30s", "max_backoff": 600}),
                         env={})
    assert (config.interval, config.max_backoff) == (90.0, 600.0)
    for bad, words in (("90x", "agent config: interval: '90x' is not a duration"), ("2d", "maximum, 1d"),
                       ([1], "must be a duration")):
        with pytest.raises(UsageError, match=words):
            load_config(_write_config(tmp_path / "b.yaml", {**base, "interval": bad}), env={})


def test_backoff_grows_is_capped_and_jittered() -> None:
    assert 0.5 <= backoff(1, 300) <= 1.0 and 4.0 <= backoff(4, 300) <= 8.0
    samples = {backoff(40, 300) for _ in range(20)}
    assert all(150 <= s <= 300 for s in samples) and len(samples) > 1


# -- against a real server --------------------------------------------------------------------------------------
def wait_for(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    work = tmp_path / "srv"
    work.mkdir()
    srv = start_server(["--dev"], work, env={"KINKO_AUTH_FAIL_LIMIT": "100000"})
    yield srv
    stop_server(srv.proc)


def admin(server: Server) -> RemoteVault:
    return RemoteVault.connect(server.addr, server.token)


def _put(server: Server, path: str, body: dict[str, Any]) -> None:
    session = admin(server)
    try:
        session.client.request("PUT", f"secrets/{path}", json=body)
    finally:
        session.close()


def app_token(server: Server) -> str:
    session = admin(server)
    try:
        session.write_policy({"name": "app", "rules": [{"path": "app/*", "capabilities": ["read"]}]})
        return session.create_token(policies=["app"])[0]
    finally:
        session.close()


def agent_config(tmp: Path, server: Server, auth: dict[str, Any], **extra: Any) -> Path:
    doc = {"address": server.addr, **auth, "interval": 0.3, "max_backoff": 0.5, "files": [
        {"path": "app/db", "key": "password", "destination": "out", "name": "password"},
        {"path": "app/db", "template": "postgres://{{ .user }}:{{ .password }}@db/app", "destination": "out",
         "name": "url", "mode": "0440"},
        {"path": "app/tls", "destination": "certs", "name": "tls.key"},
    ], **extra}
    return _write_config(tmp / "agent.yaml", doc)


def run_agent(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    err = (config.parent / "agent.err").open("wb")
    return subprocess.Popen([*KINKO, "agent", "--config", str(config), *extra], stdout=subprocess.DEVNULL,
                            stderr=err, cwd=config.parent)


def seed(server: Server, password: str = CANARY) -> None:
    _put(server, "app/db", {"data": {"user": "app", "password": password}})
    _put(server, "app/tls", {"value": "KEY-" + password})


def test_address_may_list_several_servers_and_the_agent_moves_past_a_dead_one(server: Server,
                                                                               tmp_path: Path) -> None:
    seed(server)
    (tmp_path / "token").write_text(app_token(server) + "\n")
    dead = f"http://127.0.0.1:{free_port()}"
    config = agent_config(tmp_path, server, {"token_file": "token"}, address=[dead, server.addr])
    assert load_config(config, env={}).address == f"{dead},{server.addr}"
    done = subprocess.run([*KINKO, "agent", "--config", str(config), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "password").read_text() == CANARY
    with pytest.raises(UsageError, match="address"):
        load_config(_write_config(tmp_path / "bad.yaml", {"address": [], "token_file": "t", "files": [
            {"path": "a", "destination": "d"}]}), env={})


def test_once_renders_0400_files_and_fails_cleanly(server: Server, tmp_path: Path) -> None:
    seed(server)
    (tmp_path / "token").write_text(app_token(server) + "\n")
    config = agent_config(tmp_path, server, {"token_file": "token"})
    done = subprocess.run([*KINKO, "agent", "--config", str(config), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert (out / "password").read_text() == CANARY
    assert (out / "url").read_text() == f"postgres://app:{CANARY}@db/app"
    assert stat.S_IMODE(os.stat(out / "password").st_mode) == 0o400
    assert stat.S_IMODE(os.stat(out / "url").st_mode) == 0o440
    assert (tmp_path / "certs" / "tls.key").read_text() == "KEY-" + CANARY
    assert os.path.islink(out / "..data")
    # A key that is missing: exit 1, the message names the key, the previous files are untouched.
    bad = agent_config(tmp_path, server, {"token_file": "token"}, files=[
        {"path": "app/db", "key": "password", "destination": "out", "name": "password"},
        {"path": "app/db", "key": "nope", "destination": "out", "name": "other"}])
    done = subprocess.run([*KINKO, "agent", "--config", str(bad), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 1 and b"'nope'" in done.stderr and CANARY.encode() not in done.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("..")) == ["password", "url"]
    # A denied path: exit 1, nothing written.
    denied = agent_config(tmp_path, server, {"token_file": "token"}, files=[
        {"path": "other/x", "destination": "denied"}])
    done = subprocess.run([*KINKO, "agent", "--config", str(denied), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 1 and b"permission_denied" in done.stderr and not (tmp_path / "denied").exists()
    # An unknown path, then a sealed server: exit 1 with the reason, the rendered files untouched.
    missing = agent_config(tmp_path, server, {"token_file": "token"}, files=[
        {"path": "app/db", "key": "password", "destination": "out", "name": "password"},
        {"path": "app/gone", "destination": "out", "name": "gone"}])
    done = subprocess.run([*KINKO, "agent", "--config", str(missing), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 1 and b"not_found" in done.stderr and not (out / "gone").exists()
    session = admin(server)
    try:
        session.seal()
    finally:
        session.close()
    done = subprocess.run([*KINKO, "agent", "--config", str(config), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 1 and b"sealed" in done.stderr
    assert (out / "password").read_text() == CANARY and (out / "url").read_text().endswith(f"{CANARY}@db/app")


def _k8s_setup(server: Server, tmp: Path) -> Issuer:
    issuer = Issuer()
    session = admin(server)
    try:
        session.write_policy({"name": "app", "rules": [{"path": "app/*", "capabilities": ["read"]}]})
        session.configure_kubernetes_auth(issuer=ISSUER, jwks=issuer.jwks())
        session.write_kubernetes_role("app", service_account_names=["app"], namespaces=["shop"], audience=AUDIENCE,
                                      policies=["app"], ttl=600)
    finally:
        session.close()
    (tmp / "sa-token").write_text(issuer.mint(issuer.claims("shop", "app", now=time.time())))
    return issuer


def test_agent_rerenders_on_change_hook_only_on_change_relogs_and_stops(server: Server, tmp_path: Path) -> None:
    seed(server)
    _k8s_setup(server, tmp_path)
    hook_log = tmp_path / "hook.log"
    hook = [sys.executable, "-c", f"open({str(hook_log)!r}, 'a').write('x\\n')"]
    config = agent_config(tmp_path, server, {"kubernetes": {"role": "app", "jwt_file": "sa-token"}},
                          exec={"command": hook})
    proc = run_agent(config)
    try:
        password = tmp_path / "out" / "password"
        wait_for(lambda: password.exists() and hook_log.exists(), what="first render")
        time.sleep(1.2)  # several intervals with nothing new
        assert hook_log.read_text() == "x\n"
        seed(server, "rotated-1")
        wait_for(lambda: password.read_text() == "rotated-1", what="re-render after a new version")
        wait_for(lambda: hook_log.read_text() == "x\nx\n", what="hook after the change")
        assert (tmp_path / "out" / "url").read_text() == "postgres://app:rotated-1@db/app"
        # Revoke every token the agent holds: it logs in again on the 403 and keeps rendering.
        session = admin(server)
        try:
            for info in session.list_tokens():
                if info.metadata.get("role") == "app":
                    session.revoke_accessor(info.accessor)
        finally:
            session.close()
        seed(server, "rotated-2")
        wait_for(lambda: password.read_text() == "rotated-2", what="render after re-login")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = (tmp_path / "agent.err").read_text()
    assert err.count("logged in with Kubernetes role app") == 2  # once at start, once after the revocation
    for value in (CANARY, "rotated-1", "rotated-2", "kinko_s_"):
        assert value not in err


def test_server_gone_mid_run_keeps_files_and_sigterm_exits_0(server: Server, tmp_path: Path) -> None:
    seed(server)
    (tmp_path / "token").write_text(app_token(server))
    marker = tmp_path / "hup.log"
    sleeper = subprocess.Popen([sys.executable, "-c", (
        "import signal, time\n"
        f"signal.signal(signal.SIGHUP, lambda *a: open({str(marker)!r}, 'a').write('hup\\n'))\n"
        "while True: time.sleep(0.05)\n")])
    (tmp_path / "app.pid").write_text(str(sleeper.pid))
    config = agent_config(tmp_path, server, {"token_file": "token"},
                          signal={"pid_file": "app.pid", "signal": "HUP"})
    proc = run_agent(config)
    try:
        password = tmp_path / "out" / "password"
        wait_for(lambda: password.exists() and marker.exists(), what="first render and SIGHUP")
        before = os.readlink(tmp_path / "out" / "..data")
        stop_server(server.proc)
        err = tmp_path / "agent.err"
        wait_for(lambda: err.read_text().count("render failed") >= 3, what="failed retries")
        assert password.read_text() == CANARY and os.readlink(tmp_path / "out" / "..data") == before
        assert marker.read_text() == "hup\n"  # no change, no signal
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        for child in (proc, sleeper):
            if child.poll() is None:
                child.kill()
            child.wait()
    assert "keeping the previous files" in (tmp_path / "agent.err").read_text()


# -- review fixes: modes, YAML locations, failed Kubernetes logins ----------------------------------------------
def test_unsafe_modes_refused_readable_modes_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for bad in ("0777", "0755", "0500", "0660", "0602", "0410"):
        with pytest.raises(UsageError, match=r"files\[0\].*mode") as caught:
            load_spec({"path": "a/b", "destination": "d", "mode": bad}, tmp_path)
        assert "execute" in caught.value.message or "write" in caught.value.message
    with caplog.at_level("WARNING", logger="kinko.agent"):
        for ok in ("0400", "0600", "0440", "0444", "0640", "0644"):
            assert load_spec({"path": "a/b", "destination": "d", "mode": ok}, tmp_path).mode == int(ok, 8)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 4 and all("files[0]" in w and "readable" in w for w in warned)


def test_bad_yaml_names_line_and_column_not_content(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"address: http://x\ntoken_file: t\nfiles: [{{path: {CANARY}, destination: [d}}\n")
    with pytest.raises(UsageError) as caught:
        load_config(config, env={})
    assert "line 3" in caught.value.message and "column" in caught.value.message
    assert CANARY not in caught.value.message


def test_once_with_rejected_jwt_says_why(server: Server, tmp_path: Path) -> None:
    issuer = _k8s_setup(server, tmp_path)
    (tmp_path / "sa-token").write_text(issuer.mint(issuer.claims("other-ns", "app", now=time.time())))
    config = agent_config(tmp_path, server, {"kubernetes": {"role": "app", "jwt_file": "sa-token"}})
    done = subprocess.run([*KINKO, "agent", "--config", str(config), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 1
    assert b"kubernetes login failed for role app: permission denied" in done.stderr
    assert b"audience, namespace and service account" in done.stderr


def test_readme_agent_example_loads_and_shows_the_kinko_audience(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("An `agent.yaml`:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    config = load_config(_write_config(tmp_path / "agent.yaml", yaml.safe_load(example)), env={})
    assert config.k8s_role == "web" and config.jwt_file != Path(DEFAULT_JWT_FILE)
    after = readme.split("An `agent.yaml`:", 1)[1]
    assert "resolved\nagainst the config file's directory" in after
    (snippet,) = yaml.safe_load(after.split("```yaml\n")[2].split("```", 1)[0])
    token = snippet["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "kinko" and config.jwt_file.name == token["path"]


# -- hardening: file names, duplicates, destinations ---------------------------------------------------------------
@pytest.mark.parametrize(("name", "needle"), [
    ("sub/db", "must not contain '/'"), ("a\nb", "control or invisible character (U+000A)"),
    ("..", "'..'"), ("..data", "must not start with '..'"), ("x" * 256, "longer than 255"),
    ("\u202ecod.exe", "control or invisible"), (".", "names no file"),
])
def test_file_names_follow_the_name_rules(tmp_path: Path, name: str, needle: str) -> None:
    with pytest.raises(UsageError, match=r"files\[0\]: ") as caught:
        load_spec({"path": "a/b", "destination": "d", "name": name}, tmp_path)
    assert needle in caught.value.message


def test_a_default_name_from_the_path_follows_them_too(tmp_path: Path) -> None:
    assert load_spec({"path": "team/app/db-url", "destination": "d"}, tmp_path).name == "db-url"
    with pytest.raises(UsageError, match=r"'\.\.'"):
        load_spec({"path": "team/..", "destination": "d"}, tmp_path)


def test_two_entries_writing_one_file_are_refused(tmp_path: Path) -> None:
    base = {"address": "http://x", "token_file": "t"}
    same = [{"path": "a/x", "destination": "out", "name": "f"}, {"path": "a/y", "destination": "out/../out/.",
                                                                 "name": "f"}]
    with pytest.raises(UsageError, match=r"files\[1\] writes .*out/f', like files\[0\]"):
        load_config(_write_config(tmp_path / "a.yaml", {**base, "files": same}), env={})
    config = load_config(_write_config(tmp_path / "b.yaml", {**base, "files": [
        {"path": "a/x", "destination": "out", "name": "f"}, {"path": "a/y", "destination": "out/./", "name": "g"}]}),
        env={})
    assert config.files[0].destination == config.files[1].destination == tmp_path / "out"


@pytest.mark.parametrize("change", [{"token_file": "t\0x"}, {"address": "http://x\0"},
                                    {"exec": {"command": ["/bin/true", "a\0b"]}},
                                    {"files": [{"path": "a", "destination": "d\0"}]}, {"interval": ".nan"},
                                    {"interval": float("nan")}])
def test_values_the_os_would_choke_on_later_are_refused_now(tmp_path: Path, change: dict[str, Any]) -> None:
    base = {"address": "http://x", "token_file": "t", "files": [{"path": "a", "destination": "d"}]}
    text = yaml.safe_dump({**base, **change}).replace("'.nan'", ".nan")
    (tmp_path / "agent.yaml").write_text(text)
    with pytest.raises(UsageError):
        load_config(tmp_path / "agent.yaml", env={})


def test_oversized_config_says_so(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text("# " + "x" * (1024 * 1024))
    with pytest.raises(UsageError, match="larger than 1024 KiB"):
        load_config(tmp_path / "agent.yaml", env={})


def test_once_refuses_a_symlink_planted_in_the_destination(server: Server, tmp_path: Path) -> None:
    seed(server)
    (tmp_path / "token").write_text(app_token(server))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "ww").mkdir()
    os.symlink(elsewhere, tmp_path / "ww" / "sub")
    config = agent_config(tmp_path, server, {"token_file": "token"}, files=[
        {"path": "app/db", "key": "password", "destination": "ww/sub/out", "name": "password"}])
    done = subprocess.run([*KINKO, "agent", "--config", str(config), "--once"], capture_output=True, timeout=30)
    assert done.returncode == 1 and b"ww/sub is a symlink" in done.stderr, done.stderr
    assert list(elsewhere.iterdir()) == [] and CANARY.encode() not in done.stderr


# Found by tests/fuzz/test_agent_config.py: each raised something other than a UsageError, or a two-line message.
@pytest.mark.parametrize(("text", "needle"), [
    ("address: !!timestamp x\n", "cannot build (AttributeError)"),
    ("interval: !!float ''\n", "cannot build (IndexError)"),
    ("files: !!int ''\n", "cannot build (IndexError)"),
    ("files:\n- path: !!bool x\n", "cannot build (KeyError)"),
    ("files: " + "[" * 5000 + "\n", "nests deeper"),
    ("address: http://x\ntoken_file: t\nfiles: [{path: a, destination: d}]\nexec: {\"\\n\": 1}\n",
     "exec: unknown setting(s) '\\n'"),
    ("interval: .nan\ntoken_file: t\nfiles: [{path: a, destination: d}]\naddress: http://x\n", "interval"),
    ("address: \"\\ud800\"\ntoken_file: t\nfiles: [{path: a, destination: d}]\n", "unpaired surrogate"),
])
def test_config_regressions(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "agent.yaml").write_text(text)
    with pytest.raises(UsageError) as caught:
        load_config(tmp_path / "agent.yaml", env={})
    assert needle in caught.value.message and "\n" not in caught.value.message
