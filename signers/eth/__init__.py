"""Ethereum signatures from keys that never leave their back end (the ``[eth]`` extra).

A secp256k1 key in the file store, a PKCS#11 token, AWS KMS, Azure Key Vault or Cloud KMS
signs Ethereum's Keccak-256 digests through the `DigestSigner` capability; this package
turns the DER signature into Ethereum's ``(v, r, s)``: low-s normalised, with the recovery
id found by trying both candidates against the key's public key, so `ecrecover` returns
the key's address. The encoders are eth-account's (EIP-191, EIP-712, transactions): none is
written here.

```python
from signers.eth import EthSigner
eth = EthSigner(signers.open("awskms:///alias/agent-wallet"))
eth.address                                   # the key's checksummed address
eth.sign_typed_data(full_message)             # EIP-712, 65 bytes r || s || v
eth.account                                   # an eth-account BaseAccount for web3.py code
```
"""

from __future__ import annotations

from .eip3009 import Authorization, authorization_typed_data, sign_authorization
from .errors import SpendLimitExceeded
from .limits import SpendLimit, check_spend, spend_limits_from_claims
from .recoverable import EthSignature, address_of, recover_address, sign_hash
from .signer import EthSigner

__all__ = [
    "Authorization",
    "EthSignature",
    "EthSigner",
    "SpendLimit",
    "SpendLimitExceeded",
    "address_of",
    "authorization_typed_data",
    "check_spend",
    "recover_address",
    "sign_authorization",
    "sign_hash",
    "spend_limits_from_claims",
]
