"""A code hash is exactly 64 hex digits (after an optional ``sha256:``): a trailing newline is refused.

Python's ``$`` matches before a final newline, so ``"sha256:<hex>\\n"`` used to pass the
check and be cut down silently; ``\\Z`` refuses it everywhere a code hash is read.
"""

from __future__ import annotations

import pytest

from backends.file import FileKeyStore
from signers.agents.errors import PolicyError
from signers.agents.lifecycle import Approvers, register
from signers.algorithms import KeySpec
from signers.errors import ConfigError, KeyplaneError, TokenInvalid
from signers.jose import JWKS
from signers.tokens.jws_sign import sign_jwt
from signers.tokens.passport import code_hash_of, issue_passport, verify_passport

GOOD = code_hash_of(b"agent code")


BAD = [GOOD + "\n", GOOD.removeprefix("sha256:") + "\n", GOOD + "\r\n", " " + GOOD]


@pytest.mark.parametrize("bad", BAD, ids=range(len(BAD)))
def test_issue_verify_and_register_refuse_a_code_hash_with_a_trailing_newline(file_store: FileKeyStore,
                                                                              bad: str) -> None:
    signer = file_store.create_key(f"strict-{BAD.index(bad)}", KeySpec.ED25519)
    arguments = {"sub": "a", "name": "a", "agent_key": signer.public_key, "stage": "ACTIVE", "trust_score": 1}
    with pytest.raises(ConfigError, match="code_hash"):
        issue_passport(signer, code_hash=bad, **arguments)  # type: ignore[arg-type]
    token = issue_passport(signer, code_hash=GOOD, **arguments)  # type: ignore[arg-type]
    with pytest.raises(TokenInvalid):
        verify_passport(token, JWKS.of(signer), code_hash=bad)  # the expected hash must be exact too
    claims = {"sub": "a", "iat": 1, "nbf": 1, "exp": 4102444800, "jti": "j", "name": "a",
              "cnf": {"jwk": signer.public_key.to_jwk()}, "code_hash": bad, "stage": "ACTIVE", "trust_score": 1,
              "scopes": []}
    forged = sign_jwt(signer, claims, typ="passport+jwt")
    with pytest.raises(TokenInvalid, match="code_hash"):
        verify_passport(forged, JWKS.of(signer))
    with pytest.raises((PolicyError, KeyplaneError)):
        register(signer, "agent-x", bad, Approvers.of({"registrar": [signer]}))
