"""The conformance harness judged on the file back end (must pass everything) and on
deliberately broken back ends (must fail exactly the matching checks, naming them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conformance import CHECKS, STORE_CHECKS, Target, run_conformance
from conformance.report import Report
from signers.algorithms import KeySpec
from tests.conformance.broken_backend import PLUGINS
from tests.fixtures.files import FILE_PASSWORD

WRONG = "KEYPLANE_TEST_WRONG_PASSWORD"
TWO_SPECS = [KeySpec.P256, KeySpec.ED25519]


@pytest.fixture
def bad_uri(file_store_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(WRONG, "not the password")
    return file_store_uri.replace("env:KEYPLANE_TEST_PASSWORD", f"env:{WRONG}")


def as_scheme(uri: str, scheme: str) -> str:
    return scheme + ":" + uri.split(":", 1)[1]


def failed(report: Report) -> set[tuple[str, str]]:
    return {(r.spec, r.check) for r in report.failures}


def assert_file_report_passes(data: dict, *, specs: list[KeySpec] | None = None,
                              unreachable_reason: str = "no unreachable URI given") -> None:
    rows = {(r["spec"], r["check"]): r for r in data["rows"]}
    specs = specs or list(KeySpec)
    assert len(rows) == len(specs) * len(CHECKS) + len(STORE_CHECKS)
    for spec in specs:
        for check in CHECKS:
            row = rows[(spec.value, check)]
            if check == "deterministic" and spec is not KeySpec.ED25519:
                assert row["status"] == "not-supported" and "not claimed deterministic" in row["detail"], row
            else:
                assert row["status"] == "pass", row
    for check in ("unknown-key", "bad-credentials", "secrets", "listing", "replaced-key", "nonce-reuse"):
        assert rows[("store", check)]["status"] == "pass", rows[("store", check)]
    for check in ("import", "sign-digest", "sign-many"):  # what the file store implements: each tested
        assert rows[("store", check)]["status"] == "pass", rows[("store", check)]
    for check in ("rotate", "disable", "native-async"):  # what it does not: named, never failed
        assert rows[("store", check)] | {"seconds": 0} == {"spec": "store", "check": check, "status": "not-supported",
                                                          "detail": "not implemented", "seconds": 0}
    unreachable = rows[("store", "unreachable")]
    assert unreachable["status"] == "not-supported" and unreachable_reason in unreachable["detail"]
    assert data["ok"] is True


def test_file_backend_passes_every_check(file_store_uri: str, bad_uri: str, reports_dir: Path) -> None:
    target = Target(file_store_uri, name="file", bad_credentials_uri=bad_uri, secrets=[FILE_PASSWORD])
    report = run_conformance(target)
    md, js = report.write(reports_dir / "conformance-file")
    assert report.ok, report.to_markdown()
    assert_file_report_passes(json.loads(js.read_text()))
    assert "| RSA-4096 | pass |" in md.read_text()
    store_dir = Path(file_store_uri.split(":", 1)[1].split("?")[0])
    assert [p.name for p in store_dir.glob("*.pem")] == []  # every key the run made is deleted again


def test_cli_run_in_a_subprocess_writes_reports(file_store_uri: str, bad_uri: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "signers.cli", "conformance", "run", file_store_uri, "--spec", "ML-DSA-87",
         "--spec", "P-256", "--bad-credentials-uri", bad_uri, "--secret-env", "KEYPLANE_TEST_PASSWORD",
         "--json", f"{out}.json", "--markdown", f"{out}.md", "--junit", f"{out}.xml"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and "ML-DSA-87" in result.stdout  # the matrix table
    assert FILE_PASSWORD not in result.stdout + result.stderr
    assert_file_report_passes(json.loads(Path(f"{out}.json").read_text()), specs=[KeySpec.ML_DSA_87, KeySpec.P256])
    assert "## Key spec x check" in Path(f"{out}.md").read_text()
    suite = ET.parse(f"{out}.xml").getroot().find("testsuite")
    # skipped: unreachable, prehash, the 3 protocols the file store does not implement, 2 x deterministic
    assert suite is not None and suite.get("failures") == "0" and suite.get("skipped") == "7"
    assert "RSA-2048" not in Path(f"{out}.md").read_text()  # --spec limits the run


def test_pytest_pyargs_form(file_store_uri: str, bad_uri: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--pyargs", "conformance",
         f"--keyplane-store={file_store_uri}", f"--keyplane-bad-credentials-uri={bad_uri}",
         "--keyplane-spec=Ed25519", "--keyplane-spec=P-256", f"--keyplane-report={tmp_path / 'pyargs'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "47 passed, 6 skipped" in result.stdout, result.stdout
    assert "no unreachable URI given" in result.stdout  # the skip says why
    assert json.loads((tmp_path / "pyargs.json").read_text())["ok"] is True


def test_pytest_pyargs_reports_a_failure_per_item(file_store_uri: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs", "conformance",
         f"--keyplane-store={as_scheme(file_store_uri, 'brokenecdsa')}", "--keyplane-spec=P-256",
         f"--keyplane-plugin=brokenecdsa={PLUGINS['brokenecdsa']}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failed_items = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert any("test_conformance[P-256-signature-format]" in line for line in failed_items), result.stdout
    assert len(failed_items) == 7, result.stdout  # the five signature rows, algorithms and sign-many


def test_without_a_store_the_pytest_form_skips_with_reason(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--pyargs", "conformance"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "need --keyplane-store" in result.stdout


def test_raw_ecdsa_signatures_fail_exactly_the_signature_checks(file_store_uri: str) -> None:
    target = Target(as_scheme(file_store_uri, "brokenecdsa"), specs=TWO_SPECS, plugins=PLUGINS)
    report = run_conformance(target)
    assert failed(report) == {
        ("P-256", "sign-verify"), ("P-256", "signature-format"), ("P-256", "negatives"), ("P-256", "algorithms"),
        ("P-256", "threads"), ("P-256", "async"), ("store", "sign-many"),  # the batch is signed raw too
    }, report.to_markdown()
    assert "not a DER Ecdsa-Sig-Value" in report.row("P-256", "signature-format").detail  # type: ignore[union-attr]
    assert "P-256 / signature-format: **FAIL**" in report.to_markdown()


def test_a_password_logged_at_debug_fails_the_secrets_check(file_store_uri: str) -> None:
    target = Target(as_scheme(file_store_uri, "leaky"), specs=[KeySpec.ED25519], plugins=PLUGINS)
    report = run_conformance(target)  # the password is found through the URI's password-source
    assert failed(report) == {("store", "secrets")}, report.to_markdown()
    detail = report.row("store", "secrets").detail  # type: ignore[union-attr]
    assert "tests.conformance.broken_backend:DEBUG" in detail and "<secret>" in detail
    assert "child process" in detail  # the child's logs are watched too
    assert FILE_PASSWORD not in report.to_markdown() + report.to_json() + report.to_junit()


def test_a_segfault_in_the_threaded_check_is_a_fail_row_naming_the_signal(file_store_uri: str) -> None:
    target = Target(as_scheme(file_store_uri, "crashing"), specs=TWO_SPECS, plugins=PLUGINS)
    report = run_conformance(target)
    assert failed(report) == {("P-256", "threads"), ("P-256", "async"), ("P-256", "event-loop")}, report.to_markdown()
    assert "SIGSEGV" in report.row("P-256", "threads").detail  # type: ignore[union-attr]
    assert report.row("Ed25519", "threads").status == "pass"  # type: ignore[union-attr]  # a fresh child went on
    assert report.row("P-256", "key-id").status == "pass"  # type: ignore[union-attr]


def test_a_hang_is_a_fail_row_after_a_deadline(file_store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance import runner

    monkeypatch.setattr(runner, "CHECK_TIMEOUT_FLOOR", 8.0)
    monkeypatch.setattr(runner, "CHILD_TIMEOUT_FLOOR", 5.0)
    target = Target(as_scheme(file_store_uri, "hanging"), specs=TWO_SPECS, plugins=PLUGINS, timeout=0.1, page=2)
    report = run_conformance(target)
    assert failed(report) == {("store", "unknown-key"), ("P-256", "threads"), ("P-256", "async"),
                              ("P-256", "event-loop")}, report.to_markdown()
    assert "hung" in report.row("store", "unknown-key").detail  # type: ignore[union-attr]
    assert "worker process killed" in report.row("store", "unknown-key").detail  # type: ignore[union-attr]
    assert report.row("store", "bad-credentials") is not None  # a fresh worker went on after the hang
    assert "hung" in report.row("P-256", "threads").detail  # type: ignore[union-attr]
    assert report.row("Ed25519", "threads").status == "pass"  # type: ignore[union-attr]


def test_unclaimed_specs_must_be_refused_with_algorithm_not_supported(file_store_uri: str) -> None:
    narrow = run_conformance(Target(as_scheme(file_store_uri, "narrow"), specs=TWO_SPECS, plugins=PLUGINS))
    assert narrow.ok, narrow.to_markdown()
    create = narrow.row("P-256", "create")
    assert create is not None and create.status == "not-supported"
    assert "narrow store offers Ed25519 only" in create.detail  # the back end's own message
    assert {r.status for r in narrow.rows if r.spec == "P-256"} == {"not-supported"}

    over = run_conformance(Target(as_scheme(file_store_uri, "overclaiming"), specs=TWO_SPECS, plugins=PLUGINS))
    assert failed(over) == {("P-256", "create")}, over.to_markdown()
    assert "expected AlgorithmNotSupported" in over.row("P-256", "create").detail  # type: ignore[union-attr]


def test_a_documented_size_limit_on_the_large_message_is_not_supported(file_store_uri: str) -> None:
    limited = run_conformance(Target(as_scheme(file_store_uri, "sizelimited"), specs=[KeySpec.ED25519],
                                     plugins=PLUGINS))
    assert limited.ok, limited.to_markdown()
    row = limited.row("Ed25519", "sign-verify")
    assert row is not None and row.status == "not-supported", row
    assert "1 MiB refused: AlgorithmNotSupported: this service signs at most 65536 bytes" in row.detail
    assert "4097 B" in row.detail  # and says what did verify

    tiny = run_conformance(Target(as_scheme(file_store_uri, "tinylimit"), specs=[KeySpec.ED25519], plugins=PLUGINS))
    row = tiny.row("Ed25519", "sign-verify")
    assert row is not None and row.status == "fail" and "32 B: sign raised AlgorithmNotSupported" in row.detail


def test_stubbed_specs_are_reported_not_run(file_store_uri: str) -> None:
    reason = "judged with botocore Stubber in tests/aws"
    report = run_conformance(Target(file_store_uri, specs=TWO_SPECS, stubbed={KeySpec.P256: reason}))
    p256 = [r for r in report.rows if r.spec == "P-256"]
    assert {r.status for r in p256} == {"stubbed"} and all(r.detail == reason for r in p256)
    assert report.row("Ed25519", "sign-verify").status == "pass"  # type: ignore[union-attr]


def test_unreachable_must_be_backend_unavailable_within_the_timeout(file_store_uri: str, tmp_path: Path) -> None:
    unreachable = f"{tmp_path}/unreachable"
    fast = Target(as_scheme(file_store_uri, "fastunreachable"), specs=[KeySpec.ED25519], plugins=PLUGINS,
                  unreachable_uri=f"fastunreachable:{unreachable}", timeout=0.2)
    row = run_conformance(fast).row("store", "unreachable")
    assert row is not None and row.status == "pass", row

    slow = Target(as_scheme(file_store_uri, "slowunreachable"), specs=[KeySpec.ED25519], plugins=PLUGINS,
                  unreachable_uri=f"slowunreachable:{unreachable}", timeout=0.2)
    row = run_conformance(slow).row("store", "unreachable")
    assert row is not None and row.status == "fail" and "only after" in row.detail, row


def test_missing_inputs_are_not_supported_never_silent(file_store_uri: str) -> None:
    report = run_conformance(Target(file_store_uri.split("?")[0], specs=[KeySpec.ED25519],
                                    env={"KEYPLANE_PASSWORD": FILE_PASSWORD}))
    rows = {r.check: r for r in report.rows if r.spec == "store"}
    assert rows["bad-credentials"].status == "not-supported" and "no bad-credentials URI" in rows["bad-credentials"].detail
    assert rows["unreachable"].status == "not-supported"
    assert rows["secrets"].status == "not-supported" and "no secrets given" in rows["secrets"].detail
    assert report.ok


def test_an_unopenable_store_fails_every_row(tmp_path: Path) -> None:
    report = run_conformance(Target(f"nosuchscheme:{tmp_path}", specs=[KeySpec.ED25519]))
    assert not report.ok
    assert all(r.status == "fail" for r in report.rows if r.check not in ("secrets", "nonce-reuse"))
    assert "no back end for URI scheme" in report.failures[0].detail


def test_report_renderings_round_trip(file_store_uri: str, tmp_path: Path) -> None:
    report = run_conformance(Target(file_store_uri, specs=[KeySpec.ED25519]))
    data = json.loads(report.to_json())
    assert [(r["spec"], r["check"], r["status"]) for r in data["rows"]] == [
        (r.spec, r.check, r.status) for r in report.rows
    ]
    cases = ET.fromstring(report.to_junit()).findall("./testsuite/testcase")
    assert len(cases) == len(report.rows)
    md, js = report.write(tmp_path / "sub" / "out")
    assert md.name == "out.md" and js.name == "out.json" and md.exists() and js.exists()


def test_bench_cli_prints_json(file_store_uri: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "signers.cli", "--json", "bench", file_store_uri, "--spec", "Ed25519",
         "--seconds", "0.2", "--threads", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [r["mode"] for r in results] == ["single", "2 threads"]
    assert all(r["signatures"] > 0 and r["errors"] == 0 and r["p99_ms"] >= r["p50_ms"] for r in results)


def test_bench_cli_prints_a_table(file_store_uri: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "signers.cli", "bench", file_store_uri, "--spec", "P-256", "--seconds", "0.1",
         "--threads", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "signatures/s" in result.stdout and "2 threads" in result.stdout


def test_command_modules_import_nothing_heavy() -> None:
    code = ("import sys, conformance.cli, conformance.bench_cli; "
            "heavy = [m for m in ('rich', 'conformance.runner', 'cryptography') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
