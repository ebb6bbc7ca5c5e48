"""Agent passports: an issuer's signed statement about an agent (``typ: passport+jwt``).

A passport says who the agent is (``sub``, ``name``), which key it holds (``cnf.jwk``,
RFC 7800), what code it runs (``code_hash``) and how far it is trusted (``stage``,
``trust_score`` 0-100, ``scopes``). Verifiers check it offline with the issuer's JWKS
(and a revocation store or signed list).

Action tokens (`signers.tokens.action`) and proofs of possession
(`signers.tokens.possession`) are re-exported here, where they have always been imported from.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from json.encoder import encode_basestring as _quote
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack

from ..clock import DEFAULT_LEEWAY, epoch
from ..errors import ConfigError, KeyplaneError, TokenInvalid
from ..keys import PublicKey
from .action import ActionGrant, params_hash, sign_action, verify_action
from .issued_claims import (
    MAX_CLAIM_LENGTH,
    claim_time,
    issued_string,
    issued_strings,
    new_jti,
    registered_claims,
    ttl_seconds,
    verified_string,
)
from .jwk import KeySource, public_key_from_jwk
from .jws_sign import claims_json, json_text, sign_jws, sign_jws_async, sign_jwts
from .jws_verify import verify_jwt
from .passport_model import Passport
from .possession import Challenge, make_challenge, prove_possession, verify_possession
from .token_types import ACTION_TYP, PASSPORT_TYP, POP_TYP

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
    "PassportArguments",
    "PassportChecks",
    "code_hash_of",
    "issue_passport",
    "issue_passport_async",
    "issue_passports",
    "make_challenge",
    "params_hash",
    "passport_claims",
    "passport_payload",
    "prove_possession",
    "sign_action",
    "verify_action",
    "verify_passport",
    "verify_possession",
]

_CODE_HASH = re.compile(r"^(?:sha256:)?([0-9a-f]{64})\Z")  # \Z: "$" would let a trailing newline through
_ONE_DAY = timedelta(days=1)  # the default ttl, one object: `_direct_payload` knows its seconds without a check


def code_hash_of(code: bytes) -> str:
    """The ``code_hash`` claim for an agent's code: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(code).hexdigest()


class PassportArguments(TypedDict, total=False):
    """`issue_passport`'s keyword arguments, for one passport (`issue_passports` takes a list of them).

    ``sub`` and ``name`` (non-empty, at most 1024 characters), ``agent_key`` (written as
    ``cnf.jwk``), ``code_hash`` (``sha256:<64 hex>``), ``stage`` and ``trust_score`` (0-100)
    are required; ``scopes``, ``ttl`` (default one day), ``iss``, ``aud``, ``jti`` (default a
    random UUID), ``now`` and ``extra_claims`` (which may not overwrite a passport claim) are not.
    """

    sub: Required[str]
    name: Required[str]
    agent_key: Required[PublicKey]
    code_hash: Required[str]
    stage: Required[str]
    trust_score: Required[int]
    scopes: Iterable[str]
    ttl: float | timedelta
    iss: str | None
    aud: str | list[str] | None
    jti: str | None
    now: datetime | float | None
    extra_claims: Mapping[str, Any] | None


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
    ttl: float | timedelta = _ONE_DAY,
    iss: str | None = None,
    aud: str | list[str] | None = None,
    jti: str | None = None,
    now: datetime | float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """Issue a passport for the agent holding ``agent_key``, signed by the issuer's `signer`.

    The arguments are `PassportArguments`. Raises ConfigError for a malformed code_hash, a
    trust_score outside 0-100, empty or over-long (more than 1024 characters) strings, a
    bad ttl / now, an extra claim that would overwrite a passport claim; and what the
    Signer raises.

    The parameters are spelled out (no ``**arguments`` re-packed into `passport_claims`)
    and the payload is written by `_direct_payload` when every argument is plainly typed:
    issuing is then one pass of checks, one JSON text and one signature.
    """
    return sign_jws(signer, passport_payload(sub, name, agent_key, code_hash, stage, trust_score, scopes, ttl, iss,
                                             aud, jti, now, extra_claims), typ=PASSPORT_TYP, alg=alg)


async def issue_passport_async(signer: Signer, *, alg: str | None = None,
                               **arguments: Unpack[PassportArguments]) -> str:
    """`issue_passport` signed with ``await signer.sign_async`` (for code on an event loop).

    The same payload and header as `issue_passport` (Ed25519 tokens are equal byte for
    byte: tests/throughput/test_async_issuance.py); the claims are checked before anything
    is signed. Raises what `issue_passport` raises.
    """
    return await sign_jws_async(signer, passport_payload(**arguments), typ=PASSPORT_TYP, alg=alg)


def passport_payload(sub: str, name: str, agent_key: PublicKey, code_hash: str, stage: str, trust_score: int,
                     scopes: Iterable[str] = (), ttl: float | timedelta = _ONE_DAY, iss: str | None = None,
                     aud: str | list[str] | None = None, jti: str | None = None, now: datetime | float | None = None,
                     extra_claims: Mapping[str, Any] | None = None) -> bytes:
    """The JWS payload `issue_passport` signs (the arguments are `PassportArguments`), checked; ConfigError as it raises.

    Positional as well as by keyword, so `issue_passport` hands its arguments on without
    packing them into a dict; `issue_passport_async` passes `PassportArguments` by keyword.
    """
    scope_list = [scopes] if isinstance(scopes, str) else list(scopes)  # once: an iterator is read once
    payload = _direct_payload(sub, name, agent_key, code_hash, stage, trust_score, scope_list, ttl, iss, aud, jti,
                              now, extra_claims)
    if payload is None:  # an argument that is bad or not plainly typed: the general path checks and raises
        payload = passport_json(passport_claims(
            sub=sub, name=name, agent_key=agent_key, code_hash=code_hash, stage=stage, trust_score=trust_score,
            scopes=scope_list, ttl=ttl, iss=iss, aud=aud, jti=jti, now=now, extra_claims=extra_claims))
    return payload


def issue_passports(signer: Signer, passports: Iterable[Mapping[str, Any]], *, alg: str | None = None) -> list[str]:
    """Issue many passports with one `sign_many` call (one Transit batch, a spread over a pool).

    Each mapping holds `issue_passport`'s keyword arguments (sub, name, agent_key, ...;
    ``alg`` is given once, here). Every passport's claims are checked before anything is
    signed, so a bad one (ConfigError naming its index) signs none. Returns the tokens in
    the order given; raises BatchSignError (each item's signature or error) when the back end
    failed some of them, and what the Signer raises.
    """
    claims_list = []
    for index, arguments in enumerate(passports):
        try:
            claims_list.append(passport_claims(**arguments))
        except TypeError as e:  # a missing or unknown argument
            raise ConfigError(f"passport {index}: {e}") from None
        except ConfigError as e:
            raise ConfigError(f"passport {index}: {e}") from e
    return sign_jwts(signer, claims_list, typ=PASSPORT_TYP, alg=alg)


def passport_claims(
    *,
    sub: str,
    name: str,
    agent_key: PublicKey,
    code_hash: str,
    stage: str,
    trust_score: int,
    scopes: Iterable[str] = (),
    ttl: float | timedelta = _ONE_DAY,
    iss: str | None = None,
    aud: str | list[str] | None = None,
    jti: str | None = None,
    now: datetime | float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The claims `issue_passport` signs, checked; raises ConfigError as `issue_passport` does."""
    match = _CODE_HASH.match(code_hash) if isinstance(code_hash, str) else None
    if match is None:
        raise ConfigError("code_hash must be a SHA-256 hex digest ('sha256:<64 hex>' or 64 hex); see code_hash_of()")
    if isinstance(trust_score, bool) or not isinstance(trust_score, int) or not 0 <= trust_score <= 100:
        raise ConfigError("trust_score must be an integer from 0 to 100")
    if not isinstance(agent_key, PublicKey):
        raise ConfigError(f"agent_key must be a PublicKey, not {type(agent_key).__name__}")
    scope_list = [scopes] if isinstance(scopes, str) else list(scopes)
    if not issued_strings(sub, name, stage, *scope_list):
        for label, value in (("sub", sub), ("name", name), ("stage", stage), *(("scope", s) for s in scope_list)):
            issued_string(value, f"passport {label}")  # raises, naming the first bad one
    claims = registered_claims("passport", iss=iss, sub=sub, aud=aud, ttl=ttl, now=now, jti=jti)
    claims["name"] = name
    claims["cnf"] = {"jwk": agent_key.to_jwk()}
    claims["code_hash"] = "sha256:" + match.group(1)
    claims["stage"] = stage
    claims["trust_score"] = trust_score
    claims["scopes"] = scope_list
    if extra_claims:
        for key, value in extra_claims.items():
            if key in claims:
                raise ConfigError(f"extra claim {key!r} would overwrite a passport claim")
            claims[key] = value
    return claims


class PassportChecks(TypedDict, total=False):
    """`verify_passport`'s checks, by keyword, for a caller that hands them on (the agent layer).

    ``revocations``, ``audience``, ``issuer``, ``required_scopes``, ``min_trust_score``,
    ``code_hash``, ``leeway`` and ``now``, as `verify_passport` documents them.
    """

    revocations: RevocationCheck | None
    audience: str | Iterable[str] | None
    issuer: str | Iterable[str] | None
    required_scopes: Iterable[str]
    min_trust_score: int | None
    code_hash: str | None
    leeway: float
    now: datetime | float | None


def passport_json(claims: Mapping[str, Any]) -> bytes:
    """The payload bytes of checked passport claims: `claims_json`, the general path of `passport_payload`.

    A plainly typed passport is written by `_direct_payload` and never comes here; what
    does (an IntEnum score, a str subclass, a bad argument's error) gets the JSON encoder.
    """
    return claims_json(claims)


_AGENT_JWK: dict[PublicKey, str] = {}  # an agent key's cnf.jwk JSON text, serialised once per key
_CODE_HASHES: dict[str, str] = {}  # a code_hash argument the regex matched -> the claim ("sha256:<hex>")
_PASSPORT_NAMES = frozenset(("sub", "iat", "nbf", "exp", "jti", "name", "cnf", "code_hash", "stage", "trust_score",
                             "scopes"))


def _direct_payload(sub: Any, name: Any, agent_key: Any, code_hash: Any, stage: Any, trust_score: Any,
                    scopes: list[Any], ttl: Any, iss: Any, aud: Any, jti: Any, now: Any,
                    extra_claims: Mapping[str, Any] | None) -> bytes | None:
    """`claims_json(passport_claims(...))`, byte for byte, written straight from the arguments; None to decline.

    Every check `passport_claims` makes is made here in a form that only accepts (a
    code_hash the same regex matches, a trust_score of type int in 0-100, an agent key of
    type PublicKey, strings of type str of 1-1024 characters for sub / name / stage /
    scopes / iss / jti, an aud that is a str or a list of them, extra claims that do not
    overwrite one): any argument that fails one, or is only acceptable through a subclass
    (an IntEnum score, a str subclass), makes this return None, and `issue_passport` then
    takes the general path, which raises the very ConfigError it always raised, or writes
    the general bytes. The time checks (`epoch`, `ttl_seconds`) are the general path's own
    functions, called in its order once everything before them passed. No intermediate
    dict, no shape detection, and the agent key's JWK is serialised once per key.
    tests/throughput/test_direct_passport.py holds this to the general path's bytes and errors.
    """
    digest = _CODE_HASHES.get(code_hash) if type(code_hash) is str else None
    if digest is None and type(code_hash) is str:
        match = _CODE_HASH.match(code_hash)
        if match is not None:
            digest = "sha256:" + match.group(1)
            if len(_CODE_HASHES) >= 4096:
                _CODE_HASHES.clear()
            _CODE_HASHES[code_hash] = digest
    if (digest is None or type(trust_score) is not int or not 0 <= trust_score <= 100 or type(agent_key) is not PublicKey
            or type(sub) is not str or not 0 < len(sub) <= MAX_CLAIM_LENGTH
            or type(name) is not str or not 0 < len(name) <= MAX_CLAIM_LENGTH
            or type(stage) is not str or not 0 < len(stage) <= MAX_CLAIM_LENGTH
            or (iss is not None and (type(iss) is not str or not 0 < len(iss) <= MAX_CLAIM_LENGTH))
            or (jti is not None and (type(jti) is not str or not 0 < len(jti) <= MAX_CLAIM_LENGTH))):
        return None
    for scope in scopes:
        if type(scope) is not str or not 0 < len(scope) <= MAX_CLAIM_LENGTH:
            return None
    q = _quote
    if aud is None:
        aud_text = ""
    elif type(aud) is str:
        aud_text = f',"aud":{q(aud)}'
    elif type(aud) is list and all(type(a) is str for a in aud):
        aud_text = f',"aud":[{",".join(map(q, aud))}]'
    else:
        return None
    extra: Mapping[str, Any] = {}
    if extra_claims:
        extra = extra_claims if type(extra_claims) is dict else dict(extra_claims.items())
        for key in extra:
            if key in _PASSPORT_NAMES or (key == "iss" and iss is not None) or (key == "aud" and aud is not None):
                return None  # the general path names the claim it would overwrite
    issued = int(time.time()) if now is None else int(epoch(now))  # the general path's order: now, then ttl
    expires = issued + (86400 if ttl is _ONE_DAY else ttl_seconds(ttl))
    extra_text = "," + json_text(extra)[1:-1] if extra else ""  # after the time checks, as claims_json comes last
    jwk_text = _AGENT_JWK.get(agent_key)
    if jwk_text is None:
        jwk_text = claims_json(agent_key.to_jwk()).decode("utf-8")
        if len(_AGENT_JWK) >= 4096:
            _AGENT_JWK.clear()  # a bound, not an LRU
        _AGENT_JWK[agent_key] = jwk_text
    text = (f'{{"iss":{q(iss)},"sub":{q(sub)}' if iss is not None else f'{{"sub":{q(sub)}'
            ) + (f'{aud_text},"iat":{issued},"nbf":{issued},"exp":{expires},"jti":{q(jti or new_jti())},'
                 f'"name":{q(name)},"cnf":{{"jwk":{jwk_text}}},"code_hash":"{digest}",'
                 f'"stage":{q(stage)},"trust_score":{trust_score},"scopes":[{",".join(map(q, scopes))}]{extra_text}}}')
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate: the general path's error (same text, same position)
        raise ConfigError(f"claims are not JSON serialisable: {str(e)[:120]}") from e


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
    """Verify a passport offline against the issuer's keys.

    Raises TokenInvalid / TokenExpired / TokenRevoked saying why it is refused (including
    a missing scope, a low trust score or another code hash), ConfigError for bad options,
    and what `revocations` raises when it cannot answer (StateCorrupt, a stale list's
    TokenExpired).
    """
    if min_trust_score is not None and (
        isinstance(min_trust_score, bool) or not isinstance(min_trust_score, int) or not 0 <= min_trust_score <= 100
    ):
        raise ConfigError("min_trust_score must be an integer from 0 to 100")  # NaN would compare False: no check
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
        agent_key = public_key_from_jwk(cnf["jwk"])
    except KeyplaneError as e:  # ConfigError / AlgorithmNotSupported from a hostile JWK: the token is bad
        raise TokenInvalid(f"passport cnf.jwk is not a usable public key: {e}") from e
    for label in ("sub", "name", "stage", "jti"):
        verified_string(c, label, "passport")
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
        raise TokenInvalid(f"passport lacks required scope(s) {str(missing)[:200]}")
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
        issued_at=claim_time(c["iat"]),
        expires_at=claim_time(c["exp"]),
        issuer_kid=verified.kid,
        claims=c,
    )
