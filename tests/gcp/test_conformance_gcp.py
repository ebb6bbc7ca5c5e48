"""The conformance suite on the gcpkms back end against the local KMS emulator.

Writes docs/conformance-reports/conformance-gcp.{md,json}. Every row must pass but one, which is a limit
of Cloud KMS itself, not of the back end: AsymmetricSign takes Ed25519 (pure EdDSA) only as
the whole message in `data`, at most 64 KiB, and Cloud KMS has no pre-hashed Ed25519, so
the 1 MiB message of Ed25519/sign-verify is refused with AlgorithmNotSupported. That row
must fail for exactly that reason and no other (or be reported as not supported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

conformance = pytest.importorskip("conformance", reason="the conformance harness is not importable")

KNOWN_LIMIT = ("Ed25519", "sign-verify")


def test_conformance_gcp(gcp_target: Any, reports_dir: Path) -> None:
    report = conformance.run_conformance(gcp_target)
    report.write(reports_dir / "conformance-gcp")
    rotate = report.row("store", "rotate")
    assert rotate is not None and rotate.ok, rotate
    others = [r for r in report.failures if (r.spec, r.check) != KNOWN_LIMIT]
    assert not others, report.to_markdown()
    limit = report.row(*KNOWN_LIMIT)
    assert limit is not None
    if not limit.ok:
        problems = limit.detail.split("; ")
        assert len(problems) == 1 and problems[0].startswith("1 MiB: sign raised AlgorithmNotSupported"), limit.detail
        assert "at most 65536 bytes" in problems[0], limit.detail
    required = ["P-256", "P-384", "secp256k1", "RSA-2048", "Ed25519", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87"]
    assert set(required) <= set(report.specs()), report.specs()
