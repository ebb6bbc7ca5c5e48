"""Lean issuance (issue 21 item 4) without losing a check.

`sign_jws` checks, serialises and encodes a protected header once per (key_id, algorithm,
typ, alg) and reuses it; these tests show the reuse never crosses keys, types or alg
spellings, that what was refused is refused every time, and that the keyword tables the
agent layer hands on (`PassportArguments`, `PassportChecks`, `ActionArguments`,
`ActionChecks`) stay exactly the functions' own parameters.
"""

from __future__ import annotations

import inspect
import json
import typing
import uuid

import pytest

from backends.file import FileKeyStore
from signers.algorithms import KeySpec
from signers.errors import ConfigError
from signers.keys import PublicKey, b64url_decode
from signers.local_keys import generate_private_key
from signers.tokens import action, passport
from signers.tokens.issued_claims import new_jti
from signers.tokens.jws_sign import claims_json, sign_jws, sign_jwt, sign_jwts
from signers.tokens.jws_verify import verify_jwt


def _header(token: str) -> dict[str, typing.Any]:
    return dict(json.loads(b64url_decode(token.split(".", 1)[0])))


def test_the_reused_header_is_each_key_s_and_each_type_s(file_store: FileKeyStore) -> None:
    ed = file_store.create_key("ed", KeySpec.ED25519)
    p256 = file_store.create_key("p256", KeySpec.P256)
    p384 = file_store.create_key("p384", KeySpec.P384)
    for _ in range(2):  # the second round is served from the cache
        for signer in (ed, p256, p384):
            token = sign_jwt(signer, {"sub": "a", "exp": 4102444800})
            assert _header(token) == {"alg": signer.algorithm.jose_name, "typ": "JWT", "kid": signer.key_id}
            assert verify_jwt(token, signer.public_key).claims["sub"] == "a"
        assert _header(sign_jwt(ed, {"exp": 4102444800}, typ="passport+jwt"))["typ"] == "passport+jwt"
        assert "typ" not in _header(sign_jws(ed, b"raw"))
        assert _header(sign_jwt(ed, {"exp": 4102444800}, alg="EdDSA"))["alg"] == "EdDSA"
        assert _header(sign_jwt(ed, {"exp": 4102444800}, alg="Ed25519"))["alg"] == "Ed25519"


def test_what_is_refused_is_refused_every_time(file_store: FileKeyStore) -> None:
    signer = file_store.create_key("k", KeySpec.P256)
    sign_jwt(signer, {"exp": 1})  # the good header is cached now
    for _ in range(2):
        with pytest.raises(ConfigError, match="not a name"):
            sign_jwt(signer, {"exp": 1}, alg="ES384")
        with pytest.raises(ConfigError, match="cannot be overridden"):
            sign_jwt(signer, {"exp": 1}, header={"kid": "someone-else"})
        with pytest.raises(ConfigError, match="not JSON serialisable"):
            sign_jwt(signer, {"exp": float("nan")})
        with pytest.raises(ConfigError, match="not JSON serialisable"):
            sign_jwt(signer, {"sub": "\ud800"})  # a lone surrogate: a typed error, not UnicodeEncodeError
    with_extra = sign_jwt(signer, {"exp": 4102444800}, header={"x5t": "abc"})
    assert _header(with_extra) == {"alg": "ES256", "typ": "JWT", "kid": signer.key_id, "x5t": "abc"}
    assert _header(sign_jwt(signer, {"exp": 4102444800})) == {"alg": "ES256", "typ": "JWT", "kid": signer.key_id}


def test_a_batch_and_single_tokens_share_the_header(file_store: FileKeyStore) -> None:
    signer = file_store.create_key("b", KeySpec.P256)
    claims = [{"sub": f"s{i}", "exp": 4102444800} for i in range(3)]
    batch = sign_jwts(signer, claims, typ="passport+jwt")
    single = sign_jwt(signer, claims[0], typ="passport+jwt")
    assert {t.split(".")[0] for t in batch} == {single.split(".")[0]}
    for token, expected in zip(batch, claims, strict=True):
        assert verify_jwt(token, signer.public_key, typ="passport+jwt").claims == expected


def test_new_jti_is_a_random_version_4_uuid() -> None:
    seen = set()
    for _ in range(2000):
        jti = new_jti()
        parsed = uuid.UUID(jti)
        assert str(parsed) == jti and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(jti)
    assert len(seen) == 2000


def _keywords(function: typing.Callable[..., typing.Any], leave_out: set[str]) -> set[str]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in leave_out}


@pytest.mark.parametrize(("table", "function", "leave_out"), [
    (passport.PassportArguments, passport.passport_claims, set()),
    (passport.PassportArguments, passport.issue_passport, {"alg"}),
    (passport.PassportChecks, passport.verify_passport, set()),
    (action.ActionArguments, action.action_claims, {"ttl"}),
    (action.ActionChecks, action.verify_action, {"single_use", "replay_cache"}),
], ids=["PassportArguments", "issue_passport", "PassportChecks", "ActionArguments", "ActionChecks"])
def test_the_keyword_tables_are_the_functions_parameters(
    table: type, function: typing.Callable[..., typing.Any], leave_out: set[str]
) -> None:
    keys = table.__required_keys__ | table.__optional_keys__  # type: ignore[attr-defined]
    assert set(keys) == _keywords(function, leave_out)


_AWKWARD = ["plain", 'quo"te', "back\\slash", "ctl\x00\x1f\x7f", "tab\tnl\n", "ünïcødé", "emoji \U0001f511", "\u2028\u2029",
            "</script>", "x" * 1024]


@pytest.mark.parametrize("text", _AWKWARD, ids=range(len(_AWKWARD)))
@pytest.mark.parametrize("iss", [None, "https://issuer"], ids=["no iss", "iss"])
def test_the_direct_passport_json_is_claims_json_byte_for_byte(text: str, iss: str | None) -> None:
    agent = PublicKey(generate_private_key(KeySpec.P256).public_key())
    claims = passport.passport_claims(sub=text, name=text, agent_key=agent, code_hash="ab" * 32, stage=text,
                                      trust_score=7, scopes=[text, "read"], iss=iss if iss is None else text,
                                      jti=text, now=1_700_000_000)
    assert passport.passport_json(claims) == claims_json(claims)
    json.loads(passport.passport_json(claims))  # and it is JSON


def test_other_shapes_take_the_general_path() -> None:
    agent = PublicKey(generate_private_key(KeySpec.ED25519).public_key())
    base: dict[str, typing.Any] = {"sub": "a", "name": "n", "agent_key": agent, "code_hash": "ab" * 32, "stage": "s",
                                   "trust_score": 1}
    extras: list[dict[str, typing.Any]] = [{"aud": ["x", "y"]}, {"aud": "x"}, {"extra_claims": {"grp": ["g"], "n": 1.5}},
                                           {"scopes": []}]
    for extra in extras:
        claims = passport.passport_claims(**base, **extra)
        assert passport.passport_json(claims) == claims_json(claims)
    lone = passport.passport_claims(**{**base, "name": "\ud800"})
    with pytest.raises(ConfigError, match="not JSON serialisable"):
        passport.passport_json(lone)
