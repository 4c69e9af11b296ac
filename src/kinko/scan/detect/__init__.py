"""Secret detection: rules as data (`rules/*.yaml`), a hyperscan engine and a pyahocorasick fallback."""

from __future__ import annotations

from pathlib import Path

from kinko.config import ScanEngine
from kinko.scan.detect.engine import HyperscanDetector, KeywordDetector, RuleDetector
from kinko.scan.detect.loader import Rule, load_rules

__all__ = [
    "DetectorSettings",
    "HyperscanDetector",
    "KeywordDetector",
    "Rule",
    "RuleDetector",
    "built_with",
    "default_detector",
    "load_rules",
]

#: (engine, cache_dir): the arguments of `default_detector`.
DetectorSettings = tuple[ScanEngine, Path | None]
#: The detectors `default_detector` built, by their arguments; forked workers inherit this and reuse them.
_built: dict[DetectorSettings, RuleDetector] = {}


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


def default_detector(engine: ScanEngine = "auto", cache_dir: Path | None = None) -> RuleDetector:
    """The shipped rules in the fastest available engine, built once per process and argument set.

    `engine="keyword"` forces the pyahocorasick fallback (benchmarks, debugging). `cache_dir` keeps compiled
    hyperscan databases between runs (see `hscache`); None compiles the rules and keeps nothing.
    """
    if engine not in ("auto", "keyword"):
        raise ValueError(f"unknown scan engine {engine!r} (auto or keyword)")
    settings: DetectorSettings = (engine, cache_dir)
    detector = _built.get(settings)
    if detector is None:
        detector = _built[settings] = _build(engine, cache_dir)
    return detector


def _build(engine: ScanEngine, cache_dir: Path | None) -> RuleDetector:
    rules = load_rules()
    if engine != "keyword" and hyperscan_available():
        return HyperscanDetector(rules, cache_dir=cache_dir)
    return KeywordDetector(rules)


def built_with(detector: object) -> DetectorSettings | None:
    """The arguments `default_detector` built this very `detector` with, or None (it built no such object).

    Never builds anything: asking about a detector costs no rule compilation.
    """
    return next((settings for settings, built in _built.items() if built is detector), None)
