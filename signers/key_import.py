"""Load existing private key material for import (BYOK) into a `cryptography` private key.

`load_private_key(data, form=None, password=None, spec=None)` reads:

* PKCS#8 (PEM or DER, optionally encrypted with `password`), including ML-DSA private keys
  in all three RFC 9881 forms: ``seed``, ``expandedKey`` and ``both``;
* a private JWK: OKP Ed25519 (``d``), EC P-256 / P-384 / secp256k1 (``d`` with ``x``/``y``
  checked), RSA (the CRT members, or just ``n``/``e``/``d``), AKP ML-DSA (``priv`` = the seed,
  ``pub`` checked);
* a raw 32-byte seed with ``spec`` ML-DSA-44/65/87 (FIPS 204 KeyGen from the seed), or a raw
  32-byte Ed25519 private key with ``spec`` Ed25519.

Everything else is a ConfigError saying what was expected; a key type keyplane does not sign
with is AlgorithmNotSupported. The result goes to ``ImportingKeyStore.import_key``.

ML-DSA in `cryptography` is seed-only, so an RFC 9881 ``expandedKey``-only key cannot be
imported (FIPS 204 has no way back from the expanded key to its seed): AlgorithmNotSupported
naming why. For ``both``, the key is built from the seed and the expanded key must agree with
it on everything derivable from the public key (rho, and tr = SHAKE256(pk)); ``K`` and the
secret vectors cannot be recomputed without an ML-DSA key expansion, which `cryptography`
does not expose. The PKCS#8 wrapper of those two forms is read by the small strict DER
reader below because `cryptography` refuses them outright and exposes no DER parser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

from .algorithms import KeyFamily, KeySpec
from .errors import AlgorithmNotSupported, ConfigError
from .keys import PublicKey, b64url_decode
from .local_keys import PrivateKey

__all__ = ["FORMATS", "load_private_key", "mldsa_from_seed"]

FORMATS = ("pem", "der", "jwk", "seed")
SEED_SIZE = 32

_MLDSA_CLASSES: dict[KeySpec, Any] = {
    KeySpec.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    KeySpec.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    KeySpec.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}
# id-ml-dsa-44/65/87 (2.16.840.1.101.3.4.3.17/18/19), DER content bytes.
_MLDSA_OIDS: dict[bytes, KeySpec] = {
    bytes.fromhex("608648016503040311"): KeySpec.ML_DSA_44,
    bytes.fromhex("608648016503040312"): KeySpec.ML_DSA_65,
    bytes.fromhex("608648016503040313"): KeySpec.ML_DSA_87,
}
_EXPANDED_SIZES = {KeySpec.ML_DSA_44: 2560, KeySpec.ML_DSA_65: 4032, KeySpec.ML_DSA_87: 4896}
_EC_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(),
                                            "secp256k1": ec.SECP256K1()}
_MAX_INPUT = 1 << 20


def load_private_key(
    data: bytes, form: str | None = None, *, password: bytes | None = None, spec: KeySpec | str | None = None,
) -> PrivateKey:
    """A `cryptography` private key from `data` in `form` (pem | der | jwk | seed; None: detected).

    Raises ConfigError (malformed, wrong password, missing password, a seed without an
    ML-DSA / Ed25519 `spec`), AlgorithmNotSupported (a key type keyplane does not sign with,
    or an expandedKey-only ML-DSA key). The result's public key is checked to be one keyplane
    supports.
    """
    data = bytes(data)
    if len(data) > _MAX_INPUT:
        raise ConfigError(f"key input is {len(data)} bytes; no private key is that large")
    chosen = form or _detect(data, spec)
    if chosen not in FORMATS:
        raise ConfigError(f"key format must be one of {', '.join(FORMATS)}, not {str(chosen)[:20]!r}")
    if chosen == "seed":
        key: Any = _from_raw(data, spec)
    elif chosen == "jwk":
        key = _from_jwk(data)
    else:
        key = _from_pkcs8(data, chosen, password)
    public = PublicKey(key.public_key())  # AlgorithmNotSupported for key types keyplane does not sign with
    if spec is not None and public.spec is not KeySpec.parse(spec):
        raise ConfigError(f"the key is {public.spec.value}, not the {KeySpec.parse(spec).value} asked for")
    result: PrivateKey = key
    return result


def mldsa_from_seed(spec: KeySpec | str, seed: bytes) -> PrivateKey:
    """FIPS 204 ML-DSA.KeyGen from a 32-byte seed; ConfigError for another length."""
    spec = KeySpec.parse(spec)
    cls = _MLDSA_CLASSES.get(spec)
    if cls is None:
        raise ConfigError(f"{spec.value} is not an ML-DSA key spec")
    if len(seed) != SEED_SIZE:
        raise ConfigError(f"an ML-DSA seed is {SEED_SIZE} bytes, not {len(seed)}")
    key: PrivateKey = cls.from_seed_bytes(bytes(seed))
    return key


# -- formats -----------------------------------------------------------------------------


def _detect(data: bytes, spec: KeySpec | str | None) -> str:
    stripped = data.lstrip()
    if stripped.startswith(b"-----BEGIN"):
        return "pem"
    if stripped.startswith(b"{"):
        return "jwk"
    if len(data) == SEED_SIZE and spec is not None:
        return "seed"
    if data[:1] == b"\x30":
        return "der"
    raise ConfigError("cannot tell the key format: give --format pem|der|jwk|seed (a seed also needs --spec)")


def _from_raw(data: bytes, spec: KeySpec | str | None) -> Any:
    if spec is None:
        raise ConfigError("a raw seed needs its spec: ML-DSA-44, ML-DSA-65, ML-DSA-87 (or Ed25519)")
    parsed = KeySpec.parse(spec)
    if parsed is KeySpec.ED25519:
        if len(data) != SEED_SIZE:
            raise ConfigError(f"a raw Ed25519 private key is {SEED_SIZE} bytes, not {len(data)}")
        return ed25519.Ed25519PrivateKey.from_private_bytes(data)
    if parsed.family is not KeyFamily.MLDSA:
        raise ConfigError(f"a raw seed is an ML-DSA or Ed25519 key, not {parsed.value}")
    return mldsa_from_seed(parsed, data)


def _from_pkcs8(data: bytes, form: str, password: bytes | None) -> Any:
    der = data
    if form == "pem":
        with _readable(password, "PEM"):
            try:
                return serialization.load_pem_private_key(data, password=password)
            except ValueError as e:
                body = _pem_body(data)  # maybe an RFC 9881 form cryptography refuses
                if body is None:
                    raise ConfigError("not a PKCS#8 private key PEM (or the password is wrong)") from e
                der = body
    with _readable(password, "DER"):
        try:
            return serialization.load_der_private_key(der, password=password)
        except ValueError as e:
            mldsa_key = _rfc9881(der)
            if mldsa_key is None:
                raise ConfigError("not a PKCS#8 private key (or the password is wrong)") from e
            return mldsa_key


@contextmanager
def _readable(password: bytes | None, form: str) -> Iterator[None]:
    """cryptography's refusals other than "not this format" (a ValueError, the caller's to judge), typed."""
    try:
        yield
    except TypeError as e:
        raise ConfigError(_password_message(password)) from e
    except UnsupportedAlgorithm as e:
        raise AlgorithmNotSupported(f"the {form} holds a key type or encryption keyplane cannot read") from e


def _password_message(password: bytes | None) -> str:
    if password is None:
        return "the private key is encrypted: give its password (--password-source env:NAME or file:PATH)"
    return "the private key is not encrypted, but a password was given"


def _pem_body(data: bytes) -> bytes | None:
    text = data.decode("ascii", "replace")
    begin, end = "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"
    if begin not in text or end not in text:
        return None
    body = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _rfc9881(der: bytes) -> Any:
    """An ML-DSA key from an RFC 9881 OneAsymmetricKey in the expandedKey or both form; None if not one."""
    try:
        outer, rest = _tlv(der, 0x30)
        if rest:
            return None
        version, body = _tlv(outer, 0x02)
        if version not in (b"\x00", b"\x01"):
            return None
        algorithm_id, body = _tlv(body, 0x30)
        oid, params = _tlv(algorithm_id, 0x06)
        spec = _MLDSA_OIDS.get(oid)
        if spec is None or params:
            return None
        private, _ = _tlv(body, 0x04)  # attributes / public key may follow; the key is all we read
    except ValueError:
        return None
    size = _EXPANDED_SIZES[spec]
    try:
        if private[:1] == b"\x04":
            raise AlgorithmNotSupported(
                f"this {spec.value} private key is in RFC 9881's expandedKey-only form; keyplane (like "
                "cryptography) keeps ML-DSA keys as their 32-byte seed, which cannot be recovered from the "
                "expanded key: export the key in the seed or both form")
        both, trailing = _tlv(private, 0x30)
        if trailing:
            raise ConfigError(f"malformed {spec.value} private key (data after the key)")
        seed, rest = _tlv(both, 0x04)
        expanded, trailing = _tlv(rest, 0x04)
        if trailing:
            raise ConfigError(f"malformed {spec.value} private key (data after the expanded key)")
    except ValueError as e:
        raise ConfigError(f"malformed {spec.value} private key") from e
    if len(expanded) != size:
        raise ConfigError(f"a {spec.value} expanded key is {size} bytes, not {len(expanded)}")
    key = mldsa_from_seed(spec, seed)
    pk = key.public_key().public_bytes_raw()  # type: ignore[union-attr]  # an ML-DSA key here
    rho, tr = expanded[:32], expanded[64:128]
    if rho != pk[:32] or tr != hashlib.shake_256(pk).digest(64):
        raise ConfigError(f"the seed and the expanded key of this {spec.value} private key do not agree "
                          "(they are two different keys)")
    return key


def _tlv(data: bytes, tag: int) -> tuple[bytes, bytes]:
    """(content, rest) of one strict-DER element with `tag` at the start of `data`; ValueError otherwise."""
    if len(data) < 2 or data[0] != tag:
        raise ValueError("unexpected tag")
    first = data[1]
    if first < 0x80:
        length, offset = first, 2
    else:
        count = first & 0x7F
        if not 1 <= count <= 3 or len(data) < 2 + count:
            raise ValueError("bad length")
        length = int.from_bytes(data[2:2 + count], "big")
        if length < 0x80 or data[2] == 0:
            raise ValueError("non-minimal length")
        offset = 2 + count
    if len(data) < offset + length:
        raise ValueError("truncated")
    return data[offset:offset + length], data[offset + length:]


# -- JWK ---------------------------------------------------------------------------------


def _from_jwk(data: bytes) -> Any:
    try:
        jwk = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError("the JWK is not UTF-8 JSON") from e
    if not isinstance(jwk, Mapping):
        raise ConfigError("a JWK is a JSON object")
    kty = jwk.get("kty")
    try:
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise AlgorithmNotSupported(f"OKP curve {jwk.get('crv')!r} is not supported (Ed25519 is)")
            key: Any = ed25519.Ed25519PrivateKey.from_private_bytes(_member(jwk, "d"))
        elif kty == "EC":
            curve = _EC_CURVES.get(str(jwk.get("crv")))
            if curve is None:
                raise AlgorithmNotSupported(f"EC curve {jwk.get('crv')!r} is not supported")
            size = (curve.key_size + 7) // 8
            key = ec.derive_private_key(_integer(jwk, "d", size), curve)
        elif kty == "RSA":
            key = _rsa_from_jwk(jwk)
        elif kty == "AKP":
            spec = KeySpec.parse(str(jwk.get("alg", "")))
            if spec.family is not KeyFamily.MLDSA:
                raise AlgorithmNotSupported(f"AKP alg {jwk.get('alg')!r} is not ML-DSA")
            key = mldsa_from_seed(spec, _member(jwk, "priv"))
        else:
            raise AlgorithmNotSupported(f"JWK key type {kty!r} is not supported")
    except (ConfigError, AlgorithmNotSupported):
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"malformed private {kty} JWK") from e
    public = {k: jwk[k] for k in ("kty", "crv", "x", "y", "n", "e", "alg", "pub") if k in jwk}
    if set(public) - {"kty", "crv", "alg"}:  # the JWK names its public key: it must be this key's
        theirs = PublicKey.from_jwk(public)
        if theirs != PublicKey(key.public_key()):
            raise ConfigError("the JWK's public members do not belong to its private key")
    return key


def _member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"the private JWK has no {name!r} member")
    try:
        return b64url_decode(value)
    except ValueError:
        raise ConfigError(f"JWK member {name!r} is not unpadded base64url") from None


def _integer(jwk: Mapping[str, Any], name: str, size: int | None = None) -> int:
    raw = _member(jwk, name)
    if size is not None and len(raw) != size:
        raise ConfigError(f"JWK member {name!r} must be {size} bytes (RFC 7518), not {len(raw)}")
    return int.from_bytes(raw, "big")


def _rsa_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPrivateKey:
    n, e, d = _integer(jwk, "n"), _integer(jwk, "e"), _integer(jwk, "d")
    if all(k in jwk for k in ("p", "q", "dp", "dq", "qi")):
        p, q = _integer(jwk, "p"), _integer(jwk, "q")
        dp, dq, qi = _integer(jwk, "dp"), _integer(jwk, "dq"), _integer(jwk, "qi")
    else:
        p, q = rsa.rsa_recover_prime_factors(n, e, d)
        dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
    return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, rsa.RSAPublicNumbers(e, n)).private_key()
