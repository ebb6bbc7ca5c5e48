"""Bad input to the Ethereum layer: a typed error each time, and nothing signed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import signers
from signers.algorithms import KeySpec
from signers.errors import AlgorithmNotSupported, ConfigError, InvalidSignature
from signers.eth import Authorization, EthSigner, SpendLimit, SpendLimitExceeded, sign_authorization, sign_hash
from signers.eth.recoverable import SECP256K1_ORDER, recover_address
from signers.eth.x402 import pay
from signers.signer import Signer

from .support import MAIL, MAIL_DIGEST, PAY_TO, USDC_BASE_SEPOLIA
from .test_payments import _required


class Counting:
    """Wraps a Signer and counts digest signatures, to prove a refusal signed nothing."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.public_key, self.key_id, self.algorithm, self.uri = inner.public_key, inner.key_id, inner.algorithm, inner.uri

    def sign(self, message: bytes) -> bytes:
        return bytes(self.inner.sign(message))

    async def sign_async(self, message: bytes) -> bytes:
        return bytes(await self.inner.sign_async(message))

    def sign_digest(self, digest: bytes) -> bytes:
        self.calls += 1
        return bytes(self.inner.sign_digest(digest))


@pytest.fixture
def counted(file_store_uri: str) -> Iterator[Counting]:
    with signers.open_store(file_store_uri) as store:
        yield Counting(store.create_key("wallet", KeySpec.SECP256K1))


def _auth(eth: EthSigner, *, value: int = 10, valid_before: int | None = None) -> Authorization:
    return Authorization(eth.address, PAY_TO, value, 0, valid_before or int(time.time()) + 600)


def _sign(eth: EthSigner, auth: Authorization, **kw: Any) -> bytes:
    args: dict[str, Any] = {"token_name": "USDC", "token_version": "2", "chain_id": 84532,
                            "token_address": USDC_BASE_SEPOLIA, **kw}
    return sign_authorization(eth, auth, **args)


def test_eip712_digest_is_the_specifications(counted: Counting) -> None:
    assert EthSigner(counted).typed_data_hash(MAIL).hex() == MAIL_DIGEST  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_a_digest_of_the_wrong_length(counted: Counting, length: int) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        sign_hash(counted, b"\x01" * length)  # type: ignore[arg-type]
    assert counted.calls == 0


@pytest.mark.parametrize("spec", [KeySpec.P256, KeySpec.ED25519])
def test_a_key_that_is_not_secp256k1(file_store_uri: str, spec: KeySpec) -> None:
    with signers.open_store(file_store_uri) as store:
        signer: Signer = store.create_key(f"k-{spec.value}", spec)
        with pytest.raises(AlgorithmNotSupported, match="secp256k1"):
            EthSigner(signer)
        with pytest.raises(AlgorithmNotSupported):
            sign_hash(signer, b"\x00" * 32)


@pytest.mark.parametrize("typed", [
    {"types": {}, "domain": {}, "message": {}},  # no primaryType
    {**MAIL, "primaryType": "Nope"},
    {**MAIL, "message": {"from": "not a person"}},
    "a string",
])
def test_malformed_typed_data(counted: Counting, typed: Any) -> None:
    with pytest.raises(ConfigError):
        EthSigner(counted).sign_typed_data(typed)  # type: ignore[arg-type]
    assert counted.calls == 0


def test_chain_id_mismatch(counted: Counting) -> None:
    eth = EthSigner(counted)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="chain id mismatch"):
        _sign(eth, _auth(eth), expected_chain_id=8453)
    assert counted.calls == 0


def test_expired_authorization_window(counted: Counting) -> None:
    eth = EthSigner(counted)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="window has closed"):
        _sign(eth, _auth(eth, valid_before=int(time.time()) - 1))
    assert counted.calls == 0


def test_amount_above_the_passport_limit(counted: Counting) -> None:
    eth = EthSigner(counted)  # type: ignore[arg-type]
    with pytest.raises(SpendLimitExceeded):
        _sign(eth, _auth(eth, value=1001), limits=[SpendLimit(USDC_BASE_SEPOLIA, 1000)], asset=USDC_BASE_SEPOLIA)
    with pytest.raises(SpendLimitExceeded):
        pay(eth, _required("5001"), passport_claims={"wallet": eth.address,
                                                     "spend_limit": [SpendLimit(USDC_BASE_SEPOLIA, 5000).to_claim()]})
    with pytest.raises(SpendLimitExceeded, match="no spending"):
        pay(eth, _required("1"), passport_claims={"wallet": eth.address, "spend_limit": []})
    assert counted.calls == 0


def test_a_passport_for_another_wallet(counted: Counting) -> None:
    eth = EthSigner(counted)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="wallet"):
        pay(eth, _required(), passport_claims={"wallet": PAY_TO})
    assert counted.calls == 0


def test_from_must_be_this_key(counted: Counting) -> None:
    eth = EthSigner(counted)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not this key's address"):
        _sign(eth, Authorization(PAY_TO, PAY_TO, 1, 0, int(time.time()) + 60))
    assert counted.calls == 0


@pytest.mark.parametrize("fields", [
    {"value": -1}, {"value": 2**256}, {"valid_before": 0, "valid_after": 5}, {"nonce": b"short"}, {"to": "0x1234"},
])
def test_malformed_authorization(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {"from_address": PAY_TO, "to": PAY_TO, "value": 1, "valid_after": 0, "valid_before": 10}
    with pytest.raises(ConfigError):
        Authorization(**{**base, **fields})


def test_a_back_end_signing_with_another_key_is_refused(file_store_uri: str) -> None:
    with signers.open_store(file_store_uri) as store:
        mine = Counting(store.create_key("mine", KeySpec.SECP256K1))
        other = store.create_key("other", KeySpec.SECP256K1)
    mine.inner = other  # the back end now answers with another key's signature
    with pytest.raises(InvalidSignature):
        sign_hash(mine, b"\x07" * 32)  # type: ignore[arg-type]


def test_recover_refuses_garbage() -> None:
    with pytest.raises(InvalidSignature):
        recover_address(b"\x00" * 32, b"\x00" * 64)
    with pytest.raises(InvalidSignature):
        recover_address(b"\x00" * 32, b"\x00" * 64 + b"\x05")


def test_the_eip712_example_key_recovers_the_example_address(file_store_uri: str) -> None:
    """Known answer: EIP-712's example signer (private key keccak256("cow")) imported into the file store."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from eth_account import Account
    from eth_account.messages import encode_typed_data
    from eth_utils import keccak

    from signers.signer import ImportingKeyStore

    from .support import COW_ADDRESS

    key = ec.derive_private_key(int.from_bytes(keccak(b"cow"), "big"), ec.SECP256K1())
    with signers.open_store(file_store_uri) as store:
        assert isinstance(store, ImportingKeyStore)
        eth = EthSigner(store.import_key("cow", key))
        assert eth.address == COW_ADDRESS
        signature = eth.sign_typed_data(MAIL)
    assert Account.recover_message(encode_typed_data(full_message=MAIL), signature=signature) == COW_ADDRESS


class _Answers:
    """A back end that returns fixed bytes for every digest (a forged or broken HSM)."""

    def __init__(self, inner: Any, answer: bytes) -> None:
        self.public_key, self.key_id, self.algorithm, self.uri = inner.public_key, inner.key_id, inner.algorithm, inner.uri
        self.answer = answer

    def sign_digest(self, digest: bytes) -> bytes:
        return self.answer


@pytest.mark.parametrize("answer", [
    encode_dss_signature(12345, 67890),  # well-formed DER, not a signature by this key
    encode_dss_signature(SECP256K1_ORDER, 1),  # r out of range
    encode_dss_signature(1, 0),  # s zero
    b"\x30\x03\x02\x01",  # not DER
])
def test_a_forged_or_malformed_back_end_signature_is_refused(counted: Counting, answer: bytes) -> None:
    with pytest.raises(InvalidSignature):
        sign_hash(_Answers(counted.inner, answer), b"\x07" * 32)  # type: ignore[arg-type]
