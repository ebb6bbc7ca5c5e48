"""`PublicKey.from_jwk` reuses the key it built for the same members, and only for the same members.

An issuer sees one agent's ``cnf.jwk`` on every passport request and a verifier on every
token, so the parsed key is kept by the JWK's members. The cache must never answer for a
JWK that differs in any member, never hold a refusal, and never let a private JWK through.
"""

from __future__ import annotations

import contextlib

import pytest

from signers.algorithms import KeySpec
from signers.errors import ConfigError, KeyplaneError
from signers.keys import PublicKey
from signers.local_keys import generate_private_key


def _jwk(spec: KeySpec) -> dict[str, str]:
    return PublicKey(generate_private_key(spec).public_key()).to_jwk()


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.P256, KeySpec.RSA2048], ids=str)
def test_the_same_members_give_the_same_key_and_other_members_another(spec: KeySpec) -> None:
    jwk = _jwk(spec)
    first = PublicKey.from_jwk(jwk)
    assert PublicKey.from_jwk(dict(reversed(list(jwk.items())))) is first  # member order does not matter
    other = _jwk(spec)
    assert PublicKey.from_jwk(other) == PublicKey(PublicKey.from_jwk(other).key) != first
    member = "x" if "x" in jwk else "n"
    tampered = dict(jwk, **{member: ("B" if jwk[member][0] != "B" else "C") + jwk[member][1:]})
    for _ in range(2):  # parsed, not looked up: a refusal, or another key, both times (a refusal is not cached)
        with contextlib.suppress(KeyplaneError):
            assert PublicKey.from_jwk(tampered) != first


def test_a_private_jwk_is_refused_even_when_its_public_part_was_seen() -> None:
    private = generate_private_key(KeySpec.ED25519)
    public_jwk = PublicKey(private.public_key()).to_jwk()
    PublicKey.from_jwk(public_jwk)
    with pytest.raises(ConfigError, match="private"):
        PublicKey.from_jwk(dict(public_jwk, d="AAAA"))


def test_a_jwk_with_list_members_is_parsed_every_time() -> None:
    jwk = dict(_jwk(KeySpec.ED25519), key_ops=["verify"])  # type: ignore[arg-type]
    assert PublicKey.from_jwk(jwk) == PublicKey.from_jwk(jwk)
