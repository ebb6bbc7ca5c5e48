"""The conformance harness on AWS KMS (`keyplane emulator aws`: moto over HTTP with AWS's documented Sign).

Writes docs/conformance-reports/conformance-aws.md and .json. The server is `keyplane emulator
aws`, which serves Ed25519 and ML-DSA with real keys, so no row is stubbed any more (the
Stubber scenarios of stubbed_kms.py still run in test_stubbed.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from signers.algorithms import KeySpec

from .stubbed_kms import (
    STUBBED_SPECS,
    scenario_async,
    scenario_create,
    scenario_delete,
    scenario_ed25519_limits,
    scenario_list,
    scenario_open,
    scenario_states,
    signed_messages,
    sizes_for,
)

MUST_PASS = (KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1, KeySpec.RSA2048, KeySpec.RSA3072, KeySpec.RSA4096)
PREFIX = "botocore Stubber (moto 5.2.5 lacks this key spec; AWS-documented request shapes): "


def _judge(check: Callable[[], str]) -> tuple[str, str]:
    from conformance.report import FAIL, STUBBED

    try:
        return STUBBED, PREFIX + check()
    except Exception as e:  # a stubbed scenario that fails is a failed row, never a quiet one
        return FAIL, f"stubbed scenario failed: {type(e).__name__}: {e}"


def stubbed_rows(spec: KeySpec) -> dict[str, tuple[str, str]]:
    """(status, detail) per harness check for a spec judged with the Stubber."""
    from conformance import checks

    rows = {"create": _judge(lambda: scenario_create(spec)), "open": _judge(lambda: scenario_open(spec))}
    made: dict[str, Any] = {}

    def sign() -> str:
        made["signer"], made["pairs"], detail = signed_messages(spec, sizes_for(spec))
        if spec is KeySpec.ED25519:
            detail += "; " + scenario_ed25519_limits()
        return detail

    rows["sign-verify"] = _judge(sign)

    def state() -> Any:
        if "signer" not in made:
            raise AssertionError("no signatures (see sign-verify)")
        s = checks.SpecState(store=made["signer"]._store, spec=spec, name="stubbed", signer=made["signer"])
        s.signatures = list(made["pairs"])
        return s

    rows["signature-format"] = _judge(lambda: "harness check on the returned signatures: "
                                      + checks.check_signature_format(state()))
    rows["negatives"] = _judge(lambda: "harness check on the returned signatures: " + checks.check_negatives(state()))

    def key_id() -> str:
        signer = made["signer"]
        expected = checks.rfc7638_thumbprint(signer.public_key.key)
        if signer.key_id != expected:
            raise AssertionError(f"key_id {signer.key_id} is not the RFC 7638 thumbprint {expected}")
        return f"{signer.key_id} is the RFC 7638 thumbprint of the public key KMS returned"

    rows["key-id"] = _judge(key_id)
    rows["delete"] = _judge(lambda: scenario_delete(spec) + "; " + scenario_states(spec))
    rows["list-keys"] = _judge(lambda: scenario_list(spec))
    rows["async"] = _judge(lambda: scenario_async(spec))
    rows["public-key"] = _judge(lambda: "GetPublicKey DER SPKI loads as " + spec.value + "; " + scenario_open(spec))
    return rows


def test_conformance_aws_kms(moto_target: Any, reports_dir: Path) -> None:
    """Every spec against `keyplane emulator aws` (Ed25519 and ML-DSA with real keys now, none stubbed)."""
    from conformance import run_conformance
    from conformance.report import NOT_SUPPORTED, PASS, STORE

    report = run_conformance(moto_target)
    report.write(reports_dir / "conformance-aws")
    assert report.ok, report.to_markdown()
    assert {r.status for r in report.rows} <= {PASS, NOT_SUPPORTED}
    for spec in (*MUST_PASS, *STUBBED_SPECS):
        for check in ("create", "open", "public-key", "key-id", "signature-format", "negatives", "algorithms",
                      "duplicate-create", "list-keys", "threads", "async", "event-loop", "delete"):
            row = report.row(spec.value, check)
            assert row is not None and row.status == PASS, row
    store_rows = {r.check: r.status for r in report.rows if r.spec == STORE}
    for check in ("unknown-key", "bad-credentials", "unreachable", "secrets", "listing", "nonce-reuse", "replaced-key"):
        assert store_rows[check] == PASS, (check, report.row(STORE, check))
