"""How composite reaches `signers.jose` and `verify_chain`: registration, lazy import, and what stays refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from signers import KeySpec
from signers import MuSigner as TopLevelMuSigner
from signers.algorithm_modules import JOSE_ALGORITHM_MODULES, SIGNATURE_OID_MODULES
from signers.composite import (
    CompositeAlgorithm,
    CompositeCertificateAuthority,
    CompositeSigner,
    LocalSigner,
    composite_jwks,
    generate,
)
from signers.composite.capabilities import MuSigner as OldMuSigner
from signers.errors import ConfigError, TokenInvalid
from signers.jose import JWKS, as_jwks, parse_jws, register_jose_algorithm, sign_jwt, verify_jwt
from signers.keys import b64url_encode
from signers.local_keys import generate_private_key
from signers.passport import code_hash_of, issue_passport
from signers.signer import SIGNER_PROTOCOLS, MuSigner
from signers.tokens.jws_parse import UnverifiedJWS

V = CompositeAlgorithm


def _composite(variant: CompositeAlgorithm = V.MLDSA44_ED25519_SHA512) -> CompositeSigner:
    return CompositeSigner(*generate(variant), variant)


def _claims() -> dict[str, object]:
    return {"sub": "agent-7", "exp": int(time.time()) + 300}


def _python(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing imported yet); its stdout."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_static_tables_match_the_implemented_variants() -> None:
    assert set(JOSE_ALGORITHM_MODULES) == {v.jose_name for v in CompositeAlgorithm if v.has_jose_name}
    assert set(SIGNATURE_OID_MODULES) == {v.oid for v in CompositeAlgorithm}


def test_mu_signer_lives_beside_digest_signer() -> None:
    assert TopLevelMuSigner is MuSigner is OldMuSigner and SIGNER_PROTOCOLS["sign-mu"] is MuSigner


def test_import_signers_does_not_load_composite() -> None:
    code = ("import sys, signers, signers.jose, signers.passport, signers.x509\n"
            "print('signers.composite' in sys.modules)")
    assert _python(code) == "False"


def test_a_relying_party_verifies_composite_tokens_and_chains_without_importing_composite(tmp_path: Path) -> None:
    issuer = _composite(V.MLDSA65_ED25519_SHA512)
    token = sign_jwt(issuer, _claims())
    jwks = tmp_path / "jwks.json"
    composite_jwks(issuer).write(jwks)
    root = CompositeCertificateAuthority.create_root(_composite(), "CN=Lazy Root")
    leaf = root.issue(_composite(), "CN=lazy-leaf")
    (tmp_path / "root.der").write_bytes(root.certificate.public_bytes(Encoding.DER))
    (tmp_path / "leaf.der").write_bytes(leaf.public_bytes(Encoding.DER))
    code = f"""
import sys
from pathlib import Path
from cryptography import x509
from signers.jose import JWKS, verify_jwt
from signers.x509 import verify_chain
before = 'signers.composite' in sys.modules
keys = JWKS.load({str(jwks)!r})
print(before, len(keys.extension_keys), verify_jwt({token!r}, keys).claims['sub'])
d = Path({str(tmp_path)!r})
path = verify_chain(x509.load_der_x509_certificate((d / 'leaf.der').read_bytes()), [],
                    [x509.load_der_x509_certificate((d / 'root.der').read_bytes())])
print(len(path))
"""
    assert _python(code).split() == ["False", "1", "agent-7", "2"]


def test_unregistered_composite_like_algorithms_stay_refused() -> None:
    signer = _composite(V.MLDSA65_ED25519_SHA512)
    token = sign_jwt(signer, _claims())
    _, payload_b64, signature_b64 = token.split(".")
    keys = composite_jwks(signer)
    for alg in ("ML-DSA-87-Ed448", "ml-dsa-65-ed25519", "ML-DSA-65-Ed25519 ", "MLDSA65-Ed25519-SHA512"):
        header = {**parse_jws(token).header, "alg": alg}
        forged = f"{b64url_encode(json.dumps(header).encode())}.{payload_b64}.{signature_b64}"
        with pytest.raises(TokenInvalid, match="unsupported algorithm"):
            verify_jwt(forged, keys)


def test_reserved_names_cannot_be_registered() -> None:
    def never(jws: UnverifiedJWS, keys: object, limit: int) -> tuple[object, object]:
        raise TokenInvalid("never")

    for name in ("none", "NONE", "HS256", "hs512", "ES256", "EdDSA", "Ed25519", "ML-DSA-65", ""):
        with pytest.raises(ConfigError):
            register_jose_algorithm(name, never)
    with pytest.raises(ConfigError, match="already has a verifier"):
        register_jose_algorithm("ML-DSA-65-Ed25519", never)


def test_a_key_set_parsed_before_a_registration_is_parsed_again_after_it() -> None:
    document = {"keys": [{"kty": "AKP", "alg": "X-KEYPLANE-TEST-1", "pub": "AAAA", "kid": "test-1"}]}
    assert as_jwks(document).extension_keys == ()  # unknown alg: skipped, like any key type we lack

    def refuse(jws: UnverifiedJWS, keys: object, limit: int) -> tuple[object, object]:
        raise TokenInvalid("test extension refuses everything")

    register_jose_algorithm("X-KEYPLANE-TEST-1", refuse)
    assert as_jwks(document).extension_keys == tuple(document["keys"])  # the cache key includes registrations
    assert as_jwks(json.dumps(document)).extension_keys == tuple(document["keys"])


def test_kidless_composite_tokens_are_tried_against_one_key_unless_the_caller_opts_in() -> None:
    first, second = _composite(), _composite()
    keys = composite_jwks(first, second)
    # sign_jwt always writes a kid: build the kid-less token by hand, signed by the first key
    header_b64 = b64url_encode(json.dumps({"alg": V.MLDSA44_ED25519_SHA512.jose_name, "typ": "JWT"}).encode())
    payload_b64 = b64url_encode(json.dumps(_claims()).encode())
    token = f"{header_b64}.{payload_b64}.{b64url_encode(first.sign(f'{header_b64}.{payload_b64}'.encode()))}"
    with pytest.raises(TokenInvalid, match="no kid"):
        verify_jwt(token, keys)
    assert verify_jwt(token, keys, max_kidless_keys=2).kid == first.key_id
    assert verify_jwt(token, composite_jwks(first)).kid == first.key_id


def test_typed_composite_tokens_are_refused_by_plain_verify_jwt() -> None:
    issuer = _composite(V.MLDSA65_ED25519_SHA512)
    agent = LocalSigner(generate_private_key(KeySpec.ED25519))
    passport = issue_passport(issuer, sub="agent-7", name="Agent", agent_key=agent.public_key,
                              code_hash=code_hash_of(b"code"), stage="production", trust_score=90, scopes=["s"])
    with pytest.raises(TokenInvalid, match="explicit typing"):
        verify_jwt(passport, composite_jwks(issuer))


def test_malformed_composite_jwk_fails_at_load(tmp_path: Path) -> None:
    signer = _composite()
    jwk = signer.public_key.to_jwk()
    broken = {**jwk, "pub": jwk["pub"][:-8]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [broken]}))
    with pytest.raises(ConfigError, match="malformed composite JWK"):
        JWKS.load(path)
    with pytest.raises(ConfigError, match="private"):
        JWKS.from_dict({"keys": [{**jwk, "priv": "AAAA"}]})
    with pytest.raises(ConfigError, match="share kid"):
        JWKS((), [jwk, {**_composite().public_key.to_jwk(), "kid": jwk["kid"]}])


def test_key_sets_carry_composite_keys_through_of_lists_and_export() -> None:
    composite = _composite()
    merged = JWKS.of(composite_jwks(composite), JWKS())
    assert len(merged.extension_keys) == 1 and JWKS.from_dict(merged.to_dict()).extension_keys == merged.extension_keys
    token = sign_jwt(composite, _claims())
    assert verify_jwt(token, [composite]).kid == composite.key_id  # a signer in a list
    assert verify_jwt(token, composite.public_key.to_jwk()).kid == composite.key_id  # a single JWK dict
    assert len(as_jwks([composite]).extension_keys) == 1
