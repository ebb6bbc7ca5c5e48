"""`KeyplaneAccount`: an eth-account `BaseAccount` whose key stays in its back end.

Transactions are encoded by eth-account itself (`sign_transaction_dict`), which asks its
key object for ``sign_msg_hash``; `_BackEndKey` answers that with a back-end signature, so
legacy, EIP-2930 and EIP-1559 transactions all come out exactly as eth-account makes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account._utils.signing import sign_transaction_dict  # eth-account's own transaction encoder
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.signers.base import BaseAccount
from hexbytes import HexBytes

from ..errors import ConfigError, KeyplaneError
from .libs import eth_keys, keccak
from .signer import EthSigner

__all__ = ["KeyplaneAccount"]


class _BackEndKey:
    """The one method eth-account's transaction signer calls on a key object."""

    def __init__(self, eth: EthSigner) -> None:
        self._eth = eth

    def sign_msg_hash(self, message_hash: bytes) -> Any:
        return eth_keys().Signature(vrs=self._eth.sign_hash(bytes(message_hash)).vrs)


class KeyplaneAccount(BaseAccount):
    """Signs like eth-account's LocalAccount; the private key never enters this process."""

    def __init__(self, eth: EthSigner) -> None:
        self._eth = eth

    @property
    def address(self) -> Any:
        return self._eth.address

    def unsafe_sign_hash(self, message_hash: Any) -> SignedMessage:
        digest = bytes(HexBytes(message_hash))
        sig = self._eth.sign_hash(digest)
        return SignedMessage(HexBytes(digest), sig.r, sig.s, 27 + sig.v, HexBytes(sig.to_bytes()))

    def sign_message(self, signable_message: Any) -> SignedMessage:
        digest, sig = self._eth.sign_signable(signable_message)
        return SignedMessage(HexBytes(digest), sig.r, sig.s, 27 + sig.v, HexBytes(sig.to_bytes()))

    def sign_typed_data(self, domain_data: dict[str, Any] | None = None, message_types: dict[str, Any] | None = None,
                        message_data: dict[str, Any] | None = None,
                        full_message: dict[str, Any] | None = None) -> SignedMessage:
        """As LocalAccount.sign_typed_data: a full message, or its domain / types / data parts."""
        digest = self._eth.typed_data_hash(full_message, domain=domain_data, types=message_types, message=message_data)
        sig = self._eth.sign_hash(digest)
        return SignedMessage(HexBytes(digest), sig.r, sig.s, 27 + sig.v, HexBytes(sig.to_bytes()))

    def sign_transaction(self, transaction_dict: Any) -> SignedTransaction:
        """Sign a transaction dict (legacy, access-list or EIP-1559); ConfigError for a malformed one."""
        if not isinstance(transaction_dict, Mapping):
            raise ConfigError("a transaction must be a dict of its fields")
        tx = dict(transaction_dict)
        sender = tx.pop("from", None)
        if sender is not None and str(sender).lower() != self.address.lower():
            raise ConfigError(f"transaction 'from' is not this key's address {self.address}")
        try:
            v, r, s, encoded = sign_transaction_dict(_BackEndKey(self._eth), tx)  # type: ignore[arg-type]
        except KeyplaneError:
            raise
        except Exception as e:  # eth-account's TypeError / ValueError / ValidationError for bad fields
            raise ConfigError(f"malformed transaction: {type(e).__name__}: {str(e)[:200]}") from e
        return SignedTransaction(HexBytes(encoded), HexBytes(keccak(encoded)), r, s, v)
