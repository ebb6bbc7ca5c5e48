"""The conformance harness on the Azure back end (emulator): every check, every claimed spec.

Writes docs/conformance-reports/conformance-azure.{md,json}. Ed25519 and ML-DSA are not claimed (Azure Key
Vault does not offer them) and must be refused with AlgorithmNotSupported and that reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MUST_PASS = ("P-256", "P-384", "secp256k1", "RSA-2048", "RSA-3072", "RSA-4096")
AZURE_LACKS = ("Ed25519", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87")


def test_conformance(azure_target: Any, reports_dir: Path) -> None:
    from conformance import run_conformance

    report = run_conformance(azure_target)
    report.write(reports_dir / "conformance-azure")
    assert report.ok, report.to_markdown()
    for spec in MUST_PASS:
        rows = [row for row in report.rows if row.spec == spec]
        bad = [r for r in rows if r.status != "pass" and not (r.check == "deterministic" and r.status == "not-supported")]
        assert rows and not bad, (spec, bad)
    for spec in AZURE_LACKS:
        create = report.row(spec, "create")
        assert create is not None and create.status == "not-supported"
        assert "Azure Key Vault does not offer" in create.detail, create
    store_rows = {row.check: row.status for row in report.rows if row.spec not in MUST_PASS + AZURE_LACKS}
    assert store_rows and "fail" not in store_rows.values(), store_rows
    core = ("unknown-key", "bad-credentials", "unreachable", "secrets", "listing", "nonce-reuse")
    assert all(store_rows[c] == "pass" for c in core), store_rows
