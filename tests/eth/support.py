"""Shared test data for the Ethereum layer: the EIP-712 specification's own `Mail` example."""

from __future__ import annotations

from typing import Any

# EIP-712's example (eips.ethereum.org/EIPS/eip-712, "Example"): its digest and the signer,
# private key keccak256("cow"), address 0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826.
MAIL: dict[str, Any] = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                 {"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
               "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}
MAIL_DIGEST = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
COW_ADDRESS = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"

USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAY_TO = "0x09616C3d61b3331fc4109a9E41a8BDB7d9776609"

TX_1559: dict[str, Any] = {"type": 2, "chainId": 8453, "nonce": 7, "to": PAY_TO, "value": 12345, "gas": 21000,
                           "maxFeePerGas": 2_000_000_000, "maxPriorityFeePerGas": 1_000_000_000}
TX_LEGACY: dict[str, Any] = {"chainId": 1337, "nonce": 0, "to": PAY_TO, "value": 1, "gas": 21000, "gasPrice": 1}
