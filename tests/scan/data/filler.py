"""Secret-free filler for false-positive tests and benchmarks: base64 blobs, source code, minified JS,
UUIDs, hex digests, English-ish text and ELF-like binary. Deterministic for a given seed."""

from __future__ import annotations

import base64
import hashlib
import random
import uuid

_TEXT = (
    "the of and to in is that for it as with was on be by this are from or have an they which one you "
    "were her all she there would their we him been has when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may then do first any my now such "
    "like our over man me even most made after also did many before must through back years where much "
    "your way well down should because each just those people how too little state good very make world"
)
_WORDS = tuple(_TEXT.split())

_PLAIN_CODE = (
    "    {a} = {b}.{c}({d}, {n})\n",
    "    if {a} is None:\n        return {b}\n",
    "        {a}.append({b}[{n}])\n",
    "    result = [{a}({b}) for {b} in {c} if {b}.{d}]\n",
    "    logger.debug('{w1} {w2} %s', {a})\n",
    "\n",
    "    return {{'{a}': {b}, '{c}': {n}}}\n",
)
_PY_TEMPLATES = (
    "def {a}({b}, {c}=None):\n    return {b}.{d}({c})\n",
    "    password = request.form.get('password')\n",
    "    token = request.headers.get('Authorization', '').removeprefix('Bearer ')\n",
    "    if not check_password_hash(user.password_hash, password):\n        raise {A}Error('bad login')\n",
    "    self.{a}_secret = settings.{A}_SECRET\n",
    "    api_key = os.environ['{A}_API_KEY']\n",
    "PASSWORD_MIN_LENGTH = {n}\n",
    "    secret_key: str = Field(default_factory=lambda: os.urandom(32).hex())\n",
    "    db_password = config.get('database', 'password')\n",
    "    headers = {{'Authorization': f'Bearer {{self.token}}'}}\n",
    "class {A}{B}(Base{A}):\n    \"\"\"{w1} {w2} {w3}.\"\"\"\n\n",
    "    for {a} in range({n}):\n        {b}[{a}] = {c}({a}) + {n}\n",
    "import {a}.{b} as {c}\nfrom {d} import {A}\n",
    "    # {w1} {w2} {w3} {w4} password {w5}\n",
    "    token_url = 'https://{a}.example.org/oauth/token'\n",
    "    access_key = self._session.get_credentials().access_key\n",
    "    secret = kinko.get('{a}/{b}')\n",
    "      password: ${{{A}_PASSWORD}}\n",
    "    DATABASE_URL = 'postgres://{{user}}:{{password}}@localhost/{a}'\n",
)


def _ident(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))


def python_source(rng: random.Random, size: int) -> bytes:
    parts: list[str] = []
    total = 0
    while total < size:
        fields = {k: _ident(rng) for k in "abcd"}
        fields.update({k: _ident(rng).capitalize() for k in "AB"})
        fields.update({f"w{i}": rng.choice(_WORDS) for i in range(1, 6)})
        fields["n"] = str(rng.randint(1, 100000))
        # About one line in ten mentions a credential-ish name, as in real application code.
        templates = _PY_TEMPLATES if rng.random() < 0.1 else _PLAIN_CODE
        line = rng.choice(templates).format(**fields)
        parts.append(line)
        total += len(line)
    return "".join(parts).encode()


def minified_js(rng: random.Random, size: int) -> bytes:
    parts: list[str] = []
    total = 0
    while total < size:
        a, b, c = _ident(rng)[:2], _ident(rng)[:1], _ident(rng)
        chunk = rng.choice(
            (
                f"function {a}({b},e){{return {b}.{c}(e)||{rng.randint(0, 999)}}}",
                f"var {a}={b}.{c}||{{}};{a}.token=null;",
                f'{a}["{c}"]=function(t){{return t&&t.__esModule?t:{{default:t}}}};',
                f"e.exports={{{c}:{rng.random():.6f},key:\"{c}\"}};",
                f"if({a}.password!=={b}.password){{throw new Error(\"{c}\")}}",
            )
        )
        parts.append(chunk)
        total += len(chunk)
    return "".join(parts).encode()


def base64_blob(rng: random.Random, size: int) -> bytes:
    raw = base64.b64encode(rng.randbytes(size * 3 // 4))
    if rng.random() < 0.5:  # PEM-ish wrapped lines or one long line
        return b"\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))
    return raw


def ids_and_digests(rng: random.Random, size: int) -> bytes:
    lines: list[bytes] = []
    total = 0
    while total < size:
        seed = rng.randbytes(16)
        line = rng.choice(
            (
                str(uuid.UUID(bytes=seed)).encode(),
                b"sha256:" + hashlib.sha256(seed).hexdigest().encode(),
                hashlib.sha1(seed).hexdigest().encode() + b"  " + _ident(rng).encode() + b".tar.gz",
                hashlib.md5(seed).hexdigest().upper().encode(),
                b'"integrity": "sha512-' + base64.b64encode(hashlib.sha512(seed).digest()) + b'"',
            )
        )
        lines.append(line)
        total += len(line) + 1
    return b"\n".join(lines)


def prose(rng: random.Random, size: int) -> bytes:
    words: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(_WORDS)
        words.append(word)
        total += len(word) + 1
    return " ".join(words).encode()


def elf_binary(rng: random.Random, size: int) -> bytes:
    body = bytearray(rng.randbytes(size))
    body[:16] = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
    # Sprinkle C-string tables like real binaries carry.
    for _ in range(size // 2048):
        at = rng.randrange(16, max(17, size - 64))
        text = b"\x00" + " ".join(rng.choice(_WORDS) for _ in range(4)).encode() + b"\x00"
        body[at : at + len(text)] = text
    return bytes(body[:size])


_KINDS = (python_source, minified_js, base64_blob, ids_and_digests, prose, elf_binary)


def filler_files(total: int, seed: int = 1234, file_size: int = 256 * 1024) -> list[bytes]:
    """A list of file-sized buffers of mixed filler adding up to about `total` bytes."""
    rng = random.Random(seed)
    files: list[bytes] = []
    made = 0
    while made < total:
        size = min(file_size, total - made)
        files.append(_KINDS[len(files) % len(_KINDS)](rng, size))
        made += len(files[-1])
    return files
