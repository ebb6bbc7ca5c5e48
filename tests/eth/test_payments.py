"""x402 payments and EIP-3009 authorizations: built by x402's client, checked by its facilitator code.

The must-show: an x402 payment payload signed with a SoftHSM2 key passes the x402 SDK's own
signature classification (the facilitator-side EIP-3009 check), offline: the chain is
represented by a facilitator signer that reports no contract code at any address, as a
fresh externally-owned account has none.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.exact.eip3009_utils import classify_eip3009_signature
from x402.mechanisms.evm.types import ExactEIP3009Authorization, ExactEIP3009Payload
from x402.mechanisms.evm.utils import hex_to_bytes
from x402.schemas import PaymentRequired, PaymentRequirements

import signers
from signers.algorithms import KeySpec
from signers.eth import Authorization, EthSigner, SpendLimit, authorization_typed_data, sign_authorization
from signers.eth.x402 import pay

from .support import PAY_TO, USDC_BASE_SEPOLIA

CHAIN_ID = 84532  # Base Sepolia


class NoCodeChain:
    """The facilitator signer x402 asks for on-chain code: every address is an EOA here."""

    def get_code(self, address: str) -> bytes:
        return b""


def _required(amount: str = "1000") -> PaymentRequired:
    requirements = PaymentRequirements(scheme="exact", network=f"eip155:{CHAIN_ID}", asset=USDC_BASE_SEPOLIA,
                                       amount=amount, pay_to=PAY_TO, max_timeout_seconds=300,
                                       extra={"name": "USDC", "version": "2"})
    return PaymentRequired(x402_version=2, accepts=[requirements], resource=None)


def _classified_valid(payload: Any) -> bool:
    inner = ExactEIP3009Payload.from_dict(payload.payload)
    result = classify_eip3009_signature(NoCodeChain(), inner.authorization, hex_to_bytes(inner.signature),  # type: ignore[arg-type]
                                        CHAIN_ID, USDC_BASE_SEPOLIA, "USDC", "2")
    return bool(result.valid)


def test_x402_payment_signed_in_softhsm_passes_the_sdk_check(softhsm_store_uri: str) -> None:
    with signers.open_store(softhsm_store_uri) as store:
        eth = EthSigner(store.create_key(f"wallet-{uuid.uuid4().hex[:8]}", KeySpec.SECP256K1))
        payload = pay(eth, _required(), passport_claims={
            "wallet": eth.address, "spend_limit": [SpendLimit(USDC_BASE_SEPOLIA, 5000).to_claim()]})
    assert payload.payload["authorization"]["from"] == eth.address
    assert _classified_valid(payload)


def test_a_tampered_payment_fails_the_sdk_check(file_store_uri: str) -> None:
    with signers.open_store(file_store_uri) as store:
        eth = EthSigner(store.create_key("wallet", KeySpec.SECP256K1))
        payload = pay(eth, _required())
    payload.payload["authorization"]["value"] = "999999"
    assert not _classified_valid(payload)


def test_our_eip3009_digest_is_x402s(file_store_uri: str) -> None:
    with signers.open_store(file_store_uri) as store:
        eth = EthSigner(store.create_key("wallet", KeySpec.SECP256K1))
    now = int(time.time())
    auth = Authorization(eth.address, PAY_TO, 1000, 0, now + 600)
    theirs = hash_eip3009_authorization(
        ExactEIP3009Authorization(from_address=eth.address, to=PAY_TO, value="1000", valid_after="0",
                                  valid_before=str(now + 600), nonce="0x" + auth.nonce.hex()),
        CHAIN_ID, USDC_BASE_SEPOLIA, "USDC", "2")
    typed = authorization_typed_data(auth, token_name="USDC", token_version="2", chain_id=CHAIN_ID,
                                     token_address=USDC_BASE_SEPOLIA)
    assert eth.typed_data_hash(typed) == bytes(theirs)


def test_signed_authorization_recovers_in_x402(file_store_uri: str) -> None:
    with signers.open_store(file_store_uri) as store:
        eth = EthSigner(store.create_key("wallet", KeySpec.SECP256K1))
        auth = Authorization(eth.address, PAY_TO, 1000, 0, int(time.time()) + 600)
        signature = sign_authorization(eth, auth, token_name="USDC", token_version="2", chain_id=CHAIN_ID,
                                       token_address=USDC_BASE_SEPOLIA, expected_chain_id=CHAIN_ID,
                                       limits=[SpendLimit(USDC_BASE_SEPOLIA, 1000)])
    theirs = ExactEIP3009Authorization(from_address=eth.address, to=PAY_TO, value="1000", valid_after="0",
                                       valid_before=str(auth.valid_before), nonce="0x" + auth.nonce.hex())
    result = classify_eip3009_signature(NoCodeChain(), theirs, signature, CHAIN_ID,  # type: ignore[arg-type]
                                        USDC_BASE_SEPOLIA, "USDC", "2")
    assert result.valid


@pytest.mark.parametrize("kind", ["TransferWithAuthorization", "ReceiveWithAuthorization"])
def test_both_eip3009_kinds_sign(file_store_uri: str, kind: Any) -> None:
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    with signers.open_store(file_store_uri) as store:
        eth = EthSigner(store.create_key("wallet", KeySpec.SECP256K1))
        auth = Authorization(eth.address, PAY_TO, 5, 0, int(time.time()) + 60)
        signature = sign_authorization(eth, auth, token_name="USDC", token_version="2", chain_id=CHAIN_ID,
                                       token_address=USDC_BASE_SEPOLIA, kind=kind)
    typed = authorization_typed_data(auth, token_name="USDC", token_version="2", chain_id=CHAIN_ID,
                                     token_address=USDC_BASE_SEPOLIA, kind=kind)
    assert typed["primaryType"] == kind
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=signature) == eth.address
