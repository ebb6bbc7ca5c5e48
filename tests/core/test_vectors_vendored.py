"""The vendored vector files are exactly the published ones (checksums from tests/vectors/README.md)."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "vectors" / "README.md"
_LINE = re.compile(r"^([0-9a-f]{64})\s+(\d+)\s+(\S+)$")


def _published() -> list[tuple[str, int, str]]:
    rows = []
    for line in README.read_text().splitlines():
        found = _LINE.match(line.strip())
        if found:
            rows.append((found.group(1), int(found.group(2)), found.group(3)))
    return rows


def test_readme_lists_every_vendored_file() -> None:
    listed = {name for _, _, name in _published()}
    assert len(listed) >= 24
    present = {p.relative_to(README.parent / "wycheproof").as_posix().removesuffix(".gz")
               for p in (README.parent / "wycheproof").rglob("*") if p.is_file()}
    assert present == listed


@pytest.mark.parametrize(("digest", "size", "name"), _published(), ids=lambda v: str(v)[:40])
def test_vendored_file_matches_its_published_checksum(digest: str, size: int, name: str) -> None:
    path = README.parent / "wycheproof" / name
    data = gzip.decompress(path.with_name(path.name + ".gz").read_bytes()) if not path.exists() else path.read_bytes()
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == digest
