"""signers.jose: signing with every key spec, and every refusal path with its typed error."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from signers import KeySpec, PublicKey, TokenError, TokenExpired, TokenInvalid
from signers.errors import ConfigError
from signers.jose import JWK, JWKS, as_jwks, canonical_json, parse_jws, sign_jws, sign_jwt, verify_jws, verify_jwt
from signers.keys import b64url_decode, b64url_encode
from signers.signature_format import curve_size, ecdsa_der_to_raw

NOW = 1_800_000_000


def claims(**extra: Any) -> dict[str, Any]:
    return {"iss": "https://issuer.test", "sub": "agent-1", "aud": "svc", "iat": NOW, "nbf": NOW, "exp": NOW + 600,
            "jti": "t-1", **extra}


def forge(signer: Any, header: dict[str, Any], payload: bytes | dict[str, Any]) -> str:
    """A token with an arbitrary header, really signed by `signer` (so only the header is wrong)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(body)}"
    signature = signer.sign(signing_input.encode())
    if signer.public_key.spec in (KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1):
        signature = ecdsa_der_to_raw(signature, curve_size(signer.public_key.spec))
    return f"{signing_input}.{b64url_encode(signature)}"


def verify(token: str, keys: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("audience", "svc")
    kwargs.setdefault("now", NOW + 1)
    return verify_jwt(token, keys, **kwargs)


# -- signing and verifying -------------------------------------------------------------------


def test_every_spec_signs_and_verifies(any_signer: Any) -> None:
    token = sign_jwt(any_signer, claims())
    header = parse_jws(token).header
    assert header == {"alg": any_signer.algorithm.jose_name, "typ": "JWT", "kid": any_signer.key_id}
    verified = verify(token, JWKS.of(any_signer))
    assert verified.claims == claims()
    assert verified.kid == any_signer.key_id
    assert verified.algorithm is any_signer.algorithm
    # The JOSE signature, converted back, verifies with the project's one verifier.
    jws = parse_jws(token)
    if any_signer.public_key.spec in (KeySpec.P256, KeySpec.P384, KeySpec.SECP256K1):
        from signers.signature_format import ecdsa_raw_to_der

        any_signer.public_key.verify(ecdsa_raw_to_der(jws.signature), jws.signing_input, any_signer.algorithm)
    else:
        any_signer.public_key.verify(jws.signature, jws.signing_input, any_signer.algorithm)


def test_verifies_from_a_jwks_dict_a_public_key_and_a_signer(keys: dict[str, Any]) -> None:
    signer = keys["p256"]
    token = sign_jwt(signer, claims())
    for source in (signer, signer.public_key, JWKS.of(signer).to_dict(), signer.public_key.to_jwk(), [signer]):
        assert verify(token, source).claims["sub"] == "agent-1"


def test_ed25519_writes_eddsa_by_default_and_rfc9864_on_request(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    assert parse_jws(sign_jwt(signer, claims())).header["alg"] == "EdDSA"
    token = sign_jwt(signer, claims(), alg="Ed25519")
    assert parse_jws(token).header["alg"] == "Ed25519"
    assert verify(token, JWKS.of(signer)).claims["jti"] == "t-1"
    with pytest.raises(ConfigError, match="not a name"):
        sign_jwt(signer, claims(), alg="ES256")


def test_mldsa_jwk_is_akp_and_round_trips(keys: dict[str, Any]) -> None:
    jwk = JWKS.of(keys["mldsa65"]).to_dict()["keys"][0]
    assert jwk["kty"] == "AKP" and jwk["alg"] == "ML-DSA-65" and jwk["kid"] == keys["mldsa65"].key_id
    assert JWK.from_dict(jwk).public_key == keys["mldsa65"].public_key


def test_jwks_skips_keys_a_verifier_cannot_use(keys: dict[str, Any]) -> None:
    data = JWKS.of(keys["ed25519"]).to_dict()
    data["keys"].append({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"})
    data["keys"].append({**keys["p256"].public_key.to_jwk(), "use": "enc", "kid": "enc-key"})
    data["keys"].append({"kty": "OKP", "crv": "X448", "x": "AA", "kid": "x448"})
    jwks = JWKS.from_dict(data)
    assert [j.kid for j in jwks] == [keys["ed25519"].key_id]


def test_jwks_refuses_private_keys_and_duplicate_kids(keys: dict[str, Any]) -> None:
    private = {**keys["ed25519"].public_key.to_jwk(), "d": "AAAA"}
    with pytest.raises(ConfigError, match="private"):
        JWKS.from_dict({"keys": [private]})
    a = keys["ed25519"].public_key.to_jwk()
    b = {**keys["agent"].public_key.to_jwk(), "kid": a["kid"]}
    with pytest.raises(ConfigError, match="share kid"):
        JWKS.from_dict({"keys": [a, b]})
    with pytest.raises(ConfigError):
        JWKS.from_dict("not json")


def test_jwks_file_round_trip(keys: dict[str, Any], jwks_file: Any) -> None:
    JWKS.of(keys["ed25519"], keys["mldsa65"], keys["rsa2048"]).write(jwks_file)
    loaded = JWKS.load(jwks_file)
    assert {j.kid for j in loaded} == {keys[n].key_id for n in ("ed25519", "mldsa65", "rsa2048")}
    token = sign_jwt(keys["rsa2048"], claims())
    assert verify(token, loaded).kid == keys["rsa2048"].key_id


def test_token_without_kid_is_matched_to_a_key_of_its_algorithm(keys: dict[str, Any]) -> None:
    token = forge(keys["p256"], {"alg": "ES256", "typ": "JWT"}, claims())
    trusted = JWKS.of(keys["ed25519"], keys["other-agent"], keys["p256"])
    assert verify(token, trusted, max_kidless_keys=2).kid == keys["p256"].key_id
    # Without opting in, a kid-less token is tried against one key at most (issue 21: no amplification).
    with pytest.raises(TokenInvalid, match="no kid and more than 1 trusted keys"):
        verify(token, trusted)
    assert verify(token, JWKS.of(keys["ed25519"], keys["p256"])).kid == keys["p256"].key_id


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == canonical_json({"a": [1, "é"], "b": 1}) == '{"a":[1,"é"],"b":1}'.encode()
    with pytest.raises(ConfigError):
        canonical_json({"x": float("nan")})


# -- refusals: algorithm --------------------------------------------------------------------


def test_alg_none_is_refused(keys: dict[str, Any]) -> None:
    header = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64url_encode(json.dumps(claims()).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.AAAA"):
        with pytest.raises(TokenInvalid):
            verify(token, JWKS.of(keys["ed25519"]))
    with pytest.raises(TokenInvalid, match="'none' is refused"):
        verify(f"{header}.{payload}.AAAA", JWKS.of(keys["ed25519"]))


def test_hmac_with_the_public_key_as_secret_is_refused(keys: dict[str, Any]) -> None:
    """The classic confusion: HS256 keyed with the issuer's public key bytes."""
    public = keys["rsa2048"].public_key
    for secret in (public.to_pem().encode(), public.to_der()):
        header = b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": public.key_id}).encode())
        payload = b64url_encode(json.dumps(claims()).encode())
        mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        with pytest.raises(TokenInvalid, match="HMAC algorithm HS256 is refused"):
            verify(f"{header}.{payload}.{b64url_encode(mac)}", public)


def test_alg_that_does_not_fit_the_key_is_refused(keys: dict[str, Any]) -> None:
    """An Ed25519-signed token relabelled ES256 (and vice versa) is an algorithm mismatch."""
    ed, ec = keys["ed25519"], keys["p256"]
    relabelled = forge(ed, {"alg": "ES256", "kid": ed.key_id}, claims())
    with pytest.raises(TokenInvalid, match="algorithm mismatch"):
        verify(relabelled, JWKS.of(ed, ec))
    no_kid = forge(ed, {"alg": "ES384"}, claims())
    with pytest.raises(TokenInvalid, match="algorithm mismatch"):
        verify(no_kid, JWKS.of(ed, ec))


def test_jwk_alg_pin_is_enforced(keys: dict[str, Any]) -> None:
    """An RSA key published for PS256 does not accept an RS256 token, although the key could make one."""
    pss = keys["rsa2048"]
    rs256_token = forge(keys["rsa2048-rs256"], {"alg": "RS256", "kid": pss.key_id}, claims())
    pinned = JWKS.of(pss)  # pinned to PS256 by the signer
    with pytest.raises(TokenInvalid, match="algorithm mismatch"):
        verify(rs256_token, pinned)
    with pytest.raises(TokenInvalid, match="algorithm mismatch"):
        verify(sign_jwt(pss, claims()), pss.public_key, algorithms=["RS256"])


def test_unknown_alg_is_refused(keys: dict[str, Any]) -> None:
    with pytest.raises(TokenInvalid, match="unsupported algorithm"):
        verify(forge(keys["ed25519"], {"alg": "ES512"}, claims()), keys["ed25519"])
    with pytest.raises(TokenInvalid, match="'alg' is missing"):
        verify(forge(keys["ed25519"], {"typ": "JWT"}, claims()), keys["ed25519"])


# -- refusals: key selection and headers ----------------------------------------------------


def test_kid_not_in_the_set_is_refused(keys: dict[str, Any]) -> None:
    token = sign_jwt(keys["p256"], claims())
    with pytest.raises(TokenInvalid, match="not in the trusted key set"):
        verify(token, JWKS.of(keys["other-agent"]))
    with pytest.raises(TokenInvalid, match="not in the trusted key set"):
        verify(forge(keys["p256"], {"alg": "ES256", "kid": "someone-else"}, claims()), keys["p256"])


def test_signature_by_another_key_is_refused(keys: dict[str, Any]) -> None:
    impostor = forge(keys["other-agent"], {"alg": "ES256", "kid": keys["p256"].key_id}, claims())
    with pytest.raises(TokenInvalid, match="signature does not verify"):
        verify(impostor, JWKS.of(keys["p256"]))


def test_embedded_jwk_header_never_selects_the_key(keys: dict[str, Any]) -> None:
    attacker = keys["other-agent"]
    token = forge(attacker, {"alg": "ES256", "jwk": attacker.public_key.to_jwk()}, claims())
    with pytest.raises(TokenInvalid, match="signature does not verify"):
        verify(token, JWKS.of(keys["p256"]))


def test_b64_false_is_refused(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = forge(signer, {"alg": "EdDSA", "kid": signer.key_id, "b64": False, "crit": ["b64"]}, claims())
    with pytest.raises(TokenInvalid, match="b64=false"):
        verify(token, signer)
    token = forge(signer, {"alg": "EdDSA", "kid": signer.key_id, "b64": False}, claims())
    with pytest.raises(TokenInvalid, match="b64=false"):
        verify(token, signer)


def test_crit_header_we_do_not_understand_is_refused(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = forge(signer, {"alg": "EdDSA", "kid": signer.key_id, "exp-policy": 1, "crit": ["exp-policy"]}, claims())
    with pytest.raises(TokenInvalid, match="not understood"):
        verify(token, signer)
    assert verify(token, signer, understood_crit=["exp-policy"]).claims["sub"] == "agent-1"
    for crit in ([], "exp-policy", ["alg"], ["absent"], [1]):
        bad = forge(signer, {"alg": "EdDSA", "kid": signer.key_id, "exp-policy": 1, "crit": crit}, claims())
        with pytest.raises(TokenInvalid):
            verify(bad, signer, understood_crit=["exp-policy", "absent"])


def test_required_typ(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = sign_jwt(signer, claims(), typ="passport+jwt")
    assert verify(token, signer, typ="application/passport+jwt").claims
    with pytest.raises(TokenInvalid, match="wrong token type"):
        verify(token, signer, typ="action+jwt")
    with pytest.raises(TokenInvalid, match="wrong token type"):
        verify(sign_jwt(signer, claims(), typ=None), signer, typ="passport+jwt")


def test_header_cannot_override_alg_or_kid(keys: dict[str, Any]) -> None:
    for name in ("alg", "kid", "b64", "crit"):
        with pytest.raises(ConfigError):
            sign_jwt(keys["ed25519"], claims(), header={name: "x"})


# -- refusals: tampering --------------------------------------------------------------------


def _swap_segment(token: str, index: int, data: bytes) -> str:
    parts = token.split(".")
    parts[index] = b64url_encode(data)
    return ".".join(parts)


@pytest.mark.parametrize("name", ["ed25519", "p256", "rsa2048", "mldsa65"])
def test_tampered_payload_header_or_signature_is_invalid(keys: dict[str, Any], name: str) -> None:
    signer = keys[name]
    token = sign_jwt(signer, claims(amount=10))
    payload = json.loads(b64url_decode(token.split(".")[1]))
    payload["amount"] = 10_000
    header = {**parse_jws(token).header, "typ": "at+jwt"}
    signature = bytearray(parse_jws(token).signature)
    signature[len(signature) // 2] ^= 1
    for bad in (
        _swap_segment(token, 1, json.dumps(payload).encode()),
        _swap_segment(token, 0, json.dumps(header).encode()),
        _swap_segment(token, 2, bytes(signature)),
        _swap_segment(token, 2, bytes(signature[:-1])),
    ):
        with pytest.raises(TokenInvalid):
            verify(bad, JWKS.of(signer))


def test_ecdsa_signature_must_be_raw_r_s_of_the_curve_size(keys: dict[str, Any]) -> None:
    """A DER signature (what cryptography returns) is not valid JOSE and is refused."""
    signer = keys["p256"]
    token = sign_jwt(signer, claims())
    jws = parse_jws(token)
    der = signer.sign(jws.signing_input)
    with pytest.raises(TokenInvalid):
        verify(_swap_segment(token, 2, der), signer)


def test_malformed_tokens_are_invalid(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    good = sign_jwt(signer, claims())
    head, body, sig = good.split(".")
    duplicate_alg = b64url_encode(b'{"alg":"EdDSA","alg":"none"}')
    cases = [
        "", "abc", "a.b", "a.b.c.d", f"{head}.{body}", f"{head}.{body}.", f"{head}=.{body}.{sig}",
        f"{head}.{body}.{sig}==", f"{head}.{body}.{sig[:-1]}+", "é.é.é", good.encode("utf-16"),
        f"{b64url_encode(b'[1]')}.{body}.{sig}", f"{b64url_encode(b'{')}.{body}.{sig}",
        f"{b64url_encode(json.dumps({'alg': 'EdDSA', 'alg ': 1}).encode())}.{body}.{sig}",
        f"{duplicate_alg}.{body}.{sig}",
        f"{head}.{b64url_encode(b'not json')}.{sig}", f"{head}.{b64url_encode(b'[]')}.{sig}",
        "x" * 300_000, 12345,
    ]
    for case in cases:
        with pytest.raises(TokenInvalid):
            verify(case, signer)  # type: ignore[arg-type]


def test_non_canonical_base64_is_refused(keys: dict[str, Any]) -> None:
    """The spare low bits of the last base64url character must be zero: one token, one spelling."""
    signer = keys["ed25519"]
    token = sign_jwt(signer, claims())
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # A 64-byte signature ends in a character carrying 2 data bits and 4 zero bits.
    sibling = alphabet[alphabet.index(last) + 1]
    assert b64url_decode(token[:-1].split(".")[2] + sibling) == b64url_decode(token.split(".")[2])
    with pytest.raises(TokenInvalid, match="canonical"):
        verify(token[:-1] + sibling, signer)


def test_duplicate_claims_are_refused(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = sign_jws(signer, b'{"sub":"agent-1","exp":1800000600,"aud":"svc","sub":"admin"}')
    with pytest.raises(TokenInvalid, match="duplicate"):
        verify(token, signer)


# -- refusals: claims ---------------------------------------------------------------------


def test_expired_and_not_yet_valid(keys: dict[str, Any]) -> None:
    signer = keys["p256"]
    token = sign_jwt(signer, claims())
    with pytest.raises(TokenExpired, match="expired"):
        verify(token, signer, now=NOW + 600 + 31)
    assert verify(token, signer, now=NOW + 600 + 29).claims  # within the default 30 s leeway
    with pytest.raises(TokenExpired, match="expired"):
        verify(token, signer, now=NOW + 601, leeway=0)
    with pytest.raises(TokenExpired, match="not valid before"):
        verify(token, signer, now=NOW - 31)
    assert verify(token, signer, now=NOW - 100, leeway=120).claims
    future = sign_jwt(signer, claims(iat=NOW + 3600, nbf=NOW, exp=NOW + 7200))
    with pytest.raises(TokenInvalid, match="issued in the future"):
        verify(future, signer)


def test_exp_is_required_by_default(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = sign_jwt(signer, {"sub": "x", "aud": "svc"})
    with pytest.raises(TokenInvalid, match="required claim 'exp'"):
        verify(token, signer)
    assert verify(token, signer, require=()).claims == {"sub": "x", "aud": "svc"}


@pytest.mark.parametrize("value", ["soon", True, None, [1], {"a": 1}, 1e400])
def test_time_claims_must_be_numbers(keys: dict[str, Any], value: Any) -> None:
    signer = keys["ed25519"]
    body = json.dumps(claims(exp=value)).replace("Infinity", "1e400").encode()
    with pytest.raises(TokenInvalid, match="NumericDate"):
        verify(sign_jws(signer, body), signer)


def test_audience(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    listed = sign_jwt(signer, claims(aud=["svc", "other"]))
    assert verify(listed, signer, audience="other").claims
    assert verify(listed, signer, audience=["x", "svc"]).claims
    with pytest.raises(TokenInvalid, match="audience mismatch"):
        verify(listed, signer, audience="nobody")
    with pytest.raises(TokenInvalid, match="audience mismatch"):
        verify(listed, signer, audience=None)
    no_aud = sign_jwt(signer, {k: v for k, v in claims().items() if k != "aud"})
    with pytest.raises(TokenInvalid, match="names no audience"):
        verify(no_aud, signer, audience="svc")
    assert verify(no_aud, signer, audience=None).claims
    with pytest.raises(TokenInvalid, match="'aud' must be"):
        verify(sign_jwt(signer, claims(aud=5)), signer)


def test_issuer_and_subject(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    token = sign_jwt(signer, claims())
    assert verify(token, signer, issuer=["https://a", "https://issuer.test"], subject="agent-1").claims
    with pytest.raises(TokenInvalid, match="issuer mismatch"):
        verify(token, signer, issuer="https://evil.test")
    with pytest.raises(TokenInvalid, match="subject mismatch"):
        verify(token, signer, subject="agent-2")


def test_verify_jws_returns_the_raw_payload(keys: dict[str, Any]) -> None:
    signer = keys["mldsa44"]
    token = sign_jws(signer, b"\x00binary\xff", typ="octets")
    verified = verify_jws(token, signer, typ="octets")
    assert verified.payload == b"\x00binary\xff" and verified.key.kid == signer.key_id


def test_errors_are_token_errors() -> None:
    assert issubclass(TokenInvalid, TokenError) and issubclass(TokenExpired, TokenError)


def test_as_jwks_refuses_non_keys() -> None:
    with pytest.raises(ConfigError):
        as_jwks(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        JWK.of("key")  # type: ignore[arg-type]


def test_real_clock_default(keys: dict[str, Any]) -> None:
    signer = keys["ed25519"]
    now = int(time.time())
    token = sign_jwt(signer, {"iat": now, "exp": now + 60})
    assert verify_jwt(token, signer).claims["exp"] == now + 60
    assert isinstance(PublicKey.from_jwk(JWKS.of(signer).to_dict()["keys"][0]), PublicKey)
