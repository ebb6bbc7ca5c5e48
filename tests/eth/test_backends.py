"""Ethereum signatures from every back end that holds secp256k1 keys, checked by eth-account.

For the file store, SoftHSM2, moto (AWS as documented), and the Azure and GCP emulators:
eth-account recovers the key's own address from our EIP-191, EIP-712 and transaction
signatures, and no signature has a high s.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

import signers
from signers.algorithms import KeySpec
from signers.eth import EthSigner
from signers.eth.recoverable import SECP256K1_ORDER
from signers.signer import DigestSigner, KeyStore

from .support import MAIL, TX_1559, TX_LEGACY

STORES = ["file_store_uri", "softhsm_store_uri", "moto_store_uri", "azure_store_uri", "gcp_store_uri"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[KeyStore]:
    with signers.open_store(request.getfixturevalue(request.param)) as opened:
        yield opened


@pytest.fixture
def eth(store: KeyStore) -> EthSigner:
    signer = store.create_key(f"eth-{uuid.uuid4().hex[:8]}", KeySpec.SECP256K1)
    assert isinstance(signer, DigestSigner), f"{type(store).__name__} signers must sign digests"
    return EthSigner(signer)


def test_typed_data_recovers_the_key_address(eth: EthSigner) -> None:
    signature = eth.sign_typed_data(MAIL)
    assert Account.recover_message(encode_typed_data(full_message=MAIL), signature=signature) == eth.address


def test_personal_message_recovers_the_key_address(eth: EthSigner) -> None:
    signature = eth.sign_message("pay 1 USDC to acct-9")
    assert Account.recover_message(encode_defunct(text="pay 1 USDC to acct-9"), signature=signature) == eth.address


def test_transactions_decode_and_recover_the_sender(eth: EthSigner) -> None:
    for tx in (TX_1559, TX_LEGACY):
        signed = eth.account.sign_transaction(tx)
        assert Account.recover_transaction(signed.raw_transaction) == eth.address


def test_no_high_s_is_ever_returned(eth: EthSigner) -> None:
    for i in range(24):  # a back end returns high s about half the time: 24 tries all but prove normalisation
        sig = eth.sign_hash(bytes([i]) * 32)
        assert sig.s <= SECP256K1_ORDER // 2
        assert sig.v in (0, 1)
