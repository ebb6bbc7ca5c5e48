"""The gate's spend check: a payment tool is allowed only within the passport's wallet and spend_limit."""

from __future__ import annotations

import threading
import tomllib
from typing import Any

import pytest

from signers.agents.errors import PolicyError
from signers.agents.gate import Gate
from signers.agents.lifecycle import Approvers
from signers.agents.passports import issue_agent_passport
from signers.agents.policy import GatePolicy
from signers.agents.spending import MemorySpendLedger, Payment
from signers.eth import SpendLimit

from .conftest import CODE
from .walk import walk

USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
OTHER_ASSET = "0x1111111111111111111111111111111111111111"
WALLET = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
STRANGER = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
DAY = 86_400.0
T0 = 1_800_000_000.0

POLICY = """
[agents.gate]
issuer = "https://issuer.test"

[agents.gate.defaults]
min_stage = "ACTIVE"
proof = false

[agents.gate.servers.wallet.tools.pay]
payment = true

[agents.gate.servers.wallet.tools.transfer]
payment = true
payment_params = { asset = "token", amount = "value", payer = "from" }
scopes = ["payments:write"]

[agents.gate.servers.wallet.tools.balance]
"""


@pytest.fixture(scope="module")
def policy() -> GatePolicy:
    return GatePolicy.from_dict(tomllib.loads(POLICY)["agents"]["gate"])  # the TOML tables, as load() reads them


@pytest.fixture(scope="module")
def active(keys: dict[str, Any], approvers: Approvers) -> Any:
    return walk(keys, approvers, "agent-payer", CODE)


def _passport(keys: dict[str, Any], history: Any, *, limits: tuple[SpendLimit, ...] = (SpendLimit(USDC, 1000),),
              wallet: str | None = WALLET, scopes: tuple[str, ...] = ()) -> str:
    return issue_agent_passport(keys["issuer"], history, name="payer", agent_key=keys["agent"].public_key,
                                trust_score=90, iss="https://issuer.test", wallet=wallet, spend_limit=limits,
                                scopes=scopes, now=T0, ttl=3 * DAY)


def _pay(gate: Gate, token: str, amount: object, *, asset: str = USDC, now: float = T0 + 10, **extra: Any) -> Any:
    return gate.decide(token, server="wallet", tool="pay", params={"asset": asset, "amount": amount, **extra},
                       now=now)


def test_a_payment_within_the_limit_is_allowed(policy: GatePolicy, keys: dict[str, Any], active: Any) -> None:
    gate = Gate(policy, keys["issuer"])
    decision = _pay(gate, _passport(keys, active), "1000", payer=WALLET.lower())
    assert decision.allow, decision.reason
    assert "spend" in decision.checks_passed and WALLET in decision.details["spend"]


def test_a_payment_above_the_limit_is_denied(policy: GatePolicy, keys: dict[str, Any], active: Any) -> None:
    decision = _pay(Gate(policy, keys["issuer"]), _passport(keys, active), 1001)
    assert not decision.allow and decision.checks_failed == ("spend",)
    assert "exceeds the per-payment limit of 1000" in decision.reason


@pytest.mark.parametrize(("case", "kwargs", "params", "why"), [
    ("asset without a limit", {}, {"asset": OTHER_ASSET, "amount": 1}, "grants no spending of asset"),
    ("no wallet", {"wallet": None, "limits": ()}, {"asset": USDC, "amount": 1}, "no wallet address"),
    ("another payer", {}, {"asset": USDC, "amount": 1, "payer": STRANGER}, "is not the passport's wallet"),
    ("payer not an address", {}, {"asset": USDC, "amount": 1, "payer": "alice"}, "must be an Ethereum address"),
    ("no asset", {}, {"amount": 1}, "needs the asset"),
    ("negative amount", {}, {"asset": USDC, "amount": -5}, "non-negative whole amount"),
    ("fractional amount", {}, {"asset": USDC, "amount": 0.5}, "non-negative whole amount"),
    ("amount as a bool", {}, {"asset": USDC, "amount": True}, "non-negative whole amount"),
    ("exponent notation", {}, {"asset": USDC, "amount": "1e3"}, "non-negative whole amount"),
    ("unicode digits", {}, {"asset": USDC, "amount": "\u0661\u0662"}, "non-negative whole amount"),
    ("over 2**256", {}, {"asset": USDC, "amount": "9" * 79}, "non-negative whole amount"),
    ("no amount", {}, {"asset": USDC}, "non-negative whole amount"),
])
def test_bad_payments_are_denied_and_charge_nothing(policy: GatePolicy, keys: dict[str, Any], active: Any,
                                                    case: str, kwargs: dict[str, Any], params: dict[str, Any],
                                                    why: str) -> None:
    ledger = MemorySpendLedger()
    gate = Gate(policy, keys["issuer"], spend_ledger=ledger)
    decision = gate.decide(_passport(keys, active, **kwargs), server="wallet", tool="pay", params=params, now=T0 + 1)
    assert not decision.allow and decision.checks_failed == ("spend",), case
    assert why in decision.details["spend"], decision.details["spend"]
    assert ledger.spent("agent-payer", USDC, now=T0 + 2)["month"] == 0


def test_a_daily_limit_without_a_ledger_fails_closed(policy: GatePolicy, keys: dict[str, Any], active: Any) -> None:
    token = _passport(keys, active, limits=(SpendLimit(USDC, 1000, "day"),))
    decision = _pay(Gate(policy, keys["issuer"]), token, 1)
    assert not decision.allow and "needs the amount already spent" in decision.details["spend"]


def test_a_daily_limit_counts_what_was_spent(policy: GatePolicy, keys: dict[str, Any], active: Any) -> None:
    ledger = MemorySpendLedger()
    gate = Gate(policy, keys["issuer"], spend_ledger=ledger)
    token = _passport(keys, active, limits=(SpendLimit(USDC, 1000, "day"), SpendLimit(USDC, 500)))
    assert _pay(gate, token, 400, now=T0 + 10).allow
    assert _pay(gate, token, 400, now=T0 + 20).allow
    third = _pay(gate, token, 400, now=T0 + 30)
    assert not third.allow and "exceeds the day limit of 1000" in third.reason
    assert not _pay(gate, token, 501, now=T0 + DAY + 40).allow  # the per-payment limit still holds
    assert _pay(gate, token, 400, now=T0 + DAY + 15).allow  # the first payment left the window
    assert ledger.spent("agent-payer", USDC, now=T0 + DAY + 15)["day"] == 800


def test_a_call_denied_for_another_reason_charges_nothing(policy: GatePolicy, keys: dict[str, Any],
                                                          active: Any) -> None:
    ledger = MemorySpendLedger()
    gate = Gate(policy, keys["issuer"], spend_ledger=ledger)
    token = _passport(keys, active, limits=(SpendLimit(USDC, 1000, "day"),))  # no payments:write scope
    params = {"token": USDC, "value": "300", "from": WALLET}
    decision = gate.decide(token, server="wallet", tool="transfer", params=params, now=T0 + 5)
    assert not decision.allow and decision.checks_failed == ("scopes",)
    assert "spend" in decision.checks_passed  # evaluated, within the limit, but not charged
    assert ledger.spent("agent-payer", USDC, now=T0 + 6)["day"] == 0
    scoped = _passport(keys, active, limits=(SpendLimit(USDC, 1000, "day"),), scopes=("payments:write",))
    assert gate.decide(scoped, server="wallet", tool="transfer", params=params, now=T0 + 7).allow
    assert ledger.spent("agent-payer", USDC, now=T0 + 8)["day"] == 300


def test_concurrent_payments_cannot_overspend(policy: GatePolicy, keys: dict[str, Any], active: Any) -> None:
    ledger = MemorySpendLedger()
    gate = Gate(policy, keys["issuer"], spend_ledger=ledger)
    token = _passport(keys, active, limits=(SpendLimit(USDC, 1000, "day"),))
    results: list[bool] = []
    start = threading.Barrier(16)

    def pay() -> None:
        start.wait()
        results.append(_pay(gate, token, 100).allow)

    threads = [threading.Thread(target=pay) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 10 and results.count(False) == 6
    assert ledger.spent("agent-payer", USDC, now=T0 + 11)["day"] == 1000


def test_tools_that_are_not_payments_are_unaffected(policy: GatePolicy, keys: dict[str, Any], active: Any) -> None:
    token = _passport(keys, active, wallet=None, limits=())
    decision = Gate(policy, keys["issuer"]).decide(token, server="wallet", tool="balance", now=T0 + 1)
    assert decision.allow and decision.details["spend"] == "not a payment"


def test_the_ledger_refuses_before_recording() -> None:
    ledger = MemorySpendLedger()
    ledger.charge("a", Payment(USDC, 600), [SpendLimit(USDC, 1000, "hour")], now=T0)
    with pytest.raises(Exception, match="exceeds the hour limit"):
        ledger.charge("a", Payment(USDC, 600), [SpendLimit(USDC, 1000, "hour")], now=T0 + 1)
    assert ledger.spent("a", USDC.lower(), now=T0 + 2) == {"hour": 600, "day": 600, "week": 600, "month": 600}
    assert ledger.spent("a", USDC, now=T0 + 3601)["hour"] == 0


@pytest.mark.parametrize(("kwargs", "why"), [
    ({"wallet": None, "spend_limit": [SpendLimit(USDC, 1)]}, "needs the wallet"),
    ({"wallet": "0x1234"}, "must be an Ethereum address"),
    ({"wallet": WALLET, "spend_limit": [{"asset": USDC, "max": "1"}]}, "must be SpendLimit values"),
])
def test_bad_wallet_claims_are_refused_at_issuance(keys: dict[str, Any], active: Any, kwargs: dict[str, Any],
                                                   why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        issue_agent_passport(keys["issuer"], active, name="payer", agent_key=keys["agent"].public_key,
                             trust_score=90, **kwargs)
