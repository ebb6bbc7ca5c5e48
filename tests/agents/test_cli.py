"""``keyplane agent|gate|receipt``: the walkthrough of docs/agents.md, through `signers.cli.main`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from signers.cli import main

from .conftest import CODE, NEW_CODE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def registry(tmp_path: Path, keys: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "agents"
    for name, role in (("registrar", "registrar"), ("approver", "approver"), ("release", "release-approver")):
        code, _, err = run(capsys, "agent", "approver", keys[name].uri, "--role", role, "--registry", str(directory))
        assert code == 0, err
    return directory


def _walk(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], registry: Path, agent: str) -> None:
    reg = ["--registry", str(registry)]
    assert run(capsys, "agent", "register", agent, "--key", keys["registrar"].uri, "--code-hash", CODE, *reg)[0] == 0
    for stage, who in (("VETTING", "approver"), ("TESTING", "approver"), ("DEV_APPROVED", "approver"),
                       ("PROD_APPROVED", "release"), ("ACTIVE", "release")):
        code, _, err = run(capsys, "agent", "advance", agent, stage, "--key", keys[who].uri, "--reason", "ok", *reg)
        assert code == 0, err


def test_lifecycle_from_the_command_line(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                         registry: Path) -> None:
    reg = ["--registry", str(registry)]
    assert run(capsys, "agent", "register", "bot", "--key", keys["registrar"].uri, "--code-hash", CODE, *reg)[0] == 0
    code, _, err = run(capsys, "agent", "advance", "bot", "ACTIVE", "--key", keys["release"].uri, *reg)
    assert code == 1 and "TransitionRefused" in err and "INTAKE -> ACTIVE" in err
    for stage, who in (("VETTING", "approver"), ("TESTING", "approver"), ("DEV_APPROVED", "approver")):
        assert run(capsys, "agent", "advance", "bot", stage, "--key", keys[who].uri, *reg)[0] == 0
    code, _, err = run(capsys, "agent", "advance", "bot", "PROD_APPROVED", "--key", keys["approver"].uri, *reg)
    assert code == 1 and "RoleMissing" in err
    for stage in ("PROD_APPROVED", "ACTIVE"):
        assert run(capsys, "agent", "advance", "bot", stage, "--key", keys["release"].uri, *reg)[0] == 0
    code, out, _ = run(capsys, "--json", "agent", "history", "bot", *reg)
    assert code == 0 and json.loads(out)["stage"] == "ACTIVE" and len(json.loads(out)["transitions"]) == 6
    handed = registry.parent / "handed-over.history"  # a copy verified elsewhere, with the approvers file only
    handed.write_text((registry / "bot.history").read_text())
    code, out, _ = run(capsys, "agent", "history", str(handed), "--approvers", str(registry / "approvers.json"))
    assert code == 0 and "bot: ACTIVE (history verified, 6 transitions)" in out
    code, out, _ = run(capsys, "agent", "advance", "bot", "VETTING", "--key", keys["approver"].uri,
                       "--code-hash", NEW_CODE, "--reason", "new build", *reg)
    assert code == 0 and "ACTIVE -> VETTING" in out
    code, out, _ = run(capsys, "--json", "agent", "score", "bot", "--attested", NEW_CODE, *reg)
    assert code == 0 and json.loads(out)["trust"]["score"] == 30  # VETTING 10 + attested 20


def test_tampered_history_file_refused(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                       registry: Path) -> None:
    _walk(capsys, keys, registry, "bot2")
    path = registry / "bot2.history"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    code, _, err = run(capsys, "agent", "history", "bot2", "--registry", str(registry))
    assert code == 1 and "HistoryInvalid" in err
    code, _, err = run(capsys, "agent", "suspend", "bot2", "--key", keys["approver"].uri, "--registry", str(registry))
    assert code == 1 and path.read_text().splitlines()[1] == lines[2]  # nothing written


def test_passport_gate_check_and_group_revocation(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                                  registry: Path, tmp_path: Path) -> None:
    _walk(capsys, keys, registry, "bot3")
    passport = tmp_path / "bot3.passport"
    code, _, err = run(capsys, "agent", "passport", "bot3", "--key", keys["issuer"].uri, "--agent-key",
                       keys["agent"].uri, "--scope", "math", "--group", "fleet", "--attested", CODE,
                       "--out", str(passport), "--registry", str(registry))
    assert code == 0, err
    policy = tmp_path / "keyplane.toml"
    policy.write_text('[agents.gate.defaults]\nmin_stage = "ACTIVE"\nproof = true\n'
                      '[agents.gate.servers.tools.tools.add]\nscopes = ["math"]\nmin_trust = 60\n')
    db = tmp_path / "revocations.db"
    check = ["gate", "check", str(passport), "--server", "tools", "--tool", "add", "--policy", str(policy),
             "--key", keys["issuer"].uri, "--revocations", str(db)]
    assert run(capsys, "agent", "revoke", "--agent", "nobody", "--db", str(db))[0] == 0  # creates the store
    code, out, _ = run(capsys, *check, "--proof-key", keys["agent"].uri)
    assert code == 0 and out.startswith("ALLOW") and "computed by keyplane-default/1" in out
    code, out, _ = run(capsys, "--json", *check)
    assert code == 1 and json.loads(out)["checks_failed"] == ["possession"]
    backed = [*check, "--proof-key", keys["agent"].uri, "--registry", str(registry)]
    code, out, _ = run(capsys, *backed)
    assert code == 0 and "ACTIVE, backed by its history" in out
    assert run(capsys, "agent", "suspend", "bot3", "--key", keys["approver"].uri, "--registry", str(registry))[0] == 0
    code, out, _ = run(capsys, *backed)
    assert code == 1 and "FAIL  stage" in out and "stage changed" in out
    assert run(capsys, "agent", "revoke", "--group", "fleet", "--db", str(db), "--reason", "compromised")[0] == 0
    code, out, _ = run(capsys, *check, "--proof-key", keys["agent"].uri)
    assert code == 1 and "FAIL  group-revocation: group 'fleet' is revoked (compromised)" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[agents.gate.defaults]\nmin_stage = "BANANA"\n')
    code, _, err = run(capsys, "gate", "check", str(passport), "--server", "tools", "--tool", "add", "--policy",
                       str(bad), "--key", keys["issuer"].uri)
    assert code == 2 and "PolicyError" in err and "BANANA" in err


def test_receipts_from_the_command_line(capsys: pytest.CaptureFixture[str], keys: dict[str, Any],
                                        tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text('{"q": 1}')
    (tmp_path / "out.json").write_text('{"a": 2}')
    sign = ["receipt", "sign", keys["agent"].uri, "--format", "json", "--input", str(tmp_path / "in.json")]
    code, first, _ = run(capsys, *sign, "--output", str(tmp_path / "out.json"), "--out", str(tmp_path / "r1"))
    assert code == 0 and first.strip() == (tmp_path / "r1").read_text().strip()
    code, _, _ = run(capsys, *sign, "--output", str(tmp_path / "out.json"), "--parent", str(tmp_path / "r1"),
                     "--out", str(tmp_path / "r2"))
    assert code == 0
    verify = ["receipt", "verify", str(tmp_path / "r1"), "--format", "json", "--key", keys["agent"].uri]
    code, out, _ = run(capsys, *verify, "--output", str(tmp_path / "out.json"))
    assert code == 0 and out.strip() == "VALID"
    (tmp_path / "out.json").write_text('{"a": 3}')
    code, out, _ = run(capsys, *verify, "--output", str(tmp_path / "out.json"))
    assert code == 1 and out.strip() == "TAMPERED: output differs from the receipt"
    dag = ["receipt", "verify", "--dag", "--key", keys["agent"].uri]
    assert run(capsys, *dag, str(tmp_path / "r1"), str(tmp_path / "r2"))[0] == 0
    code, _, err = run(capsys, *dag, str(tmp_path / "r2"))
    assert code == 1 and "ReceiptParentMissing" in err and "broken edge" in err


def test_custom_lifecycle_from_a_file(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], registry: Path,
                                      tmp_path: Path) -> None:
    lifecycle = tmp_path / "lifecycle.toml"
    lifecycle.write_text('[agents.lifecycle]\nstages = ["NEW", "LIVE"]\nreset_stage = "NEW"\n'
                         '[agents.lifecycle.roles]\nLIVE = ["release-approver"]\n')
    opts = ["--registry", str(registry), "--lifecycle", str(lifecycle)]
    assert run(capsys, "agent", "register", "tiny", "--key", keys["registrar"].uri, "--code-hash", CODE, *opts)[0] == 0
    code, _, err = run(capsys, "agent", "advance", "tiny", "LIVE", "--key", keys["approver"].uri, *opts)
    assert code == 1 and "RoleMissing" in err
    code, out, _ = run(capsys, "agent", "advance", "tiny", "LIVE", "--key", keys["release"].uri, *opts)
    assert code == 0 and "NEW -> LIVE" in out
    code, _, err = run(capsys, "agent", "history", "tiny", "--registry", str(registry))  # default lifecycle: refused
    assert code == 1 and "HistoryInvalid" in err
    code, out, err = run(capsys, "--config", str(lifecycle), "agent", "history", "tiny", "--registry", str(registry))
    assert code == 0 and "tiny: LIVE" in out, err  # keyplane.toml's [agents.lifecycle] when no --lifecycle
    (tmp_path / "bad.toml").write_text("[agents.lifecycle]\nstagez = []\n")
    code, _, err = run(capsys, "agent", "history", "tiny", "--registry", str(registry),
                       "--lifecycle", str(tmp_path / "bad.toml"))
    assert code == 2 and "unknown field" in err
    code, _, err = run(capsys, "--config", str(tmp_path / "bad.toml"), "agent", "history", "tiny",
                       "--registry", str(registry))
    assert code == 2 and "unknown field" in err  # validated by the agents layer, from the configuration too


def test_retiring_an_approver(capsys: pytest.CaptureFixture[str], keys: dict[str, Any], registry: Path) -> None:
    _walk(capsys, keys, registry, "bot4")
    reg = ["--registry", str(registry)]
    assert run(capsys, "agent", "approver", keys["release"].uri, "--not-after", "now", *reg)[0] == 0
    assert run(capsys, "agent", "history", "bot4", *reg)[0] == 0  # what it approved before still verifies
    code, _, err = run(capsys, "agent", "suspend", "bot4", "--key", keys["release"].uri, *reg)
    assert code == 1 and "no longer holds" in err
    code, _, err = run(capsys, "agent", "approver", keys["release"].uri, "--not-after", "someday", *reg)
    assert code == 2 and "not-after" in err
    assert run(capsys, "agent", "approver", keys["release"].uri, *reg)[0] == 2  # neither --role nor --not-after


def test_a_passport_with_a_wallet_and_the_gates_spend_check(capsys: pytest.CaptureFixture[str],
                                                            keys: dict[str, Any], registry: Path,
                                                            tmp_path: Path) -> None:
    _walk(capsys, keys, registry, "payer")
    usdc, wallet = "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
    passport = tmp_path / "payer.passport"
    issue = ["agent", "passport", "payer", "--key", keys["issuer"].uri, "--agent-key", keys["agent"].uri,
             "--registry", str(registry), "--out", str(passport)]
    for bad in (["--spend-limit", f"{usdc}:1000"], ["--wallet", "0x12"],
                ["--wallet", wallet, "--spend-limit", f"{usdc}:ten"],
                ["--wallet", wallet, "--spend-limit", f"{usdc}:10:fortnight"]):
        code, _, err = run(capsys, *issue, *bad)
        assert code == 2 and not passport.exists(), err
    code, _, err = run(capsys, *issue, "--wallet", wallet, "--spend-limit", f"{usdc}:1000")
    assert code == 0, err
    policy = tmp_path / "keyplane.toml"
    policy.write_text('[agents.gate.defaults]\nmin_stage = "ACTIVE"\n[agents.gate.servers.wallet.tools.pay]\n'
                      'payment = true\n')
    check = ["gate", "check", str(passport), "--server", "wallet", "--tool", "pay", "--policy", str(policy),
             "--key", keys["issuer"].uri, "--params"]
    code, out, _ = run(capsys, *check, json.dumps({"asset": usdc, "amount": "1000", "payer": wallet}))
    assert code == 0 and out.startswith("ALLOW"), out
    code, out, _ = run(capsys, *check, json.dumps({"asset": usdc, "amount": "1001"}))
    assert code == 1 and "FAIL  spend: payment of 1001 exceeds the per-payment limit of 1000" in out, out
