"""Public rule test cases of another scanner (gitleaks), kinko vs Trivy: % of true samples found, % of false flagged.

    .venv/bin/python bench/public_rules.py --corpus /tmp/gitleaks_corpus/corpus_all.json [--seed 1] [--keep]

Gitleaks keeps, per rule, true-positive and false-positive samples in its Go sources
(`cmd/generate/config/rules/*.go`: `tps := []string{...}`, `fps := ...`, `r.TPs = utils.GenerateSampleSecrets(...)`).
They are third-party text, so nothing of them is committed here: the corpus is a JSON file given with `--corpus`
(copied to ~/.cache/kinko-public-rules/corpus.json, used from there when `--corpus` is omitted).

How the corpus JSON was produced (2026-12-07): this machine has no network to GitHub, so the rule files were read
through a stored copy of the public gitleaks repository and transcribed by hand, rule by rule, into small
Python programs that write the JSON (kept outside the repository: /tmp/gitleaks_corpus/build_corpus.py and
batch7.py write corpus.json, batch_a/b/c.py write corpus_a/b/c.json, and corpus_all.json joins the four; a copy
of the programs is kept in ~/.cache/kinko-public-rules/src on the machine that built it). The
transcription keeps the Go *expressions*, not values generated once, in this form:

    {"rules": [{"family": "gitlab", "rule": "gitlab-pat", "tps": [SAMPLE, ...], "fps": [SAMPLE, ...]}, ...]}
    SAMPLE = "literal text, {re:[a-z0-9]{20}} parts"           a literal; {re:CLASS{N}} = secrets.NewSecret(CLASS{N})
           | {"one": [identifier, template]}                    utils.GenerateSampleSecret: `{i}_api_token = "{s}"`
           | {"path": "file.tf", "text": template}               utils.ValidateWithPaths: written as <n>.tf
           | {"gen": [identifier, template]}                    utils.GenerateSampleSecrets: the 26 syntax variants
                                                                (INI, JSON, XML, YAML, C#, Go, Java, Kotlin, PHP,
                                                                Python, System.setProperty, logstash, make)

secrets.NewSecret is implemented for what the rules use (a character class with a count or {m,n}, the helpers
utils.AlphaNumeric/Hex/Numeric/AlphaNumericExtendedShort); a sample with any other Go expression is skipped and
counted (`skipped`). The corpus covers 147 of gitleaks' ~180 rule files, 231 rules (listed in `source` in the
JSON), each at the version the stored copy held (not always gitleaks' newest).

Each sample becomes its own file (`<n>.txt`) in one folder; kinko scans the folder (`kinko scan dir -o json`,
every severity counted, and separately >= its default --fail-on high) and Trivy scans the same folder (`trivy fs
--scanners secret`, fresh --cache-dir). A true sample is *found* when the tool reports any finding in its file;
a false sample is *flagged* the same way. Results: "## public rule cases (bench/public_rules.py)" in RESULTS.md
(written by hand from this script's output; the script prints the section).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from scan import TRIVY_ARGS, find_trivy  # noqa: E402

CACHE = Path.home() / ".cache" / "kinko-public-rules"

# gitleaks cmd/generate/config/utils/generate.go GenerateSampleSecrets: its variants (the TODO ones left out)
VARIANTS = {
    "ini - quoted1": '{i}Token="{s}"',
    "ini - quoted2": '{i}Token = "{s}"',
    "ini - unquoted1": "{i}Token={s}",
    "ini - unquoted2": "{i}Token = {s}",
    "json - string": '{\n    "{i}_token": "{s}"\n}',
    "json - escaped newline in string": '{"config.ini": "{I}_TOKEN={s}\\nBACKUP_ENABLED=true"}',
    "xml - element multiline": "<{i}Token>\n    {s}\n</{i}Token>",
    "yaml - singleline - unquoted": "{i}_token: {s}",
    "yaml - singleline - single quote": "{i}_token: '{s}'",
    "yaml - singleline - double quote": '{i}_token: "{s}"',
    "C#": 'string {i}Token = "{s}";',
    "go - normal": 'var {i}Token string = "{s}"',
    "go - short": '{i}Token := "{s}"',
    "go - backticks": "{i}Token := `{s}`",
    "java": 'String {i}Token = "{s}";',
    "kotlin - notype": 'var {i}Token = "{s}"',
    "php - string concat": '${i}Token .= "{s}"',
    "python - single quote": "{i}Token = '{s}'",
    "python - double quote": '{i}Token = "{s}"',
    "misc - comma operator": 'System.setProperty("{I}_TOKEN", "{s}")',
    "logstash": '  "{i}Token" => "{s}"',
    "make - recursive assignment": '{i}_TOKEN = "{s}"',
    "make - simple assignment": '{i}_TOKEN := "{s}"',
    "make - shell assignment": '{i}_TOKEN ::= "{s}"',
    "make - evaluated shell assignment": '{i}_TOKEN :::= "{s}"',
    "make - conditional assignment": '{i}_TOKEN ?= "{s}"',
}

_RE_PART = re.compile(r"\{re:\[([^\]]+)\]\{(\d+)(?:,(\d+))?\}\}")


class Unsupported(Exception):
    pass


def _class_chars(cls: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(cls):
        if i + 2 < len(cls) and cls[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(cls[i]), ord(cls[i + 2]) + 1))
            i += 3
        else:
            out.append(cls[i])
            i += 1
    return "".join(out)


def expand_value(template: str, rng: random.Random) -> str:
    """secrets.NewSecret for `[class]{n}`; anything else left in `{re:...}` form is unsupported."""

    def draw(m: re.Match[str]) -> str:
        n = rng.randint(int(m.group(2)), int(m.group(3))) if m.group(3) else int(m.group(2))
        return "".join(rng.choice(_class_chars(m.group(1))) for _ in range(n))

    value = _RE_PART.sub(draw, template)
    if "{re:" in value:
        raise Unsupported(template)
    return value


def expand(sample: Any, rng: random.Random) -> list[tuple[str, str]]:
    """One corpus sample -> [(variant, text)]."""
    if isinstance(sample, dict) and "path" in sample:  # utils.ValidateWithPaths: the file name matters
        return [("path", expand_value(sample["text"], rng))]
    if isinstance(sample, str):
        return [("literal", expand_value(sample, rng))]
    if isinstance(sample, dict) and "one" in sample:
        ident, tmpl = sample["one"]
        return [("generateSampleSecret", f'{ident}_api_token = "{expand_value(tmpl, rng)}"')]
    if isinstance(sample, dict) and "gen" in sample:
        ident, tmpl = sample["gen"]
        secret = expand_value(tmpl, rng)  # one value for all variants, as gitleaks does
        return [(name, v.replace("{i}", ident).replace("{I}", ident.upper()).replace("{s}", secret))
                for name, v in VARIANTS.items()]  # fmt: skip
    raise Unsupported(repr(sample))


def build(corpus: dict[str, Any], out: Path, seed: int) -> tuple[list[dict[str, Any]], int]:
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    skipped = 0
    for r in corpus["rules"]:
        for truth, key in ((True, "tps"), (False, "fps")):
            for s in r.get(key, []):
                try:
                    items = expand(s, rng)
                except Unsupported:
                    skipped += 1
                    continue
                ext = Path(s["path"]).suffix if isinstance(s, dict) and "path" in s else ".txt"
                for variant, text in items:
                    name = f"{len(cases):05d}{ext}"
                    (out / name).write_text(text + "\n", encoding="utf-8")
                    cases.append({"file": name, "truth": truth, "rule": r["rule"], "family": r["family"],
                                  "variant": variant})  # fmt: skip
    return cases, skipped


def run_kinko(folder: Path) -> tuple[dict[str, list[dict[str, Any]]], float]:
    t0 = time.perf_counter()
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "kinko"), "scan", "dir", str(folder), "-o", "json",
                        "--exit-code", "0"], capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    doc = json.loads(p.stdout)
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in doc["findings"]:  # `file` is the file itself; `path` may go on into it (`x.yaml:Secret/ns/name:data.k`)
        by_file[Path(f["location"].get("file") or f["location"]["path"]).name].append(f)
    return by_file, wall


def run_trivy(trivy: str, folder: Path, work: Path) -> tuple[dict[str, list[dict[str, Any]]], float]:
    cache = Path(tempfile.mkdtemp(prefix="trivy-cache-", dir=work))
    t0 = time.perf_counter()
    p = subprocess.run([trivy, "fs", *TRIVY_ARGS, "--cache-dir", str(cache), str(folder)],
                       capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    doc = json.loads(p.stdout)
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for res in doc.get("Results") or []:
        for s in res.get("Secrets") or []:
            by_file[Path(res["Target"]).name].append(s)
    return by_file, wall


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f} %" if b else "—"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="corpus JSON (default: the cached copy)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / "corpus.json"
    if args.corpus:
        shutil.copyfile(args.corpus, cached)
    if not cached.exists():
        sys.exit("no corpus: give --corpus PATH (see the module docstring for how it is produced)")
    corpus = json.loads(cached.read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp(prefix="kinko-public-rules-"))
    try:
        folder = work / "samples"
        folder.mkdir()
        cases, skipped = build(corpus, folder, args.seed)
        tools: dict[str, tuple[dict[str, list[dict[str, Any]]], float]] = {"kinko": run_kinko(folder)}
        trivy = find_trivy()
        if trivy:
            tools["trivy"] = run_trivy(trivy, folder, work)
        hits: dict[str, dict[str, bool]] = {}
        for name, (by_file, _) in tools.items():
            hits[name] = {c["file"]: bool(by_file.get(c["file"])) for c in cases}
        kb = tools["kinko"][0]
        hits["kinko >= high"] = {
            c["file"]: any(f["severity"] in ("high", "critical") for f in kb.get(c["file"], [])) for c in cases
        }
        tp = [c for c in cases if c["truth"]]
        fp = [c for c in cases if not c["truth"]]
        lines = [f"samples: {len(tp)} true, {len(fp)} false, from {len(corpus['rules'])} rules; "
                 f"skipped (unsupported Go expression): {skipped}", "",
                 "| tool | true found | per-rule mean | rules with none found | false flagged | wall s |",
                 "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for name, h in hits.items():
            wall = f"{tools[name][1]:.1f}" if name in tools else "—"
            by_rule: dict[str, list[bool]] = defaultdict(list)
            for c in tp:
                by_rule[c["rule"]].append(h[c["file"]])
            macro = 100 * sum(sum(v) / len(v) for v in by_rule.values()) / len(by_rule)
            found = sum(h[c["file"]] for c in tp)
            flagged = sum(h[c["file"]] for c in fp)
            none = sum(not any(v) for v in by_rule.values())
            lines.append(
                f"| {name} | {found}/{len(tp)} ({pct(found, len(tp))}) | {macro:.1f} % | {none}/{len(by_rule)}"
                f" | {flagged}/{len(fp)} ({pct(flagged, len(fp))}) | {wall} |"
            )
        lines += ["", "| family | true | kinko found | trivy found | false | kinko flagged | trivy flagged |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        fam: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in cases:
            fam[c["family"]].append(c)
        t = "trivy" if "trivy" in hits else "kinko"

        def missed(cs: list[dict[str, Any]]) -> int:
            return sum(not hits["kinko"][c["file"]] for c in cs if c["truth"])

        for f, cs in sorted(fam.items(), key=lambda kv: missed(kv[1]), reverse=True):
            ft, ff = [c for c in cs if c["truth"]], [c for c in cs if not c["truth"]]
            lines.append(
                f"| {f} | {len(ft)} | {pct(sum(hits['kinko'][c['file']] for c in ft), len(ft))} | "
                f"{pct(sum(hits[t][c['file']] for c in ft), len(ft))} | {len(ff)} | "
                f"{sum(hits['kinko'][c['file']] for c in ff)} | {sum(hits[t][c['file']] for c in ff)} |"
            )
        lines += ["", "kinko misses by rule (true samples not found / true samples):"]
        rules: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in tp:
            rules[c["rule"]].append(c)
        for r, cs in sorted(rules.items(), key=lambda kv: -sum(not hits["kinko"][c["file"]] for c in kv[1])):
            miss = sum(not hits["kinko"][c["file"]] for c in cs)
            if miss:
                lines.append(f"- {r}: {miss}/{len(cs)}")
        lines += ["", "kinko by syntax variant (GenerateSampleSecrets rules only; found / true):"]
        var: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c in tp:
            if c["variant"] in VARIANTS:
                var[c["variant"]].append(c)
        for v, cs in sorted(var.items(), key=lambda kv: sum(hits["kinko"][c["file"]] for c in kv[1])):
            lines.append(f"- {v}: {sum(hits['kinko'][c['file']] for c in cs)}/{len(cs)}"
                         f" (trivy {sum(hits[t][c['file']] for c in cs)})")  # fmt: skip
        lines += ["", "false samples flagged by kinko:"]
        for c in fp:
            if hits["kinko"][c["file"]]:
                rid = ",".join(sorted({f["rule_id"] for f in kb[c["file"]]}))
                text = (folder / c["file"]).read_text(encoding="utf-8").strip().replace("\n", "\\n")[:90]
                lines.append(f"- {c['rule']} → {rid}: `{text}`")
        print("\n".join(lines))
        (CACHE / "last_cases.json").write_text(json.dumps({"cases": cases, "hits": hits}), encoding="utf-8")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
