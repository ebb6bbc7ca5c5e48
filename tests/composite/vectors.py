"""Loader for the draft authors' composite vectors (tests/vectors/composite): one case per algorithm."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "composite" / "testvectors.json.gz"
SHA256 = "a60f697f9fd94c3cd5e4501a40c4396d9a9ffc7cf0f8a1ddd87dedbb46a7abf0"  # of the uncompressed file


@dataclass(frozen=True)
class Case:
    name: str  # tcId without "id-"
    pk: bytes
    x5c: bytes
    sk: bytes
    sk_pkcs8: bytes
    s: bytes
    s_with_context: bytes


@dataclass(frozen=True)
class VectorFile:
    message: bytes
    context: bytes
    cases: tuple[Case, ...]

    def case(self, name: str) -> Case:
        return next(c for c in self.cases if c.name == name)


@cache
def load() -> VectorFile:
    data = gzip.decompress(VECTORS.read_bytes())
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise AssertionError(f"{VECTORS} is not the vendored file (SHA-256 differs)")
    document = json.loads(data)
    b = base64.b64decode
    cases = tuple(
        Case(t["tcId"].removeprefix("id-"), b(t["pk"]), b(t["x5c"]), b(t["sk"]), b(t["sk_pkcs8"]), b(t["s"]),
             b(t["sWithContext"]))
        for t in document["tests"]
        if not t["tcId"].startswith("id-ML-DSA-")  # the pure ML-DSA entries are not composites
    )
    return VectorFile(b(document["m"]), b(document["ctx"]), cases)
