"""Async issuance writes what sync issuance writes, checks what it checks, and signs nothing it refuses.

Ed25519 signatures are deterministic, so for an Ed25519 key the async token must equal the
sync token byte for byte; for P-256 the signing inputs must be equal and the signature must
verify (with `cryptography`, through the PublicKey).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from backends.file import FileKeyStore
from signers.agents import passports as agent_passports
from signers.agents.lifecycle import Approvers, register
from signers.algorithms import KeySpec
from signers.errors import ConfigError
from signers.keys import PublicKey, b64url_decode
from signers.local_keys import generate_private_key
from signers.tokens.jws_sign import sign_jws, sign_jws_async, sign_jwt, sign_jwt_async
from signers.tokens.passport import code_hash_of, issue_passport, issue_passport_async

AGENT = PublicKey(generate_private_key(KeySpec.ED25519).public_key())
ARGUMENTS: dict[str, Any] = {"sub": "agent-1", "name": "Agent ünï", "agent_key": AGENT, "code_hash": code_hash_of(b"x"),
                             "stage": "ACTIVE", "trust_score": 80, "scopes": ["read"], "iss": "https://issuer",
                             "now": 1_800_000_000, "jti": "fixed-jti"}


class Counting:
    """A signer wrapper that counts signatures (sync and async), so 'nothing was signed' is observed."""

    def __init__(self, signer: Any) -> None:
        self.signer = signer
        self.calls = 0
        self.key_id, self.algorithm, self.uri = signer.key_id, signer.algorithm, signer.uri
        self.public_key = signer.public_key

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        return bytes(self.signer.sign(message))

    async def sign_async(self, message: bytes) -> bytes:
        self.calls += 1
        return bytes(await self.signer.sign_async(message))


def _same(sync_token: str, async_token: str, signer: Any) -> None:
    if signer.public_key.spec is KeySpec.ED25519:
        assert async_token == sync_token
        return
    signing_input, _, signature = async_token.rpartition(".")
    assert signing_input == sync_token.rpartition(".")[0]
    raw = b64url_decode(signature)
    from signers.signature_format import ecdsa_raw_to_der

    signer.public_key.verify(ecdsa_raw_to_der(raw), signing_input.encode(), signer.algorithm)


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.P256], ids=str)
def test_async_tokens_are_the_sync_tokens(file_store: FileKeyStore, spec: KeySpec) -> None:
    signer = file_store.create_key(f"async-issuance-{spec.name.lower()}", spec)
    _same(issue_passport(signer, **ARGUMENTS), asyncio.run(issue_passport_async(signer, **ARGUMENTS)), signer)
    claims = {"sub": "a", "exp": 4102444800, "nested": {"ü": [1, 2]}}
    _same(sign_jwt(signer, claims), asyncio.run(sign_jwt_async(signer, claims)), signer)
    _same(sign_jws(signer, b"raw payload", typ="x+jwt", header={"cty": "y"}),
          asyncio.run(sign_jws_async(signer, b"raw payload", typ="x+jwt", header={"cty": "y"})), signer)


def test_async_agent_passport_is_the_sync_one(file_store: FileKeyStore) -> None:
    signer = file_store.create_key("async-agent", KeySpec.ED25519)
    history = register(signer, "agent-7", code_hash_of(b"code"), Approvers.of({"registrar": [signer]}))
    options: dict[str, Any] = {"name": "seven", "agent_key": AGENT, "trust_score": 55, "groups": ["g2", "g1"],
                               "now": 1_800_000_000, "jti": "j-7", "iss": "https://issuer",
                               "status": {"status_list": {"idx": 3, "uri": "https://issuer/statuslists/1"}}}
    sync_token = agent_passports.issue_agent_passport(signer, history, **options)
    assert asyncio.run(agent_passports.issue_agent_passport_async(signer, history, **options)) == sync_token


@pytest.mark.parametrize("bad", [{"trust_score": 101}, {"code_hash": "md5:00"}, {"sub": ""}, {"name": "x" * 1025},
                                 {"ttl": 0}, {"extra_claims": {"sub": "other"}}], ids=range(6))
def test_what_sync_refuses_async_refuses_and_signs_nothing(file_store: FileKeyStore, bad: dict[str, Any]) -> None:
    signer = Counting(file_store.create_key(f"async-refuse-{len(bad)}-{next(iter(bad))}", KeySpec.ED25519))
    arguments = {**ARGUMENTS, **bad}
    with pytest.raises(ConfigError) as sync_error:
        issue_passport(signer, **arguments)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as async_error:
        asyncio.run(issue_passport_async(signer, **arguments))  # type: ignore[arg-type]
    assert str(async_error.value) == str(sync_error.value)
    assert signer.calls == 0


def test_agent_passport_options_are_the_arguments_function_s_keywords() -> None:
    table = agent_passports.AgentPassportOptions
    keys = table.__required_keys__ | table.__optional_keys__
    parameters = inspect.signature(agent_passports.agent_passport_arguments).parameters.values()
    assert set(keys) == {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
