"""Each round-2 row fails on the back end with exactly its defect, naming it, and passes otherwise.

The back ends are in broken_rows.py (the file store with one planted defect each); the
assertions compare the whole set of failed rows, so a row failing for someone else's
defect is caught as well as a row that lets its own through.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import signers
from conformance import CHECKS, STORE_CHECKS, Target, run_conformance
from conformance.report import Report
from signers.algorithms import KeySpec
from tests.conformance.broken_backend import PLUGINS
from tests.conformance.broken_rows import ROW_PLUGINS

ALL = {**PLUGINS, **ROW_PLUGINS}
P256, ED = KeySpec.P256, KeySpec.ED25519


def run(uri: str, scheme: str, specs: list[KeySpec], **options: object) -> Report:
    target = Target(scheme + ":" + uri.split(":", 1)[1], specs=specs, plugins=ALL, **options)  # type: ignore[arg-type]
    return run_conformance(target)


def failed(report: Report) -> set[tuple[str, str]]:
    return {(r.spec, r.check) for r in report.failures}


def detail(report: Report, spec: str, check: str) -> str:
    row = report.row(spec, check)
    assert row is not None
    return row.detail


def test_a_fixed_ecdsa_nonce_fails_nonce_reuse_only(file_store_uri: str) -> None:
    report = run(file_store_uri, "noncereuse", [P256, ED])
    assert failed(report) == {("store", "nonce-reuse")}, report.to_markdown()
    assert "private key is recoverable" in detail(report, "store", "nonce-reuse")
    assert "P-256" in detail(report, "store", "nonce-reuse")


def test_a_false_deterministic_claim_fails_deterministic_only(file_store_uri: str) -> None:
    report = run(file_store_uri, "falsedet", [P256, ED])
    assert failed(report) == {("P-256", "deterministic")}, report.to_markdown()
    assert "claims it deterministic" in detail(report, "P-256", "deterministic")
    assert report.row("Ed25519", "deterministic").status == "pass"  # type: ignore[union-attr]


def test_a_duplicate_create_without_key_exists_fails_duplicate_create_only(file_store_uri: str) -> None:
    report = run(file_store_uri, "silentduplicate", [P256, ED])
    assert failed(report) == {("P-256", "duplicate-create"), ("Ed25519", "duplicate-create")}, report.to_markdown()
    assert "succeeded (expected KeyExists)" in detail(report, "P-256", "duplicate-create")


def test_a_create_that_replaces_the_key_says_so(file_store_uri: str) -> None:
    report = run(file_store_uri, "overwriting", [ED], page=2)
    assert ("Ed25519", "duplicate-create") in failed(report), report.to_markdown()
    assert "the original key was replaced" in detail(report, "Ed25519", "duplicate-create")


def test_a_prefix_matching_delete_fails_delete_only(file_store_uri: str) -> None:
    report = run(file_store_uri, "greedydelete", [P256, ED])
    assert failed(report) == {("P-256", "delete"), ("Ed25519", "delete")}, report.to_markdown()
    assert "sibling" in detail(report, "P-256", "delete")


def test_delete_that_disables_passes_when_capabilities_say_so(file_store_uri: str) -> None:
    honest = run(file_store_uri, "disablingdelete", [ED])
    assert honest.ok, honest.to_markdown()
    assert "KeyDisabled (deletion disabled)" in detail(honest, "Ed25519", "delete")
    claims = run(file_store_uri, "claimsimmediate", [ED])
    assert failed(claims) == {("Ed25519", "delete")}, claims.to_markdown()
    assert "Capabilities.deletion is immediate" in detail(claims, "Ed25519", "delete")


def test_a_signer_using_another_hash_fails_algorithms_only(file_store_uri: str) -> None:
    report = run(file_store_uri, "wronghash", [KeySpec.RSA2048])
    assert failed(report) == {("RSA-2048", "algorithms")}, report.to_markdown()
    text = detail(report, "RSA-2048", "algorithms")
    assert "PS384: the signature does not verify under PS384" in text and "verifies as PS256" in text


def test_a_forgotten_next_page_fails_listing_only(file_store_uri: str) -> None:
    report = run(file_store_uri, "forgetfulpaging", [P256, ED])
    assert failed(report) == {("store", "listing")}, report.to_markdown()
    assert "not listed" in detail(report, "store", "listing")


def test_a_password_in_key_info_uri_fails_listing_and_secrets(file_store_uri: str) -> None:
    report = run(file_store_uri, "secretlisting", [ED])
    assert failed(report) == {("store", "listing"), ("store", "secrets")}, report.to_markdown()
    assert "contains a secret" in detail(report, "store", "listing")
    assert "KeyInfo" in detail(report, "store", "secrets")


def test_a_blocking_sign_async_fails_event_loop_only(file_store_uri: str) -> None:
    report = run(file_store_uri, "blockingasync", [ED])
    assert failed(report) == {("Ed25519", "event-loop")}, report.to_markdown()
    assert "sign_async returned without ever yielding to the event loop" in detail(report, "Ed25519", "event-loop")


def test_a_sign_async_that_yields_then_blocks_fails_event_loop_by_its_stall(file_store_uri: str) -> None:
    report = run(file_store_uri, "yieldthenblock", [ED], page=2)
    assert failed(report) == {("Ed25519", "event-loop")}, report.to_markdown()
    text = detail(report, "Ed25519", "event-loop")
    assert "the event loop stalled for" in text and "the control (sign in worker threads) stalled" in text, text


def test_a_slow_device_passes_with_a_workload_that_fits(file_store_uri: str) -> None:
    report = run(file_store_uri, "slowdevice", [ED])
    assert report.ok, report.to_markdown()
    threads = detail(report, "Ed25519", "threads")
    per_thread = int(threads.split("8 threads x ")[1].split(":")[0])
    assert 5 <= per_thread <= 12 and "latency 5" in threads, threads  # ~50 ms a signature: ~10 each, not 200


def test_a_missing_key_id_is_one_contract_row(file_store_uri: str) -> None:
    report = run(file_store_uri, "nokeyid", [ED])
    contract = {r.check for r in report.failures if r.check.startswith("contract:")}
    assert contract == {"contract:signer.key_id"}, report.to_markdown()
    assert "signer has no attribute 'key_id'" in detail(report, "store", "contract:signer.key_id")
    others = [r for r in report.failures if not r.check.startswith("contract:")]
    assert others and all("not run: the store breaks the contract" in r.detail for r in others), [
        r for r in others if "not run" not in r.detail]


def test_an_abort_inside_create_key_is_a_fail_row_naming_sigabrt(file_store_uri: str, tmp_path: Path) -> None:
    report = run(file_store_uri, "aborting", [P256, ED])
    md, js = report.write(tmp_path / "aborting")
    data = json.loads(js.read_text())
    assert len(data["rows"]) == 2 * len(CHECKS) + len(STORE_CHECKS)  # every cell present
    assert "SIGABRT" in detail(report, "P-256", "create") and "in P-256 create" in detail(report, "P-256", "create")
    ed = {r.check: r.status for r in report.rows if r.spec == "Ed25519"}
    assert {c for c, s in ed.items() if s == "fail"} <= {"public-key", "list-keys"}, ed  # the listing uses P-256
    assert ed["sign-verify"] == ed["threads"] == ed["delete"] == "pass"
    assert "SIGABRT" in md.read_text()


def test_a_signer_bound_to_a_name_fails_replaced_key(file_store_uri: str) -> None:
    report = run(file_store_uri, "namebound", [ED], page=2)
    assert failed(report) == {("store", "replaced-key")}, report.to_markdown()
    assert "signed with the NEW key" in detail(report, "store", "replaced-key")


def test_every_protocol_row_passes_when_implemented_correctly(file_store_uri: str) -> None:
    report = run(file_store_uri, "allprotocols", [P256, ED], page=2)
    assert report.ok, report.to_markdown()
    for check in ("rotate", "disable", "import", "sign-digest", "sign-many", "native-async"):
        assert report.row("store", check).status == "pass", report.row("store", check)  # type: ignore[union-attr]


def test_protocol_rows_follow_what_the_store_implements(file_store_uri: str) -> None:
    """Each Protocol the store satisfies is tested (pass); each it does not is 'not implemented', never a fail."""
    report = run_conformance(Target(file_store_uri, specs=[ED], page=2))
    assert report.ok
    with signers.open_store(file_store_uri) as store:
        implemented = signers.capabilities_of(store).protocols
    missing = {"rotate", "disable", "native-async"}
    assert not missing & implemented  # the file store leaves these out, so their rows show the not-implemented form
    for check in ("rotate", "disable", "import", "sign-digest", "sign-many", "native-async"):
        row = report.row("store", check)
        assert row is not None
        if check in implemented:
            assert row.status == "pass", row
        else:
            assert row.status == "not-supported" and row.detail == "not implemented", row


@pytest.mark.parametrize(("scheme", "check", "words"), [
    ("doublehashdigest", "sign-digest", "does not verify as a signature of the message"),
    ("reversedbatch", "sign-many", "order not preserved"),
    ("stalerotation", "rotate", "same public key"),
    ("stillsigns", "disable", "still signs"),
])
def test_a_broken_protocol_fails_its_row_only(file_store_uri: str, scheme: str, check: str, words: str) -> None:
    report = run(file_store_uri, scheme, [P256], page=2)
    assert failed(report) == {("store", check)}, report.to_markdown()
    assert words in detail(report, "store", check)


def test_secrets_row_names_its_sources_and_warns_without_any(file_store_uri: str) -> None:
    named = run_conformance(Target(file_store_uri, specs=[ED], page=2))
    text = detail(named, "store", "secrets")
    assert "password-source=env:KEYPLANE_TEST_PASSWORD (store URI)" in text
    assert "correct horse" not in named.to_json()
    bare = run_conformance(Target(file_store_uri.split("?")[0], specs=[ED], page=2,
                                  env={"KEYPLANE_PASSWORD": "correct horse battery staple"}))
    row = bare.row("store", "secrets")
    assert row is not None and row.status == "not-supported" and row.detail.startswith("WARNING:")


def test_the_pytest_form_survives_an_abort_and_writes_its_report(file_store_uri: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    uri = "aborting:" + file_store_uri.split(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs", "conformance",
         f"--keyplane-store={uri}", "--keyplane-spec=P-256", "--keyplane-spec=Ed25519", "--keyplane-page=2",
         f"--keyplane-plugin=aborting={ROW_PLUGINS['aborting']}", f"--keyplane-report={tmp_path / 'aborting'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failed_items = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert any("[P-256-create]" in line for line in failed_items), result.stdout
    assert "P-256 / create: the worker process was killed by SIGABRT in P-256 create" in result.stdout
    assert not any("[Ed25519-sign-verify]" in line for line in failed_items), result.stdout
    data = json.loads((tmp_path / "aborting.json").read_text())
    assert len(data["rows"]) == 2 * len(CHECKS) + len(STORE_CHECKS)
