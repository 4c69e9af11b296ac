"""Secret detection: rules as data (`rules/*.yaml`), a hyperscan engine and a pyahocorasick fallback."""

from __future__ import annotations

import functools
import os

from kinko.scan.detect.engine import HyperscanDetector, KeywordDetector, RuleDetector
from kinko.scan.detect.loader import Rule, load_rules

__all__ = ["HyperscanDetector", "KeywordDetector", "Rule", "RuleDetector", "default_detector", "load_rules"]


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def default_detector() -> RuleDetector:
    """The shipped rules in the fastest available engine, built once per process.

    `KINKO_SCAN_ENGINE=keyword` forces the pyahocorasick fallback (benchmarks, debugging).
    """
    rules = load_rules()
    if os.environ.get("KINKO_SCAN_ENGINE", "").lower() != "keyword" and hyperscan_available():
        return HyperscanDetector(rules)
    return KeywordDetector(rules)
