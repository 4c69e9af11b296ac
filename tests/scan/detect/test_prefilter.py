"""Prefilters lose nothing: the hyperscan engine (prefilter + windows) reports exactly what the full regexes do."""

from __future__ import annotations

import random
import string

import pytest

from kinko.scan.detect import HyperscanDetector, KeywordDetector, load_rules
from kinko.scan.interface import Match

RULES = load_rules()
FAST = HyperscanDetector(RULES)
# The keyword engine runs each keyword-hit rule's full regex over the whole buffer: the reference.
EXACT = KeywordDetector(RULES)

_KEYS = ["password", "DB_PASSWORD", "passwd", "Passwort", "pwd", "smtp_password_prod", "PASSWORD.main-1"]
_SEPS = ["=", ":", ":=", "=>", " = ", ": ", '": ', "  =\t", " " * 40 + "= "]
_QUOTES = ["", '"', "'"]
_ENDS = ["\n", '"', "'", ";", ",", ")", "]", "}", " ", "(", ".get(", "", "\n\n", "<"]
_VALUE_CHARS = string.ascii_letters + string.digits + "!#$%&*+-./:=?@^_|~"


def _assignment(rng: random.Random) -> str:
    value = "".join(rng.choice(_VALUE_CHARS) for _ in range(rng.choice([4, 8, 12, 30, 64, 127, 128, 129, 200])))
    quote = rng.choice(_QUOTES)
    return f"{rng.choice(_KEYS)}{rng.choice(_SEPS)}{quote}{value}{rng.choice(_ENDS)}"


def _keyed(matches: list[Match]) -> list[tuple[str, int, int, bytes, int]]:
    return [(m.rule_id, m.start, m.end, m.secret, m.line) for m in matches]


@pytest.mark.parametrize("seed", range(40))
def test_generic_password_engines_agree_on_random_assignments(seed: int) -> None:
    rng = random.Random(seed)
    lines = [_assignment(rng) for _ in range(30)]
    # Near-misses between them, as in real code: they must not hide or shift a neighbour's finding.
    lines.insert(rng.randrange(len(lines)), "    password = os.environ.get('DB_PASSWORD')  # read at run time\n")
    data = "".join(lines).encode()
    assert _keyed(FAST.scan(data)) == _keyed(EXACT.scan(data))


@pytest.mark.parametrize("tail", ["", "\n", '"'])
def test_longest_value_after_a_long_key_is_found_whole(tail: str) -> None:
    value = ("Zq8vN2kLp4Rt7wXy" * 8)[:128]  # the rule's upper bound
    data = f'x = 1\nsmtp_password_prod{" " * 40}=   "{value}{tail}'.encode()
    found = [m for m in FAST.scan(data) if m.rule_id == "generic-password"]
    assert [m.secret for m in found] == [value.encode()]
    assert found[0].line == 2


def test_code_reading_a_password_reaches_no_regex() -> None:
    # `password = os.environ.get(...)` is the commonest near-miss in real images; the prefilter itself rejects
    # it, so it costs no `re` window (this is what keeps the generic rules cheap on big layers).
    data = b"    password = os.environ.get('DB_PASSWORD')  # read at run time\n" * 200
    assert list(FAST._candidates(data)) == []
    assert FAST.scan(data) == []
