"""The conformance suite on a real OpenBao dev server; writes docs/conformance-reports/conformance-vault.{md,json}."""

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
    assert not report.failures, report.to_markdown()
    replaced = report.row("store", "replaced-key")  # issue 14 item 1: a re-created key is never signed with
    assert replaced is not None and replaced.ok, replaced
    for spec in MUST_PASS:
        for check in report.checks:
            row = report.row(spec.value, check)
            optional = check == "deterministic" and spec not in openbao_target_deterministic(report)
            assert row is not None and (row.status == "pass" or (optional and row.status == "not-supported")), (
                spec, check, row)


def openbao_target_deterministic(report: Any) -> set[KeySpec]:
    """Specs whose deterministic row ran (claimed, or Ed25519): those must pass; the others are not-supported."""
    return {KeySpec.parse(r.spec) for r in report.rows if r.check == "deterministic" and r.status != "not-supported"}
