"""The conformance suite on a real OpenBao dev server; writes reports/conformance-vault.{md,json}."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signers.algorithms import KeySpec

# Issue 5's "must show": every check passes for these (not merely "not supported").
MUST_PASS = (KeySpec.ED25519, KeySpec.P256, KeySpec.P384, KeySpec.RSA2048)


def test_conformance_on_openbao(openbao_target: Any, reports_dir: Path) -> None:
    from conformance import run_conformance

    report = run_conformance(openbao_target)
    report.write(reports_dir / "conformance-vault")
    assert report.ok, report.to_markdown()
    for spec in MUST_PASS:
        for check in report.checks:
            row = report.row(spec.value, check)
            assert row is not None and row.status == "pass", (spec, check, row)
