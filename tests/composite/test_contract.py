"""The KeyStore / Signer contract on ``composite:`` stores, judged by the conformance harness itself.

The harness takes the composite variants as key specs of their own: every per-variant row
(create, open, public-key, key-id, sign-verify verified by the composite verifier and half by
half with `cryptography`, signature-format, negatives with either half broken or verified as
another variant, algorithms, threads / async / event-loop in a child process, delete) and the
store rows (listing, bad credentials in one half, secrets, sign-many, ...) run on it as on any
back end. Writes docs/conformance-reports/conformance-composite.{md,json}. The broken-half
tests show the rows can fail: a half from a deliberately broken back end
(tests/conformance/broken_backend.py) makes exactly the rows that depend on it FAIL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import signers
from conformance import CHECKS, STORE_CHECKS, Target, run_conformance
from conformance.report import Report
from signers.composite import CompositeAlgorithm, CompositeKeyStore, composite_uri
from signers.errors import AuthenticationFailed
from tests.conformance.broken_backend import PLUGINS

V = CompositeAlgorithm
PASSWORD = "composite-contract-password"
PASSWORD_ENV = "KEYPLANE_TEST_COMPOSITE_PASSWORD"
WRONG_ENV = "KEYPLANE_TEST_COMPOSITE_WRONG"
SOURCE = f"?password-source=env:{PASSWORD_ENV}"
NOT_IMPLEMENTED = ("rotate", "disable", "import", "sign-digest", "native-async")  # the composite store has none


@pytest.fixture
def halves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Two password-protected file stores: (ML-DSA store URI, traditional store URI)."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv(WRONG_ENV, "not the password")
    return f"file:{tmp_path / 'pq'}{SOURCE}", f"file:{tmp_path / 'trad'}{SOURCE}"


@pytest.fixture
def store_uri(halves: tuple[str, str]) -> str:
    return composite_uri(None, *halves)


def rows_of(report: Report) -> dict[tuple[str, str], Any]:
    return {(r.spec, r.check): r for r in report.rows}


def test_every_variant_passes_the_harness(halves: tuple[str, str], store_uri: str, reports_dir: Path) -> None:
    """All 14 variants over two file stores: every row passes but what the store does not claim."""
    bad = composite_uri(None, halves[0].replace(PASSWORD_ENV, WRONG_ENV), halves[1])  # the ML-DSA half's password
    report = run_conformance(Target(store_uri, name="composite (two file stores)", bad_credentials_uri=bad, page=5))
    md, js = report.write(reports_dir / "conformance-composite")
    assert report.ok, report.to_markdown()
    data = json.loads(js.read_text())
    rows = {(r["spec"], r["check"]): r for r in data["rows"]}
    assert len(rows) == len(V) * len(CHECKS) + len(STORE_CHECKS)
    for variant in V:
        for check in CHECKS:
            row = rows[(variant.value, check)]
            expected = "not-supported" if check == "deterministic" else "pass"  # ML-DSA signs hedged
            assert row["status"] == expected, row
        assert "rejected" in rows[(variant.value, "negatives")]["detail"]
    for check in ("listing", "unknown-key", "bad-credentials", "replaced-key", "sign-many", "secrets"):
        assert rows[("store", check)]["status"] == "pass", rows[("store", check)]
    assert rows[("store", "bad-credentials")]["detail"].startswith("AuthenticationFailed")
    assert PASSWORD_ENV in rows[("store", "secrets")]["detail"]  # the halves' password-source is watched
    for check in NOT_IMPLEMENTED:
        assert rows[("store", check)]["detail"] == "not implemented", rows[("store", check)]
    text = md.read_text()
    assert "| MLDSA65-Ed25519-SHA512 | pass |" in text and PASSWORD not in text


def test_negatives_name_every_composite_case(store_uri: str) -> None:
    """The negatives row breaks either half, swaps, truncates, and verifies as another variant."""
    report = run_conformance(Target(store_uri, specs=[V.MLDSA44_ED25519_SHA512], page=1))
    row = rows_of(report)[(V.MLDSA44_ED25519_SHA512.value, "negatives")]
    assert row.status == "pass", row
    assert row.detail.startswith("17 tampered cases rejected"), row.detail  # 3 generic + 14 composite
    algorithms = rows_of(report)[(V.MLDSA44_ED25519_SHA512.value, "algorithms")]
    assert "opening it as a variant of other key specs raises AlgorithmNotSupported" in algorithms.detail


def test_cli_runs_a_composite_target(store_uri: str, tmp_path: Path) -> None:
    """`keyplane conformance run 'composite:...' --spec VARIANT` in a subprocess: exit 0, the variant's rows."""
    out = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "signers.cli", "conformance", "run", store_uri, "--spec",
                             "MLDSA44-Ed25519-SHA512", "--page", "1", "--no-progress", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["ok"] and {r["spec"] for r in data["rows"]} == {"MLDSA44-Ed25519-SHA512", "store"}
    assert PASSWORD not in result.stdout + result.stderr + out.read_text()


def test_variants_a_half_cannot_be_made_for_are_not_supported(halves: tuple[str, str]) -> None:
    """A traditional store offering Ed25519 only: the P-256 variant is not-supported with why, never fail."""
    narrow = "narrow:" + halves[1].split(":", 1)[1]
    target = Target(composite_uri(None, halves[0], narrow), plugins=PLUGINS, page=1,
                    specs=[V.MLDSA44_ED25519_SHA512, V.MLDSA44_ECDSA_P256_SHA256])
    report = run_conformance(target)
    assert report.ok, report.to_markdown()
    rows = rows_of(report)
    assert rows[(V.MLDSA44_ED25519_SHA512.value, "sign-verify")].status == "pass"
    for check in CHECKS:
        row = rows[(V.MLDSA44_ECDSA_P256_SHA256.value, check)]
        assert row.status == "not-supported" and "does not offer P-256" in row.detail, row


def test_a_broken_half_fails_the_rows_that_use_it(halves: tuple[str, str]) -> None:
    """The traditional half from a store that returns raw r||s for ECDSA: the ECDSA variant fails, the
    composite signer refuses to hand out the signature; the Ed25519 variant over the same store passes."""
    broken = "brokenecdsa:" + halves[1].split(":", 1)[1]
    target = Target(composite_uri(None, halves[0], broken), plugins=PLUGINS, page=1,
                    specs=[V.MLDSA44_ED25519_SHA512, V.MLDSA44_ECDSA_P256_SHA256])
    report = run_conformance(target)
    assert not report.ok
    failed = {(r.spec, r.check) for r in report.failures}
    ecdsa = V.MLDSA44_ECDSA_P256_SHA256.value
    assert (ecdsa, "sign-verify") in failed and (ecdsa, "threads") in failed
    assert "the traditional half" in rows_of(report)[(ecdsa, "sign-verify")].detail
    assert not any(spec == V.MLDSA44_ED25519_SHA512.value for spec, _ in failed), report.to_markdown()


def test_a_leaky_half_fails_the_secrets_row(halves: tuple[str, str]) -> None:
    """A half that logs its password: the store's secrets row fails, naming where."""
    leaky = "leaky:" + halves[1].split(":", 1)[1]
    target = Target(composite_uri(None, halves[0], leaky), plugins=PLUGINS, page=1, specs=[V.MLDSA44_ED25519_SHA512])
    report = run_conformance(target)
    secrets_row = rows_of(report)[("store", "secrets")]
    assert secrets_row.status == "fail" and PASSWORD not in secrets_row.detail, secrets_row


def test_openbao_mldsa_with_softhsm_traditional_halves(openbao_target: Any, softhsm_target: Any) -> None:
    """The halves in two real services: ML-DSA in OpenBao Transit, Ed25519 / P-256 on SoftHSM2."""
    uri = composite_uri(None, openbao_target.uri, softhsm_target.uri)
    target = Target(
        uri, name="composite (OpenBao + SoftHSM2)", page=2,
        specs=[V.MLDSA65_ED25519_SHA512, V.MLDSA44_ECDSA_P256_SHA256],
        bad_credentials_uri=composite_uri(None, openbao_target.uri, softhsm_target.bad_credentials_uri),
        unreachable_uri=composite_uri(None, openbao_target.unreachable_uri, softhsm_target.uri),
        secrets=[*openbao_target.secrets, *softhsm_target.secrets],
        env={**openbao_target.env, **softhsm_target.env},
    )
    report = run_conformance(target)
    assert report.ok, report.to_markdown()
    rows = rows_of(report)
    for variant in target.specs or []:
        assert rows[(variant.value, "sign-verify")].status == "pass"
    for check in ("bad-credentials", "unreachable", "secrets", "listing"):
        assert rows[("store", check)].status == "pass", rows[("store", check)]


# -- what the harness does not judge: composite-specific store behaviour -----------------


def test_bad_credentials_in_one_half(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with signers.open_store(store_uri) as store:
        signer = store.create_key("k1", V.MLDSA65_ED25519_SHA512)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    with pytest.raises(AuthenticationFailed):
        signers.open(signer.uri)


def test_failed_create_leaves_neither_store_changed(store_uri: str) -> None:
    with signers.open_store(store_uri) as store:
        assert isinstance(store, CompositeKeyStore)
        store.create_key("k1", V.MLDSA65_ED25519_SHA512)
        classical = store._store("classical")
        classical.delete_key("k1")
        classical.create_key("k2", "Ed25519")
        pq = store._store("mldsa")
        with pytest.raises(signers.KeyExists):
            store.create_key("k2", V.MLDSA65_ED25519_SHA512)  # ML-DSA made, Ed25519 exists: rolled back
        assert sorted(i.name for i in pq.list_keys()) == ["k1"]
