"""issue_passport's direct payload is the general path's, byte for byte and error for error.

`passport._direct_payload` writes a passport's JSON straight from the arguments; the
general path is ``claims_json(passport_claims(...))``. These tests hold the two to the
same bytes over many shapes (with and without iss / aud / extra claims, awkward strings,
scopes as a str, a tuple or an iterator, an IntEnum score, every agent key type), and
`issue_passport` to the same ConfigError message as `passport_claims` for every refusal,
including refusals whose order matters (a bad ttl together with unserialisable extra
claims). A fast path that drops a check, reorders a member or escapes a string
differently fails here.
"""

from __future__ import annotations

import enum
import json
import typing
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from backends.file import FileKeyStore
from signers.algorithms import KeySpec
from signers.errors import ConfigError
from signers.keys import PublicKey, b64url_decode, b64url_encode
from signers.local_keys import generate_private_key
from signers.signer import Signer
from signers.tokens import passport
from signers.tokens.jws_sign import claims_json
from signers.tokens.jws_verify import verify_jwt

_NOW = 1_700_000_000
_AGENTS = {spec: PublicKey(generate_private_key(spec).public_key()) for spec in
           (KeySpec.ED25519, KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1, KeySpec.RSA2048, KeySpec.ML_DSA_44)}


class Score(enum.IntEnum):
    HIGH = 90


class Frozen(Mapping[str, typing.Any]):
    """A read-only mapping that is not a dict: written in its own order, as the general path does."""

    def __init__(self, items: dict[str, typing.Any]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> typing.Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _base(**changes: typing.Any) -> dict[str, typing.Any]:
    arguments: dict[str, typing.Any] = {
        "sub": "agent-1", "name": "Agent", "agent_key": _AGENTS[KeySpec.ED25519], "code_hash": "sha256:" + "ab" * 32,
        "stage": "ACTIVE", "trust_score": 80, "scopes": ["read", "write"], "now": _NOW, "jti": "j-1"}
    arguments.update(changes)
    return arguments


_AWKWARD = ['quo"te', "back\\slash", "ctl\x00\x1f\x7f", "tab\tnl\n", "ünïcødé", "emoji \U0001f511", "\u2028\u2029",
            "</script>", "x" * 1024]
_SHAPES: dict[str, dict[str, typing.Any]] = {
    "plain": _base(),
    "iss": _base(iss="https://issuer"),
    "64 hex code hash": _base(code_hash="cd" * 32),
    "no scopes": _base(scopes=()),
    "scopes as str": _base(scopes="read"),
    "scopes as tuple": _base(scopes=("a", "b", "c")),
    "aud str": _base(aud="https://verifier"),
    "aud list": _base(aud=["v1", "v2"], iss="i"),
    "aud empty list": _base(aud=[]),
    "aud tuple (general path)": _base(aud=("v1",)),
    "extra claims": _base(extra_claims={"grp": ["g"], "n": 1.5, "nested": {"b": None, "a": [True, 2]}}),
    "extra claims, iss and aud": _base(iss="i", aud="a", extra_claims={"status": {"idx": 3}, "ü": "ß"}),
    "extra claims not a dict": _base(extra_claims=Frozen({"z": 1, "a": 2})),
    "empty extra claims": _base(extra_claims={}),
    "empty extra mapping": _base(extra_claims=Frozen({})),
    "int extra key": _base(extra_claims={1: "one"}),
    "IntEnum score (general path)": _base(trust_score=Score.HIGH),
    "score 0": _base(trust_score=0),
    "score 100": _base(trust_score=100),
    "ttl seconds": _base(ttl=60),
    "ttl float": _base(ttl=90.9),
    "ttl timedelta": _base(ttl=timedelta(hours=2)),
    "now datetime": _base(now=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    "now float": _base(now=1_700_000_000.75),
    **{f"agent {spec.value}": _base(agent_key=key, iss="i") for spec, key in _AGENTS.items()},
    **{f"awkward {i}": _base(sub=text, name=text, stage=text, scopes=[text, "r"], iss=text, jti=text,
                            extra_claims={"note": text}) for i, text in enumerate(_AWKWARD)},
}
_GENERAL_ONLY = {"aud tuple (general path)", "IntEnum score (general path)"}


def _direct(arguments: Mapping[str, typing.Any]) -> bytes | None:
    a = {"scopes": (), "ttl": passport._ONE_DAY, "iss": None, "aud": None, "jti": None, "now": None,
         "extra_claims": None, **arguments}
    scopes = [a["scopes"]] if isinstance(a["scopes"], str) else list(a["scopes"])
    return passport._direct_payload(a["sub"], a["name"], a["agent_key"], a["code_hash"], a["stage"], a["trust_score"],
                                    scopes, a["ttl"], a["iss"], a["aud"], a["jti"], a["now"], a["extra_claims"])


def _payload(token: str) -> bytes:
    return b64url_decode(token.split(".")[1])


@pytest.fixture
def issuer(file_store: FileKeyStore) -> Signer:
    return file_store.create_key("issuer", KeySpec.P256)


@pytest.mark.parametrize("shape", list(_SHAPES))
def test_the_direct_payload_is_the_general_one_byte_for_byte(shape: str, issuer: Signer) -> None:
    arguments = _SHAPES[shape]
    general = claims_json(passport.passport_claims(**arguments))
    direct = _direct(arguments)
    if shape in _GENERAL_ONLY:
        assert direct is None  # declined: the general path writes it
    else:
        assert direct == general
    token = passport.issue_passport(issuer, **arguments)
    assert _payload(token) == general
    claims = json.loads(general)
    if arguments.get("aud") == []:
        return  # written as given; a verifier refuses a token for an empty audience
    assert verify_jwt(token, issuer.public_key, typ=passport.PASSPORT_TYP, now=claims["iat"],
                      audience=arguments.get("aud")).claims == claims


def test_defaults_now_jti_and_ttl_are_the_general_path_s(issuer: Signer) -> None:
    arguments = _base()
    del arguments["now"], arguments["jti"]
    claims = json.loads(_payload(passport.issue_passport(issuer, **arguments)))
    assert claims["exp"] - claims["iat"] == 86400 and claims["nbf"] == claims["iat"]
    again = passport.passport_claims(**arguments, now=claims["iat"], jti=claims["jti"])
    assert _payload(passport.issue_passport(issuer, **arguments, now=claims["iat"], jti=claims["jti"])) == \
        claims_json(again)


def test_an_iterator_of_scopes_is_read_once(issuer: Signer) -> None:
    token = passport.issue_passport(issuer, **_base(scopes=iter(["a", "b"])))
    assert json.loads(_payload(token))["scopes"] == ["a", "b"]
    bad = passport.issue_passport  # a bad item after good ones: the general path still sees every scope
    with pytest.raises(ConfigError, match="passport scope must be a non-empty string"):
        bad(issuer, **_base(scopes=iter(["a", ""])))


def test_the_agent_jwk_is_each_key_s_own(issuer: Signer) -> None:
    others = [PublicKey(generate_private_key(spec).public_key()) for spec in (KeySpec.ED25519, KeySpec.P256)]
    for key in [*_AGENTS.values(), *others]:  # two keys of one type: each its own cnf.jwk
        for _ in range(2):  # the second from the cache
            claims = json.loads(_payload(passport.issue_passport(issuer, **_base(agent_key=key))))
            assert claims["cnf"]["jwk"] == key.to_jwk()
            assert PublicKey.from_jwk(claims["cnf"]["jwk"]) == key


class StrSub(str):
    pass


class Base64Key(PublicKey):
    """A PublicKey subclass: the general path serves it (its to_jwk is its own)."""

    def to_jwk(self, **kwargs: typing.Any) -> dict[str, str]:
        return {**super().to_jwk(**kwargs), "use": "sig"}


_REFUSED: dict[str, dict[str, typing.Any]] = {
    "bad code hash": _base(code_hash="sha256:xyz"),
    "code hash not str": _base(code_hash=b"ab" * 32),
    "code hash upper hex": _base(code_hash="AB" * 32),
    "score 101": _base(trust_score=101),
    "score -1": _base(trust_score=-1),
    "score bool": _base(trust_score=True),
    "score float": _base(trust_score=50.0),
    "agent key not a PublicKey": _base(agent_key=generate_private_key(KeySpec.ED25519).public_key()),
    "empty sub": _base(sub=""),
    "long name": _base(name="n" * 1025),
    "stage not str": _base(stage=3),
    "empty scope": _base(scopes=["a", ""]),
    "scope not str": _base(scopes=["a", 7]),
    "empty iss": _base(iss=""),
    "iss not str": _base(iss=5),
    "long jti": _base(jti="j" * 1025),
    "ttl zero": _base(ttl=0),
    "ttl nan": _base(ttl=float("nan")),
    "ttl bool": _base(ttl=True),
    "naive now": _base(now=datetime(2030, 1, 1)),
    "now inf": _base(now=float("inf")),
    "extra overwrites sub": _base(extra_claims={"sub": "x"}),
    "extra overwrites iss": _base(iss="i", extra_claims={"iss": "x"}),
    "extra overwrites aud": _base(aud="a", extra_claims={"aud": "x"}),
    "extra not JSON": _base(extra_claims={"s": {1, 2}}),
    "extra nan": _base(extra_claims={"f": float("nan")}),
    "aud not JSON": _base(aud=[object()]),
    "lone surrogate in sub": _base(sub="a\ud800"),
    "lone surrogate in extra": _base(extra_claims={"k": "\udfff"}),
    "bad ttl before bad extra JSON": _base(ttl=-1, extra_claims={"s": {1}}),
    "bad now before bad ttl": _base(now=-5, ttl=0),
    "bad jti before bad now": _base(jti="", now=float("nan")),
    "bad score before bad sub": _base(trust_score=200, sub=""),
    "bad iss before bad now": _base(iss="", now=-1),
    "overwrite before bad JSON": _base(extra_claims={"x": {1}, "name": "y"}),
}


@pytest.mark.parametrize("case", list(_REFUSED))
def test_issue_passport_refuses_as_passport_claims_does(case: str, issuer: Signer) -> None:
    arguments = _REFUSED[case]
    with pytest.raises(ConfigError) as general:
        claims_json(passport.passport_claims(**arguments))
    with pytest.raises(ConfigError) as fast:
        passport.issue_passport(issuer, **arguments)
    assert str(fast.value) == str(general.value)


@pytest.mark.parametrize("arguments", [
    _base(sub=StrSub("agent")), _base(scopes=[StrSub("r")]), _base(agent_key=Base64Key(_AGENTS[KeySpec.P256].key)),
    _base(code_hash=StrSub("ab" * 32)),
], ids=["str subclass sub", "str subclass scope", "PublicKey subclass", "str subclass code hash"])
def test_subclasses_take_the_general_path(arguments: dict[str, typing.Any], issuer: Signer) -> None:
    assert _direct(arguments) is None
    assert _payload(passport.issue_passport(issuer, **arguments)) == claims_json(passport.passport_claims(**arguments))


def test_b64url_encode_is_urlsafe_base64_without_padding() -> None:
    import base64
    import os

    for n in range(0, 70):
        data = os.urandom(n) if n % 3 else bytes(range(256))[: n * 3] + b"\xfb\xff\xfe"
        assert b64url_encode(data) == base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
        assert b64url_decode(b64url_encode(data)) == data
