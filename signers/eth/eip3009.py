"""EIP-3009 transfer authorizations (what x402's ``exact`` scheme has an agent sign).

`Authorization` holds the fields; `authorization_typed_data` builds the EIP-712 message the
token contract checks (domain: the token's name, version, chain id and address);
`sign_authorization` refuses, before anything is signed, a window that has already closed,
a chain id that is not the network's, or an amount above the agent's spending limit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from .libs import to_checksum_address
from .limits import SpendLimit, check_spend
from .signer import EthSigner

__all__ = ["Authorization", "authorization_typed_data", "sign_authorization"]

_UINT256 = 2**256
_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
Kind = Literal["TransferWithAuthorization", "ReceiveWithAuthorization"]


@dataclass(frozen=True)
class Authorization:
    """One EIP-3009 authorization; `nonce` is 32 random bytes unless given."""

    from_address: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes = field(default_factory=lambda: os.urandom(32))

    def __post_init__(self) -> None:
        for name in ("value", "valid_after", "valid_before"):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < _UINT256:
                raise ConfigError(f"authorization {name} must be a uint256, not {number!r:.40}")
        if self.valid_before <= self.valid_after:
            raise ConfigError("authorization validBefore must be after validAfter")
        if not isinstance(self.nonce, bytes) or len(self.nonce) != 32:
            raise ConfigError("authorization nonce must be 32 bytes")
        for name in ("from_address", "to"):
            _address(getattr(self, name), name)


def _address(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise ConfigError(f"{what} must be a 0x-prefixed 20-byte address")
    try:
        return to_checksum_address(value)
    except ValueError as e:
        raise ConfigError(f"{what} is not a valid address") from e


def authorization_typed_data(authorization: Authorization, *, token_name: str, token_version: str, chain_id: int,
                             token_address: str, kind: Kind = "TransferWithAuthorization") -> dict[str, Any]:
    """The EIP-712 full message for `authorization` on one token contract; ConfigError on bad fields."""
    if kind not in ("TransferWithAuthorization", "ReceiveWithAuthorization"):
        raise ConfigError(f"unknown EIP-3009 authorization kind {kind!r}")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise ConfigError("chain id must be a positive integer")
    return {
        "types": {"EIP712Domain": _DOMAIN, kind: _FIELDS},
        "primaryType": kind,
        "domain": {"name": token_name, "version": token_version, "chainId": chain_id,
                   "verifyingContract": _address(token_address, "token address")},
        "message": {
            "from": _address(authorization.from_address, "from"),
            "to": _address(authorization.to, "to"),
            "value": authorization.value,
            "validAfter": authorization.valid_after,
            "validBefore": authorization.valid_before,
            "nonce": authorization.nonce,
        },
    }


def sign_authorization(eth: EthSigner, authorization: Authorization, *, token_name: str, token_version: str,
                       chain_id: int, token_address: str, expected_chain_id: int | None = None,
                       limits: list[SpendLimit] | None = None, asset: str | None = None,
                       kind: Kind = "TransferWithAuthorization", now: float | None = None) -> bytes:
    """Sign an EIP-3009 authorization: 65 bytes r || s || v.

    Raises ConfigError (the `from` is not this key's address, the window has closed, chain
    id differs from `expected_chain_id`, malformed fields) and SpendLimitExceeded (the value
    is above a limit in `limits` for `asset`); nothing is signed then.
    """
    if authorization.from_address.lower() != eth.address.lower():
        raise ConfigError(f"authorization 'from' {authorization.from_address} is not this key's address {eth.address}")
    current = time.time() if now is None else now
    if authorization.valid_before <= current:
        raise ConfigError("authorization window has closed: validBefore is in the past")
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise ConfigError(f"chain id mismatch: signing for {chain_id}, the network is {expected_chain_id}")
    if limits:
        check_spend(limits, asset or token_address, authorization.value)
    typed = authorization_typed_data(authorization, token_name=token_name, token_version=token_version,
                                     chain_id=chain_id, token_address=token_address, kind=kind)
    return eth.sign_typed_data(typed)
