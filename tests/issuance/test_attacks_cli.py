"""The issuance CLI under hostile input: NaN/inf/negative durations, whole tokens given to
`revoke`, unpinned revocation lists, a 100k-character subject, audit checkpoint bounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from signers.audit import AuditedSigner, open_audit_log
from signers.cli import main
from signers.jose import JWKS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e400", "soon"])
def test_durations_refuse_non_finite_and_negative(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                                  tmp_path: Path, value: str) -> None:
    uri = keys["ed25519"].uri
    jwks_file = tmp_path / "jwks.json"
    JWKS.of(keys["ed25519"]).write(jwks_file)
    _, out, _ = run(capsys, "--json", "token", "sign", uri, "--ttl", "1")
    token = json.loads(out)["token"]
    for argv in (("token", "verify", token, "--jwks", str(jwks_file), f"--leeway={value}"),
                 ("passport", "verify", token, "--jwks", str(jwks_file), f"--leeway={value}"),
                 ("token", "sign", uri, f"--ttl={value}"),
                 ("revoke", "--db", str(tmp_path / "r.db"), "--list", f"--ttl={value}")):
        code = main(list(argv))  # main() turns argparse's exit into its return code
        _, err = capsys.readouterr()
        assert code == 2, argv
        # Usage noise above the error line is the CLI's (sub-parsers print usage); ours is the last line.
        last = err.strip().splitlines()[-1]
        assert "Traceback" not in err and ("must be" in last or "not a number" in last), err


def test_revoking_a_whole_token(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], tmp_path: Path) -> None:
    uri, db = keys["ed25519"].uri, tmp_path / "revocations.db"
    jwks_file = tmp_path / "jwks.json"
    JWKS.of(keys["ed25519"]).write(jwks_file)
    _, out, _ = run(capsys, "--json", "token", "sign", uri, "--ttl", "600")
    token, jti = json.loads(out)["token"], json.loads(out)["claims"]["jti"]
    code, _, err = run(capsys, "revoke", token, "--db", str(db))
    assert code == 2 and "pass its jti" in err
    code, out, _ = run(capsys, "--json", "revoke", "--db", str(db), "--list")
    assert json.loads(out)["revocations"] == []  # nothing stored that matches nothing
    code, out, _ = run(capsys, "revoke", token, "--db", str(db), "--jwks", str(jwks_file), "--reason", "leaked")
    assert code == 0 and f"revoked jti {jti} (leaked)" in out
    code, _, err = run(capsys, "token", "verify", token, "--jwks", str(jwks_file), "--revocations", str(db))
    assert code == 1 and "TokenRevoked" in err
    other = tmp_path / "other.json"
    JWKS.of(keys["p256"]).write(other)
    _, out, _ = run(capsys, "--json", "token", "sign", uri, "--ttl", "600")
    code, _, err = run(capsys, "revoke", json.loads(out)["token"], "--db", str(db), "--jwks", str(other))
    assert code == 1 and "TokenInvalid" in err  # not signed by the keys given: not ours, nothing stored


def test_revocation_list_issuer_is_pinned(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                          tmp_path: Path) -> None:
    uri, db, list_file = keys["ed25519"].uri, tmp_path / "r.db", tmp_path / "list.jwt"
    jwks_file = tmp_path / "jwks.json"
    JWKS.of(keys["ed25519"]).write(jwks_file)
    run(capsys, "revoke", "--db", str(db), "--sign-list", uri, "--iss", "evil", "--out", str(list_file))
    _, out, _ = run(capsys, "--json", "token", "sign", uri, "--ttl", "600")
    token = json.loads(out)["token"]
    common = ("token", "verify", token, "--jwks", str(jwks_file), "--revocation-list", str(list_file))
    code, _, err = run(capsys, *common)
    assert code == 2 and "--list-iss" in err
    code, _, err = run(capsys, *common, "--list-iss", "ca")
    assert code == 1 and "issuer mismatch" in err
    assert run(capsys, *common, "--list-iss", "evil")[0] == 0
    code, _, err = run(capsys, *common, "--list-iss", "evil", "--min-list-number", "5")
    assert code == 1 and "older than the required list 5" in err


def test_a_huge_subject_is_one_line(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], tmp_path: Path) -> None:
    agent_jwk = tmp_path / "agent.jwk"
    agent_jwk.write_text(json.dumps(keys["agent"].public_key.to_jwk()))
    code, _, err = run(capsys, "passport", "issue", keys["ed25519"].uri, "--sub", "x" * 100_000, "--name", "n",
                       "--agent-key", str(agent_jwk), "--code-hash", "0" * 64, "--stage", "dev",
                       "--trust-score", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1 and len(err) < 400


def test_audit_verify_bounds_unchecked_records(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                               tmp_path: Path) -> None:
    log_path, jwks_file = tmp_path / "audit.jsonl", tmp_path / "jwks.json"
    JWKS.of(keys["ed25519"]).write(jwks_file)
    with open_audit_log(log_path) as log:
        audited = AuditedSigner(keys["ed25519"], log, checkpoint_every=2)
        for i in range(3):
            audited.sign(b"%d" % i)
    assert run(capsys, "audit", "verify", str(log_path), "--jwks", str(jwks_file))[0] == 0
    code, _, err = run(capsys, "audit", "verify", str(log_path), "--jwks", str(jwks_file), "--require-checkpoint-at-end")
    assert code == 1 and "follow the last verified checkpoint" in err
    assert run(capsys, "audit", "verify", str(log_path), "--jwks", str(jwks_file), "--max-unchecked", "1")[0] == 0
    code, _, err = run(capsys, "audit", "verify", str(log_path), "--require-checkpoint-at-end")
    assert code == 2 and "need the keys" in err


def test_jwks_can_name_ed25519_as_rfc9864(capsys: pytest.CaptureFixture[str], keys: dict[str, Any]) -> None:
    code, out, _ = run(capsys, "jwks", keys["ed25519"].uri, "--alg", "Ed25519")
    assert code == 0 and json.loads(out)["keys"][0]["alg"] == "Ed25519"


def test_missing_and_binary_input_files_are_usage_errors(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                                         tmp_path: Path) -> None:
    jwks_file, binary = tmp_path / "jwks.json", tmp_path / "binary.bin"
    JWKS.of(keys["ed25519"]).write(jwks_file)
    binary.write_bytes(bytes(range(256)))
    cases = [
        (("token", "verify", str(tmp_path / "missing.jwt"), "--jwks", str(jwks_file)), "does not exist"),
        (("token", "verify", str(binary), "--jwks", str(jwks_file)), "not UTF-8"),
        (("token", "verify", "a.b.c", "--jwks", str(binary)), "not UTF-8"),
        (("token", "sign", keys["ed25519"].uri, "--claims", f"@{tmp_path / 'none.json'}"), "does not exist"),
        (("passport", "issue", keys["ed25519"].uri, "--sub", "s", "--name", "n", "--agent-key", str(binary),
          "--code-file", str(tmp_path / "no-code"), "--stage", "dev", "--trust-score", "1"), "does not exist"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
