"""`EthSigner`: Ethereum signing (EIP-191, EIP-712, transactions) with a key in any back end.

The encoders are eth-account's; this module only supplies the signature, through
`sign_hash`. `EthSigner.account` is an eth-account `BaseAccount`, so web3.py and x402 code
written for a local account takes a KMS- or HSM-held key unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, KeyplaneError
from ..signer import Signer
from .libs import eth_account_messages, keccak
from .recoverable import EthSignature, address_of, sign_hash

__all__ = ["EthSigner"]


class EthSigner:
    """Ethereum views of one secp256k1 Signer; thread-safe as the Signer is.

    Raises AlgorithmNotSupported at construction for a key that is not secp256k1.
    """

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self.address = address_of(signer.public_key)

    def sign_hash(self, digest: bytes) -> EthSignature:
        """Sign a 32-byte digest; see `signers.eth.sign_hash` for what it raises."""
        return sign_hash(self.signer, digest)

    def sign_signable(self, signable: Any) -> tuple[bytes, EthSignature]:
        """(hash, signature) for an eth-account SignableMessage (EIP-191 framing: 0x19 || version || header || body)."""
        digest = keccak(b"\x19" + bytes(signable.version) + bytes(signable.header) + bytes(signable.body))
        return digest, self.sign_hash(digest)

    def sign_message(self, message: str | bytes) -> bytes:
        """EIP-191 personal message (``personal_sign``): 65 bytes r || s || v."""
        signable = eth_account_messages().encode_defunct(text=message) if isinstance(message, str) else \
            eth_account_messages().encode_defunct(primitive=message)
        return self.sign_signable(signable)[1].to_bytes()

    def typed_data_hash(self, full_message: Mapping[str, Any] | None = None, *, domain: Mapping[str, Any] | None = None,
                        types: Mapping[str, Any] | None = None, message: Mapping[str, Any] | None = None) -> bytes:
        """The EIP-712 digest: of a full message (types, primaryType, domain, message), or of its
        domain / types / message parts (the primary type inferred, as eth-account does); ConfigError if malformed."""
        return keccak(_framed(_encode_typed(full_message, domain, types, message)))

    def sign_typed_data(self, full_message: Mapping[str, Any] | None = None, *, domain: Mapping[str, Any] | None = None,
                        types: Mapping[str, Any] | None = None, message: Mapping[str, Any] | None = None) -> bytes:
        """EIP-712 typed data (eth-account's encoder): 65 bytes r || s || v; ConfigError if malformed."""
        return self.sign_hash(self.typed_data_hash(full_message, domain=domain, types=types, message=message)).to_bytes()

    @property
    def account(self) -> Any:
        """An eth-account BaseAccount over this key (web3.py / x402 code that expects a local account)."""
        # lazy-sdk: eth (eth_account's class hierarchy loads only when an account is asked for)
        from .account import KeyplaneAccount

        return KeyplaneAccount(self)

    def __repr__(self) -> str:
        return f"EthSigner(address={self.address!r}, signer={self.signer!r})"


def _encode_typed(full_message: Mapping[str, Any] | None, domain: Mapping[str, Any] | None,
                  types: Mapping[str, Any] | None, message: Mapping[str, Any] | None) -> Any:
    if full_message is not None:
        if not isinstance(full_message, Mapping):
            raise ConfigError("EIP-712 typed data must be an object with types, primaryType, domain and message")
        missing = {"types", "primaryType", "domain", "message"} - set(full_message)
        if missing:
            raise ConfigError(f"EIP-712 typed data lacks {sorted(missing)}")
        arguments: dict[str, Any] = {"full_message": dict(full_message)}
    else:
        if not all(isinstance(part, Mapping) for part in (domain, types, message)):
            raise ConfigError("give EIP-712 typed data as a full message, or as domain, types and message objects")
        arguments = {"domain_data": dict(domain or {}), "message_types": dict(types or {}), "message_data": dict(message or {})}
    try:
        return eth_account_messages().encode_typed_data(**arguments)
    except KeyplaneError:
        raise
    except Exception as e:  # eth-account raises ValueError / TypeError / its own ValidationError
        raise ConfigError(f"malformed EIP-712 typed data: {type(e).__name__}: {str(e)[:200]}") from e


def _framed(signable: Any) -> bytes:
    return b"\x19" + bytes(signable.version) + bytes(signable.header) + bytes(signable.body)
