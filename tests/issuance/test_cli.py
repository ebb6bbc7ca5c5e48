"""``keyplane token|passport|revoke|jwks|audit`` and the issuance part of ``keyplane demo``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from signers.cli import main
from signers.jose import JWKS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def issuer_uri(keys: dict[str, Any]) -> str:
    return str(keys["mldsa65"].uri)


def test_jwks_token_sign_and_verify(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], tmp_path: Path) -> None:
    uri = keys["p256"].uri
    jwks_file = tmp_path / "jwks.json"
    code, out, _ = run(capsys, "jwks", uri, keys["mldsa65"].uri, "--out", str(jwks_file))
    assert code == 0 and {k["kid"] for k in json.loads(out)["keys"]} == {keys["p256"].key_id, keys["mldsa65"].key_id}
    assert len(JWKS.load(jwks_file)) == 2

    code, out, _ = run(capsys, "--json", "token", "sign", uri, "--sub", "bob", "--aud", "svc", "--ttl", "60",
                       "--claims", '{"role": "reader"}')
    signed = json.loads(out)
    assert code == 0 and signed["claims"]["role"] == "reader"
    token = signed["token"]
    code, out, _ = run(capsys, "--json", "token", "verify", token, "--jwks", str(jwks_file), "--aud", "svc")
    assert code == 0 and json.loads(out)["claims"]["sub"] == "bob"
    token_file = tmp_path / "token.jwt"
    token_file.write_text(token + "\n")
    code, out, _ = run(capsys, "token", "verify", str(token_file), "--key", uri, "--aud", "svc")
    assert code == 0 and out.startswith("valid: ES256 token")


def test_refusals_exit_1_with_one_line(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], tmp_path: Path) -> None:
    uri = keys["ed25519"].uri
    jwks_file = tmp_path / "jwks.json"
    JWKS.of(keys["ed25519"]).write(jwks_file)
    _, token, _ = run(capsys, "token", "sign", uri, "--aud", "svc", "--ttl", "60")
    token = token.strip()
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    cases = {
        "audience mismatch": [token, "--jwks", str(jwks_file), "--aud", "other"],
        "signature does not verify": [tampered, "--jwks", str(jwks_file), "--aud", "svc"],
        "not in the trusted key set": [token, "--key", keys["p256"].uri, "--aud", "svc"],
        "malformed token": ["garbage", "--jwks", str(jwks_file)],
    }
    for reason, argv in cases.items():
        code, out, err = run(capsys, "token", "verify", *argv)
        assert code == 1, reason
        assert out == "" and err.count("\n") == 1 and reason in err and err.startswith("keyplane: Token")


def test_revoke_then_verify_fails_with_revoked(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                               tmp_path: Path) -> None:
    uri = keys["ed25519"].uri
    jwks_file, db = tmp_path / "jwks.json", tmp_path / "revocations.db"
    JWKS.of(keys["ed25519"]).write(jwks_file)
    _, out, _ = run(capsys, "--json", "token", "sign", uri, "--ttl", "60")
    token, jti = json.loads(out)["token"], json.loads(out)["claims"]["jti"]
    code, out, _ = run(capsys, "revoke", jti, "--db", str(db), "--reason", "compromised")
    assert code == 0 and f"revoked jti {jti} (compromised)" in out
    code, out, err = run(capsys, "token", "verify", token, "--jwks", str(jwks_file), "--revocations", str(db))
    assert code == 1 and "TokenRevoked" in err and "revoked (compromised" in err
    code, out, _ = run(capsys, "--json", "revoke", "--db", str(db), "--list")
    assert code == 0 and json.loads(out)["revocations"][0]["id"] == jti
    # The signed list, for verifiers without the database.
    list_file = tmp_path / "revoked.jwt"
    code, _, _ = run(capsys, "revoke", "--db", str(db), "--sign-list", uri, "--iss", "me", "--out", str(list_file))
    assert code == 0
    code, _, err = run(capsys, "token", "verify", token, "--jwks", str(jwks_file), "--revocation-list", str(list_file),
                        "--list-iss", "me")
    assert code == 1 and "TokenRevoked" in err
    code, _, err = run(capsys, "revoke", "--db", str(db))
    assert code == 2 and "give an id" in err
    code, _, err = run(capsys, "token", "verify", token, "--jwks", str(jwks_file), "--revocations", str(tmp_path / "no.db"))
    assert code == 2 and "does not exist" in err


def test_passport_issue_and_verify(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], issuer_uri: str,
                                   tmp_path: Path) -> None:
    jwks_file = tmp_path / "issuer.json"
    run(capsys, "jwks", issuer_uri, "--out", str(jwks_file))
    agent_jwk = tmp_path / "agent.jwk"
    agent_jwk.write_text(json.dumps(keys["agent"].public_key.to_jwk()))
    code_file = tmp_path / "agent.py"
    code_file.write_text("print('agent')\n")
    passport_file = tmp_path / "passport.jwt"
    code, _, err = run(capsys, "passport", "issue", issuer_uri, "--sub", "agent:7", "--name", "Seven",
                           "--agent-key", str(agent_jwk), "--code-file", str(code_file), "--stage", "staging",
                           "--trust-score", "70", "--scope", "read", "--scope", "write", "--iss", "https://i",
                           "--out", str(passport_file))
    assert code == 0, err
    code, out, _ = run(capsys, "--json", "passport", "verify", str(passport_file), "--jwks", str(jwks_file),
                       "--iss", "https://i", "--scope", "write")
    data = json.loads(out)
    assert code == 0 and data["sub"] == "agent:7" and data["agent_key_id"] == keys["agent"].key_id
    assert data["scopes"] == ["read", "write"] and data["trust_score"] == 70
    code, out, _ = run(capsys, "passport", "verify", str(passport_file), "--jwks", str(jwks_file))
    assert code == 0 and "valid passport for agent:7" in out
    code, _, err = run(capsys, "passport", "verify", str(passport_file), "--jwks", str(jwks_file), "--min-trust-score", "90")
    assert code == 1 and "below the required 90" in err
    # The agent key may also be given as a key URI.
    code, _, _ = run(capsys, "passport", "issue", issuer_uri, "--sub", "a", "--name", "b", "--agent-key",
                     keys["agent"].uri, "--code-hash", "ab" * 32, "--stage", "dev", "--trust-score", "1")
    assert code == 0
    code, _, err = run(capsys, "passport", "issue", issuer_uri, "--sub", "a", "--name", "b", "--agent-key",
                       str(agent_jwk), "--code-hash", "nothex", "--stage", "dev", "--trust-score", "1")
    assert code == 2 and "code_hash" in err


def test_audit_verify(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], tmp_path: Path) -> None:
    from signers.audit import AuditedSigner, open_audit_log

    log_file = tmp_path / "audit.jsonl"
    with open_audit_log(log_file) as log:
        audited = AuditedSigner(keys["ed25519"], log, checkpoint_every=2)
        for i in range(5):
            audited.sign(str(i).encode())
    code, out, _ = run(capsys, "audit", "verify", str(log_file), "--key", keys["ed25519"].uri)
    assert code == 0 and "audit chain ok: 7 records, 2 checkpoints (2 signatures verified)" in out
    lines = log_file.read_text().splitlines()
    lines[3] = lines[3].replace('"context":{}', '"context":{"x":1}')
    log_file.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "audit", "verify", str(log_file))
    assert code == 1 and "record 4 was changed" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "--json", "audit", "verify", str(log_file))
    assert code == 1 and json.loads(out)["first_bad"] == 4
    code, _, err = run(capsys, "audit", "verify", str(tmp_path / "missing.jsonl"))
    assert code == 2


def test_demo_part(keys: dict[str, Any], issuance_store: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issuance demo on a DemoContext like `keyplane demo` builds; it ends with "revoked"."""
    import signers
    from signers.commands.demo import DemoContext
    from signers.commands.demo_issuance import run as run_demo

    password = tmp_path / "pw"
    password.write_text("demo password")
    password.chmod(0o600)
    with signers.open_store(f"file:{tmp_path / 'keys'}?password-source=file:{password}") as store:
        ctx = DemoContext(directory=tmp_path, store=store)
        for name, spec in (("demo-ed25519", "Ed25519"), ("demo-p256", "P-256"), ("demo-mldsa65", "ML-DSA-65")):
            ctx.signers[name] = store.create_key(name, signers.KeySpec.parse(spec))
        started = time.perf_counter()
        run_demo(ctx)
        elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert "verified the passport offline" in out and "TokenRevoked" in out and "revoked" in ctx.steps[-1]["error"]
    assert (tmp_path / "issuer-jwks.json").is_file() and (tmp_path / "revocations.db").is_file()
    print(f"demo issuance part took {elapsed:.3f} s")


def test_help_imports_nothing_heavy() -> None:
    # What `keyplane --help` loads: every command module's register(). The demo parts
    # (demo_issuance, demo_ca) are imported only when `keyplane demo` runs, so they may
    # import the issuance layer at their top.
    code = ("import sys\nfrom signers.cli import build_parser\nbuild_parser()\n"
            "assert 'signers.commands.tokens' in sys.modules\n"
            "heavy = [m for m in ('jwt', 'joserfc', 'sqlite3', 'rfc8785', 'signers.jose', 'signers.tokens.jose',"
            " 'signers.agents', 'boto3', 'hvac', 'pkcs11') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]"
