"""Issuance with keys in other back ends: SoftHSM2 (PKCS#11) and OpenBao Transit.

The session fixtures `softhsm_store_uri` and `openbao_store_uri` (tests/fixtures/) start
the real services; each test here creates its own uniquely named keys in them. The
tokens are verified offline from a JWKS file, by PyJWT where it knows the algorithm,
and every signature also by `PublicKey.verify` (inside verify_jwt).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest

from signers import KeySpec, TokenInvalid, TokenRevoked
from signers.audit import AuditedSigner, open_audit_log, verify_chain
from signers.jose import JWKS, sign_jwt, verify_jwt
from signers.passport import (
    code_hash_of,
    issue_passport,
    make_challenge,
    prove_possession,
    sign_action,
    verify_action,
    verify_passport,
    verify_possession,
)
from signers.revocation import RevocationList, SQLiteRevocationStore, issue_revocation_list

from .conftest import backend_store

# (fixture, key spec) pairs: what each service signs in its local form.
CASES = [
    ("softhsm_store_uri", KeySpec.ED25519),
    ("softhsm_store_uri", KeySpec.P256),
    ("openbao_store_uri", KeySpec.ED25519),
    ("openbao_store_uri", KeySpec.P256),
    ("openbao_store_uri", KeySpec.ML_DSA_65),
]


@pytest.fixture
def backend_issuer(request: pytest.FixtureRequest) -> Iterator[Any]:
    fixture, spec = request.param
    store = backend_store(request, fixture)
    name = f"issuance-{spec.value.lower()}-{uuid.uuid4().hex[:8]}"
    try:
        if not store.capabilities.supports(spec):
            pytest.skip(f"{store.uri} does not offer {spec.value}")
        yield store.create_key(name, spec)
    finally:
        with contextlib.suppress(Exception):  # cleanup only: the dev server or test token is thrown away anyway
            store.delete_key(name)
        store.close()


def _id(case: tuple[str, KeySpec]) -> str:
    return f"{case[0].split('_')[0]}-{case[1].value}"


@pytest.mark.parametrize("backend_issuer", CASES, ids=[_id(c) for c in CASES], indirect=True)
def test_passport_and_action_from_a_backend_key(
    backend_issuer: Any, keys: dict[str, Any], tmp_path: Path
) -> None:
    issuer, agent = backend_issuer, keys["agent"]
    jwks_file = tmp_path / "issuer-jwks.json"
    JWKS.of(issuer).write(jwks_file)
    offline = JWKS.load(jwks_file)

    token = issue_passport(issuer, sub="agent:hsm", name="HSM-issued agent", agent_key=agent.public_key,
                           code_hash=code_hash_of(b"agent"), stage="production", trust_score=90,
                           scopes=["pay"], iss="https://issuer.test")
    passport = verify_passport(token, offline, issuer="https://issuer.test")
    assert passport.issuer_kid == issuer.key_id and passport.agent_key == agent.public_key

    challenge = make_challenge("https://bank.test")
    verify_possession(prove_possession(agent, challenge), passport, challenge)

    params = {"to": "acct-1", "amount": 10}
    action = sign_action(issuer, passport.sub, "pay", params, jti=f"act-{uuid.uuid4()}")
    grant = verify_action(action, offline, "pay", params)
    with pytest.raises(TokenInvalid, match="params mismatch"):
        verify_action(action, offline, "pay", {**params, "amount": 1000})
    with SQLiteRevocationStore(tmp_path / "revocations.db") as revocations:
        revocations.revoke(grant.jti, reason="test")
        with pytest.raises(TokenRevoked, match="revoked"):
            verify_action(action, offline, "pay", params, revocations=revocations)
        signed_list = RevocationList.load(issue_revocation_list(issuer, revocations, issuer="i"), offline, issuer="i")
        assert signed_list.is_revoked(grant.jti)


@pytest.mark.parametrize("backend_issuer", [c for c in CASES if c[1] is not KeySpec.ML_DSA_65],
                         ids=[_id(c) for c in CASES if c[1] is not KeySpec.ML_DSA_65], indirect=True)
def test_pyjwt_verifies_backend_tokens(backend_issuer: Any) -> None:
    now = int(time.time())
    claims = {"sub": "x", "aud": "svc", "iat": now, "exp": now + 60}
    token = sign_jwt(backend_issuer, claims)
    decoded = pyjwt.decode(token, backend_issuer.public_key.key, algorithms=[backend_issuer.algorithm.jose_name],
                           audience="svc")
    assert decoded == claims
    assert verify_jwt(token, JWKS.of(backend_issuer), audience="svc").claims == claims


@pytest.mark.parametrize("backend_issuer", CASES[:1] + CASES[2:3], ids=[_id(CASES[0]), _id(CASES[2])], indirect=True)
def test_audited_backend_signer(backend_issuer: Any, tmp_path: Path) -> None:
    with open_audit_log(tmp_path / "audit.db") as log:
        audited = AuditedSigner(backend_issuer, log, checkpoint_every=2)
        for i in range(5):
            sign_jwt(audited, {"i": i, "exp": 4_000_000_000})
    result = verify_chain(tmp_path / "audit.db", backend_issuer.public_key)
    assert result.ok and result.checkpoints_verified == 2
