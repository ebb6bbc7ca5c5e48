"""The eth-account / eth-keys / eth-utils imports, loaded once with a clear missing-extra error."""

from __future__ import annotations

from typing import Any

from ..sdk import require

__all__ = ["eth_account_messages", "eth_keys", "keccak", "to_checksum_address"]


def eth_keys() -> Any:
    """eth-keys' key API (`.Signature`, public-key recovery)."""
    return require("eth_keys", "eth", "Ethereum signing").keys


def eth_account_messages() -> Any:
    """eth_account.messages (EIP-191 and EIP-712 encoders)."""
    return require("eth_account.messages", "eth", "Ethereum signing")


def keccak(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not SHA3-256)."""
    return bytes(require("eth_utils", "eth", "Ethereum signing").keccak(data))


def to_checksum_address(address: bytes | str) -> str:
    """EIP-55 mixed-case checksum address."""
    return str(require("eth_utils", "eth", "Ethereum signing").to_checksum_address(address))
