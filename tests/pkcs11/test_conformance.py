"""The conformance suite on the session's SoftHSM2 token; writes docs/conformance-reports/conformance-pkcs11.{md,json}."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_conformance_softhsm(softhsm_target: Any, reports_dir: Path) -> None:
    from conformance import run_conformance

    report = run_conformance(softhsm_target)
    report.write(reports_dir / "conformance-pkcs11")
    assert report.ok, report.to_markdown()
