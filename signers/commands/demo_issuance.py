"""The issuance part of ``keyplane demo``: passport, offline verification, action token, revocation.

Runs after the demo has made its keys (see `signers.commands.demo`); uses the ML-DSA-65
key as the issuer, so the passport is post-quantum signed, and proves that a verifier
with nothing but the issuer's JWKS file accepts the passport and then refuses a revoked
action token with "revoked".
"""

from __future__ import annotations

from typing import Any

from ..algorithms import KeySpec
from ..errors import TokenRevoked
from ..jose import JWKS
from ..passport import (
    code_hash_of,
    issue_passport,
    make_challenge,
    prove_possession,
    sign_action,
    verify_action,
    verify_passport,
    verify_possession,
)
from ..revocation import SQLiteRevocationStore
from ..tokens.replay import MemoryReplayCache

__all__ = ["run"]


def run(ctx: Any) -> None:
    """Add the issuance steps to `ctx` (a `signers.commands.demo.DemoContext`); raises KeyplaneError on failure."""
    issuer = ctx.signers["demo-mldsa65"]
    agent = ctx.store.create_key("demo-agent", KeySpec.ED25519)
    ctx.signers["demo-agent"] = agent
    ctx.step("created the agent's own Ed25519 key 'demo-agent'", key_id=agent.key_id)

    passport = issue_passport(
        issuer,
        sub="agent:demo-payments",
        name="Demo payments agent",
        agent_key=agent.public_key,
        code_hash=code_hash_of(b"def main(): pay()\n"),
        stage="production",
        trust_score=82,
        scopes=["payments:send"],
        ttl=3600,
        iss="https://issuer.demo.keyplane",
    )
    ctx.step("issued an agent passport signed with ML-DSA-65", alg=issuer.algorithm.jose_name,
             token_bytes=len(passport))

    jwks_file = ctx.directory / "issuer-jwks.json"
    JWKS.of(issuer).write(jwks_file)
    offline_keys = JWKS.load(jwks_file)  # from here on the verifier has only this file
    verified = verify_passport(passport, offline_keys, issuer="https://issuer.demo.keyplane",
                               required_scopes=["payments:send"])
    ctx.step(f"verified the passport offline from {jwks_file.name} alone", sub=verified.sub,
             trust_score=verified.trust_score, agent_key=verified.agent_key.key_id)

    challenge = make_challenge("https://bank.demo.keyplane")
    verify_possession(prove_possession(agent, challenge, sub=verified.sub), verified, challenge,
                      replay_cache=MemoryReplayCache())  # the demo leaves nothing behind in ~/.local/state
    ctx.step("the agent proved it holds the passport's key (signed a fresh challenge)")

    params = {"to": "acct-4711", "amount": "25.00", "currency": "EUR"}
    action = sign_action(issuer, verified.sub, "payments.send", params, ttl=300, passport_jti=verified.jti)
    grant = verify_action(action, offline_keys, "payments.send", params)
    ctx.step("signed an action token for payments.send and verified it", jti=grant.jti,
             expires=grant.expires_at.isoformat())

    with SQLiteRevocationStore(ctx.directory / "revocations.db") as revocations:
        revocations.revoke(grant.jti, reason="demo: payment cancelled")
        try:
            verify_action(action, offline_keys, "payments.send", params, revocations=revocations)
        except TokenRevoked as e:
            ctx.step("revoked the action token; verification now fails", error=f"TokenRevoked: {e}")
        else:  # pragma: no cover - would be a bug in revocation checking
            raise AssertionError("a revoked action token verified")
