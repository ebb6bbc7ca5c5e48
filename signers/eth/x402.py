"""x402 payments (HTTP 402, ``exact`` scheme on EVM) signed with a key in any back end.

x402's own client builds the payment payload (EIP-3009 authorization, random nonce,
validity window) and asks its signer for an EIP-712 signature; `x402_client` registers a
`KeyplaneAccount` as that signer, so nothing of x402's payload logic is re-implemented.
`pay` adds what an agent platform needs in front: the passport's spending limit and the
network's chain id are checked before anything is signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, KeyplaneError
from ..sdk import require
from .limits import check_spend, spend_limits_from_claims
from .signer import EthSigner

__all__ = ["pay", "x402_client"]


def x402_client(eth: EthSigner) -> Any:
    """A synchronous x402 client (x402ClientSync) whose EVM ``exact`` scheme signs with `eth`'s key."""
    x402 = require("x402", "x402", "x402 payments")
    register = require("x402.mechanisms.evm.exact.register", "x402", "x402 payments")
    client = x402.x402ClientSync()
    register.register_exact_evm_client(client, eth.account)
    return client


def pay(eth: EthSigner, payment_required: Any, *, passport_claims: Mapping[str, Any] | None = None) -> Any:
    """The x402 PaymentPayload for a server's PaymentRequired, signed with `eth`'s key.

    With `passport_claims`, the passport's ``wallet`` must be this key's address and the
    amount must fit its ``spend_limit`` for the asset (SpendLimitExceeded otherwise);
    ConfigError for a PaymentRequired x402 cannot satisfy. Nothing is signed on refusal.
    """
    accepts = list(getattr(payment_required, "accepts", None) or [])
    if not accepts:
        raise ConfigError("the PaymentRequired offers no payment option")
    if passport_claims is not None:
        wallet = passport_claims.get("wallet")
        if not isinstance(wallet, str) or wallet.lower() != eth.address.lower():
            raise ConfigError(f"the passport's wallet is not this key's address {eth.address}")
        limits = spend_limits_from_claims(passport_claims)
        for option in accepts:
            check_spend(limits, str(option.asset), int(option.amount))
    client = x402_client(eth)
    try:
        return client.create_payment_payload(payment_required)
    except KeyplaneError:
        raise
    except Exception as e:  # x402 raises its own errors for unsupported networks / schemes
        raise ConfigError(f"x402 could not build a payment: {type(e).__name__}: {str(e)[:200]}") from e
