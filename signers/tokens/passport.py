"""Agent passports, action tokens and proof of possession, on top of `signers.jose`.

- A **passport** (``typ: passport+jwt``) is an issuer's statement about an agent: who it
  is (``sub``, ``name``), which key it holds (``cnf.jwk``, RFC 7800), what code it runs
  (``code_hash``), how far it is trusted (``stage``, ``trust_score`` 0-100, ``scopes``).
  Verifiers check it offline with the issuer's JWKS (and a revocation store or signed list).
- An **action token** (``typ: action+jwt``) authorises one action: ``action`` plus
  ``params_hash``, the SHA-256 of the canonical JSON of its parameters, so changing
  ``to`` or ``amount`` breaks it. It is short-lived (300 s) and revocable by ``jti``.
- **Proof of possession** (``typ: pop+jwt``): the agent signs the verifier's challenge
  (nonce, audience, time) with its own Signer; the verifier checks it against the key the
  passport names, so a stolen passport alone is worth nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TokenExpired, TokenInvalid
from ..keys import PublicKey, b64url_encode
from .jose import (
    DEFAULT_LEEWAY,
    KeySource,
    canonical_json,
    epoch,
    sign_jwt,
    verify_jwt,
)

if TYPE_CHECKING:
    from ..signer import Signer
    from .revocation import RevocationCheck

__all__ = [
    "ACTION_TYP",
    "PASSPORT_TYP",
    "POP_TYP",
    "ActionGrant",
    "Challenge",
    "Passport",
    "code_hash_of",
    "issue_passport",
    "make_challenge",
    "params_hash",
    "prove_possession",
    "sign_action",
    "verify_action",
    "verify_passport",
    "verify_possession",
]

PASSPORT_TYP = "passport+jwt"
ACTION_TYP = "action+jwt"
POP_TYP = "pop+jwt"
_CODE_HASH = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def code_hash_of(code: bytes) -> str:
    """The ``code_hash`` claim for an agent's code: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(code).hexdigest()


def params_hash(params: Mapping[str, Any]) -> str:
    """The ``params_hash`` claim: base64url SHA-256 of the canonical JSON of `params`."""
    return b64url_encode(hashlib.sha256(canonical_json(params)).digest())


def _seconds(ttl: float | timedelta) -> int:
    seconds = int(ttl.total_seconds() if isinstance(ttl, timedelta) else ttl)
    if seconds <= 0:
        raise ConfigError("ttl must be at least one second")
    return seconds


def _time_claims(ttl: float | timedelta, now: datetime | float | None, jti: str | None) -> dict[str, Any]:
    issued = int(epoch(now))
    return {"iat": issued, "nbf": issued, "exp": issued + _seconds(ttl), "jti": jti or str(uuid.uuid4())}


def _dt(value: Any) -> datetime:
    """A verified NumericDate as a datetime; years beyond 9999 are refused, not crashed on."""
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError, TypeError) as e:
        raise TokenInvalid(f"time claim {value!r} is out of range") from e


# -- passports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Passport:
    """A verified passport's contents."""

    sub: str
    name: str
    agent_key: PublicKey
    code_hash: str
    stage: str
    trust_score: int
    scopes: tuple[str, ...]
    iss: str | None
    jti: str
    issued_at: datetime
    expires_at: datetime
    issuer_kid: str
    claims: dict[str, Any]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def issue_passport(
    signer: Signer,
    *,
    sub: str,
    name: str,
    agent_key: PublicKey,
    code_hash: str,
    stage: str,
    trust_score: int,
    scopes: Iterable[str] = (),
    ttl: float | timedelta = timedelta(days=1),
    iss: str | None = None,
    aud: str | list[str] | None = None,
    jti: str | None = None,
    now: datetime | float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """Issue a passport for the agent holding `agent_key`, signed by the issuer's `signer`."""
    match = _CODE_HASH.match(code_hash) if isinstance(code_hash, str) else None
    if match is None:
        raise ConfigError("code_hash must be a SHA-256 hex digest ('sha256:<64 hex>' or 64 hex); see code_hash_of()")
    if isinstance(trust_score, bool) or not isinstance(trust_score, int) or not 0 <= trust_score <= 100:
        raise ConfigError("trust_score must be an integer from 0 to 100")
    scope_list = [scopes] if isinstance(scopes, str) else list(scopes)
    for label, value in (("sub", sub), ("name", name), ("stage", stage), *(("scope", s) for s in scope_list)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"passport {label} must be a non-empty string")
    claims: dict[str, Any] = {}
    if iss is not None:
        claims["iss"] = iss
    claims["sub"] = sub
    if aud is not None:
        claims["aud"] = aud
    claims.update(_time_claims(ttl, now, jti))
    claims.update(
        {
            "name": name,
            "cnf": {"jwk": agent_key.to_jwk()},
            "code_hash": "sha256:" + match.group(1),
            "stage": stage,
            "trust_score": trust_score,
            "scopes": scope_list,
        }
    )
    for key, value in (extra_claims or {}).items():
        if key in claims:
            raise ConfigError(f"extra claim {key!r} would overwrite a passport claim")
        claims[key] = value
    return sign_jwt(signer, claims, typ=PASSPORT_TYP, alg=alg)


def verify_passport(
    token: str | bytes,
    issuer_keys: KeySource,
    *,
    revocations: RevocationCheck | None = None,
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    required_scopes: Iterable[str] = (),
    min_trust_score: int | None = None,
    code_hash: str | None = None,
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
) -> Passport:
    """Verify a passport offline against the issuer's keys; raises a TokenError saying why it is refused."""
    verified = verify_jwt(
        token,
        issuer_keys,
        typ=PASSPORT_TYP,
        audience=audience,
        issuer=issuer,
        require=("sub", "exp", "iat", "jti", "cnf", "name", "code_hash", "stage", "trust_score", "scopes"),
        leeway=leeway,
        now=now,
        revocations=revocations,
    )
    c = verified.claims
    cnf = c["cnf"]
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise TokenInvalid("passport claim 'cnf' must hold a 'jwk' object (RFC 7800)")
    try:
        agent_key = PublicKey.from_jwk(cnf["jwk"])
    except Exception as e:  # ConfigError / AlgorithmNotSupported from a hostile JWK: the token is bad
        raise TokenInvalid(f"passport cnf.jwk is not a usable public key: {e}") from e
    for label in ("sub", "name", "stage", "jti"):
        if not isinstance(c[label], str) or not c[label]:
            raise TokenInvalid(f"passport claim {label!r} must be a non-empty string")
    score = c["trust_score"]
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 100:
        raise TokenInvalid("passport claim 'trust_score' must be an integer from 0 to 100")
    scopes = c["scopes"]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TokenInvalid("passport claim 'scopes' must be a list of strings")
    if not isinstance(c["code_hash"], str) or not _CODE_HASH.match(c["code_hash"]):
        raise TokenInvalid("passport claim 'code_hash' is not a SHA-256 digest")
    missing = [s for s in required_scopes if s not in scopes]
    if missing:
        raise TokenInvalid(f"passport lacks required scope(s) {missing}")
    if min_trust_score is not None and score < min_trust_score:
        raise TokenInvalid(f"passport trust_score {score} is below the required {min_trust_score}")
    if code_hash is not None:
        wanted = _CODE_HASH.match(code_hash)
        if wanted is None or not hmac.compare_digest(c["code_hash"].removeprefix("sha256:"), wanted.group(1)):
            raise TokenInvalid("passport code_hash does not match the agent's code")
    iss = c.get("iss")
    return Passport(
        sub=c["sub"],
        name=c["name"],
        agent_key=agent_key,
        code_hash=c["code_hash"],
        stage=c["stage"],
        trust_score=score,
        scopes=tuple(scopes),
        iss=iss if isinstance(iss, str) else None,
        jti=c["jti"],
        issued_at=_dt(c["iat"]),
        expires_at=_dt(c["exp"]),
        issuer_kid=verified.kid,
        claims=c,
    )


# -- action tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class ActionGrant:
    """A verified action token: who may do which action, until when."""

    sub: str
    action: str
    params_hash: str
    jti: str
    expires_at: datetime
    signer_kid: str
    claims: dict[str, Any]


def sign_action(
    signer: Signer,
    sub: str,
    action: str,
    params: Mapping[str, Any],
    ttl: float | timedelta = 300,
    *,
    iss: str | None = None,
    aud: str | list[str] | None = None,
    jti: str | None = None,
    passport_jti: str | None = None,
    now: datetime | float | None = None,
    alg: str | None = None,
) -> str:
    """A short-lived token authorising `sub` to perform `action` with exactly `params`.

    The signer is the authority granting the action (or the agent itself, verified then
    against its passport's ``cnf`` key). `passport_jti` links the grant to a passport.
    """
    for label, value in (("sub", sub), ("action", action)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"action token {label} must be a non-empty string")
    if not isinstance(params, Mapping):
        raise ConfigError("action params must be a JSON object (a mapping)")
    claims: dict[str, Any] = {}
    if iss is not None:
        claims["iss"] = iss
    claims["sub"] = sub
    if aud is not None:
        claims["aud"] = aud
    claims.update(_time_claims(ttl, now, jti))
    claims.update({"action": action, "params_hash": params_hash(params)})
    if passport_jti is not None:
        claims["passport_jti"] = passport_jti
    return sign_jwt(signer, claims, typ=ACTION_TYP, alg=alg)


def verify_action(
    token: str | bytes,
    keys: KeySource,
    action: str,
    params: Mapping[str, Any],
    *,
    revocations: RevocationCheck | None = None,
    subject: str | None = None,
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
) -> ActionGrant:
    """Verify that `token` authorises exactly `action` with exactly `params`."""
    verified = verify_jwt(
        token,
        keys,
        typ=ACTION_TYP,
        audience=audience,
        issuer=issuer,
        subject=subject,
        require=("sub", "exp", "jti", "action", "params_hash"),
        leeway=leeway,
        now=now,
        revocations=revocations,
    )
    c = verified.claims
    if c["action"] != action:
        raise TokenInvalid(f"action mismatch: token authorises {str(c['action'])[:80]!r}, not {action[:80]!r}")
    if not isinstance(c["params_hash"], str) or not hmac.compare_digest(c["params_hash"], params_hash(params)):
        raise TokenInvalid("params mismatch: the action's parameters differ from those the token authorises")
    if not isinstance(c["sub"], str) or not isinstance(c["jti"], str):
        raise TokenInvalid("action token sub and jti must be strings")
    return ActionGrant(c["sub"], action, c["params_hash"], c["jti"], _dt(c["exp"]), verified.kid, c)


# -- proof of possession -----------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """What a verifier sends an agent: a fresh nonce for one audience (the verifier itself)."""

    nonce: str
    audience: str
    issued_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"nonce": self.nonce, "aud": self.audience, "iat": int(self.issued_at)}


def make_challenge(audience: str, *, now: datetime | float | None = None) -> Challenge:
    """A challenge with a 256-bit random nonce; keep it until the proof comes back."""
    if not isinstance(audience, str) or not audience:
        raise ConfigError("challenge audience must be a non-empty string")
    return Challenge(secrets.token_urlsafe(32), audience, epoch(now))


def prove_possession(
    agent_signer: Signer,
    challenge: Challenge,
    *,
    sub: str | None = None,
    ttl: float = 60,
    now: datetime | float | None = None,
) -> str:
    """The agent's answer: a short JWT over the challenge, signed with the key its passport names."""
    issued = int(epoch(now))
    claims: dict[str, Any] = {"aud": challenge.audience, "nonce": challenge.nonce, "iat": issued}
    claims["exp"] = issued + _seconds(ttl)
    if sub is not None:
        claims["sub"] = sub
    return sign_jwt(agent_signer, claims, typ=POP_TYP)


def verify_possession(
    proof: str | bytes,
    passport: Passport,
    challenge: Challenge,
    *,
    max_age: float = 120,
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
) -> None:
    """TokenError unless `proof` answers `challenge` and is signed by the passport's ``cnf`` key."""
    verified = verify_jwt(
        proof,
        passport.agent_key,
        typ=POP_TYP,
        audience=challenge.audience,
        require=("exp", "iat", "nonce"),
        leeway=leeway,
        now=now,
    )
    nonce = verified.claims["nonce"]
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), challenge.nonce.encode()):
        raise TokenInvalid("proof of possession answers a different challenge (nonce mismatch)")
    if epoch(now) - challenge.issued_at > max_age + leeway:
        raise TokenExpired("proof of possession answers a challenge that has expired")
    sub = verified.claims.get("sub")
    if sub is not None and sub != passport.sub:
        raise TokenInvalid("proof of possession is for another agent (sub mismatch)")
