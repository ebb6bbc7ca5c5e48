"""The spend ledger kind on SQLite, PostgreSQL and Redis: one allowance for every gate of a fleet.

A charge that fits every limit is recorded; one that does not raises SpendLimitExceeded and
records nothing; rolling windows count only their period; amounts stay exact past 2**53;
bad input is a ConfigError. Several processes charging one agent at once never overspend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from signers.agents.spending import Payment, SpendLedger
from signers.errors import ConfigError
from signers.eth import SpendLimit, SpendLimitExceeded
from signers.stores import StateBackend, open_state

from .conftest import state_uri

ROOT = Path(__file__).resolve().parents[2]
USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
T0 = 1_800_000_000.0
PROCESSES, CHARGES = 4, 5

_CHARGER = """
import json, sys
from signers.agents.spending import Payment
from signers.eth import SpendLimit, SpendLimitExceeded
from signers.stores import open_state
uri, agent, asset, now = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
allowed = 0
with open_state(uri) as state:
    ledger = state.spend_ledger()
    for _ in range({charges}):
        try:
            ledger.charge(agent, Payment(asset, 100), [SpendLimit(asset, 1000, "day")], now=now)
            allowed += 1
        except SpendLimitExceeded:
            pass
print(json.dumps(allowed))
"""


def test_a_charge_within_the_limits_is_recorded_and_one_above_is_not(state: StateBackend) -> None:
    ledger = state.spend_ledger()
    assert isinstance(ledger, SpendLedger)
    limits = [SpendLimit(USDC, 600), SpendLimit(USDC, 1000, "hour")]
    ledger.charge("agent-a", Payment(USDC, 600), limits, now=T0)
    with pytest.raises(SpendLimitExceeded, match="per-payment limit of 600"):
        ledger.charge("agent-a", Payment(USDC, 601), limits, now=T0 + 1)
    with pytest.raises(SpendLimitExceeded, match="hour limit of 1000"):
        ledger.charge("agent-a", Payment(USDC.lower(), 500), limits, now=T0 + 2)  # one asset, any case
    assert ledger.spent("agent-a", USDC, now=T0 + 3) == {"hour": 600, "day": 600, "week": 600, "month": 600}
    ledger.charge("agent-a", Payment(USDC, 500), limits, now=T0 + 3601)  # the first left the hour
    assert ledger.spent("agent-a", USDC, now=T0 + 3601) == {"hour": 500, "day": 1100, "week": 1100, "month": 1100}
    assert ledger.spent("agent-b", USDC, now=T0 + 3601)["month"] == 0  # agents are apart


def test_amounts_stay_exact_past_the_doubles(state: StateBackend) -> None:
    ledger = state.spend_ledger()
    big = 2**200 + 1
    limits = [SpendLimit(USDC, 2 * big, "day")]
    ledger.charge("whale", Payment(USDC, big), limits, now=T0)
    ledger.charge("whale", Payment(USDC, big), limits, now=T0 + 1)
    with pytest.raises(SpendLimitExceeded):
        ledger.charge("whale", Payment(USDC, 1), limits, now=T0 + 2)
    assert ledger.spent("whale", USDC, now=T0 + 3)["day"] == 2 * big


@pytest.mark.parametrize(("agent", "asset", "amount"), [
    ("", USDC, 1), ("a" * 201, USDC, 1), ("agent", "", 1), ("agent", USDC, -1), ("agent", USDC, True),
    ("agent", USDC, 2**256), (None, USDC, 1),
])
def test_bad_input_is_a_config_error_and_records_nothing(state: StateBackend, agent: object, asset: str,
                                                         amount: object) -> None:
    ledger = state.spend_ledger()
    with pytest.raises(ConfigError):
        ledger.charge(agent, Payment(asset, amount), [SpendLimit(USDC, 10**80)], now=T0)  # type: ignore[arg-type]
    assert ledger.spent("agent", USDC, now=T0 + 1)["month"] == 0


def test_several_processes_charging_at_once_never_overspend(request: pytest.FixtureRequest, state: StateBackend,
                                                            tmp_path: Path, summary_lines: list[str]) -> None:
    uri = state.uri if state.features.engine != "sqlite" else state_uri(request, "sqlite", tmp_path)
    script = _CHARGER.replace("{charges}", str(CHARGES))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    children = [subprocess.Popen([sys.executable, "-c", script, uri, "racer", USDC, str(T0)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env) for _ in range(PROCESSES)]
    allowed = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        allowed.append(json.loads(out))
    assert sum(allowed) == 10  # a daily 1,000 in charges of 100, whoever wins the races
    assert state.spend_ledger().spent("racer", USDC, now=T0 + 1)["day"] == 1000
    summary_lines.append(f"fleet: spend ledger on {state.features.engine}: {PROCESSES} processes x {CHARGES} "
                         f"charges of 100 against a daily 1000: {sum(allowed)} allowed ({allowed})")


def test_two_gates_on_one_store_share_the_allowance(request: pytest.FixtureRequest, state: StateBackend,
                                                    tmp_path: Path) -> None:
    uri = state.uri if state.features.engine != "sqlite" else state_uri(request, "sqlite", tmp_path)
    with open_state(uri) as one, open_state(uri) as two:
        limits = [SpendLimit(USDC, 1000, "day")]
        one.spend_ledger().charge("shared", Payment(USDC, 700), limits, now=T0)
        with pytest.raises(SpendLimitExceeded):
            two.spend_ledger().charge("shared", Payment(USDC, 400), limits, now=T0 + 1)
        two.spend_ledger().charge("shared", Payment(USDC, 300), limits, now=T0 + 2)
