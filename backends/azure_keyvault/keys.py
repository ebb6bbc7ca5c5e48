"""Key Vault's key shapes: which specs it has, JWK <-> PublicKey, key names, and import JWKs."""

from __future__ import annotations

import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError
from signers.keys import PublicKey
from signers.signature_format import curve_size

__all__ = ["ALGORITHMS", "SPECS", "check_name", "import_jwk", "public_key_of", "spec_params", "wire"]

# KeySpec -> (Key Vault key type without -HSM, curve name or RSA size).
SPECS: dict[KeySpec, tuple[str, str | int]] = {
    KeySpec.P256: ("EC", "P-256"),
    KeySpec.P384: ("EC", "P-384"),
    KeySpec.SECP256K1: ("EC", "P-256K"),  # Key Vault's name for secp256k1
    KeySpec.RSA2048: ("RSA", 2048),
    KeySpec.RSA3072: ("RSA", 3072),
    KeySpec.RSA4096: ("RSA", 4096),
}
_UNSUPPORTED: dict[KeySpec, str] = {
    KeySpec.ED25519: "Azure Key Vault does not offer Ed25519 keys (its EC keys are P-256, P-384, P-521 and P-256K)",
    KeySpec.ML_DSA_44: "Azure Key Vault does not offer ML-DSA keys",
    KeySpec.ML_DSA_65: "Azure Key Vault does not offer ML-DSA keys",
    KeySpec.ML_DSA_87: "Azure Key Vault does not offer ML-DSA keys",
}
# Key Vault curve names (incl. the 2016-10-01 spelling) -> KeySpec and the `cryptography` curve.
_CURVES: dict[str, tuple[KeySpec, ec.EllipticCurve]] = {
    "P-256": (KeySpec.P256, ec.SECP256R1()),
    "P-384": (KeySpec.P384, ec.SECP384R1()),
    "P-256K": (KeySpec.SECP256K1, ec.SECP256K1()),
    "SECP256K1": (KeySpec.SECP256K1, ec.SECP256K1()),
}
# Our algorithm names are Key Vault's JsonWebKeySignatureAlgorithm values (ES256K included).
ALGORITHMS = frozenset(
    SignatureAlgorithm(a) for a in ("ES256", "ES384", "ES256K", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512")
)
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")


def spec_params(spec: KeySpec) -> tuple[str, str | int]:
    """(key type, curve or RSA size) for a spec; AlgorithmNotSupported, with why, for what Azure lacks."""
    if spec in _UNSUPPORTED:
        raise AlgorithmNotSupported(f"{spec.value}: {_UNSUPPORTED[spec]}")
    if spec not in SPECS:  # pragma: no cover - every spec is in one of the two tables
        raise AlgorithmNotSupported(f"{spec.value} is not supported by the Azure Key Vault back end")
    return SPECS[spec]


def check_name(name: str) -> None:
    """ConfigError unless `name` is a Key Vault key name (1-127 letters, digits, '-')."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("an Azure Key Vault key name is 1-127 characters of letters, digits and '-'")


def wire(value: Any) -> str:
    """The wire string of an SDK enum member (str() of one gives 'JsonWebKeyType.EC_HSM') or a plain str."""
    return str(getattr(value, "value", value))


def public_key_of(key: Any) -> PublicKey:
    """The PublicKey of a KeyVaultKey's JWK (EC crv/x/y or RSA n/e); AlgorithmNotSupported for other keys."""
    jwk = key.key
    kty = wire(jwk.kty)
    if kty in ("EC", "EC-HSM"):
        crv = wire(jwk.crv)
        if crv not in _CURVES:
            raise AlgorithmNotSupported(f"Azure key {key.name!r} uses curve {crv}, which keyplane does not support")
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"), _CURVES[crv][1]
        )
        return PublicKey(numbers.public_key())
    if kty in ("RSA", "RSA-HSM"):
        rsa_key = rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()
        return PublicKey(rsa_key)
    raise AlgorithmNotSupported(f"Azure key {key.name!r} is of type {kty}, which cannot sign")


def import_jwk(private_key: Any, spec: KeySpec) -> dict[str, Any]:
    """The JsonWebKey fields (bytes, as the SDK takes them) for importing a `cryptography` private key.

    Raises AlgorithmNotSupported for a spec Key Vault cannot hold (Ed25519, ML-DSA).
    """
    kty, param = spec_params(spec)  # plain EC / RSA: HSM protection is the request's `hsm` flag
    ops = ["sign", "verify"]
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        size = curve_size(spec)
        numbers = private_key.private_numbers()
        return {"kty": kty, "crv": param, "key_ops": ops,
                "x": numbers.public_numbers.x.to_bytes(size, "big"), "y": numbers.public_numbers.y.to_bytes(size, "big"),
                "d": numbers.private_value.to_bytes(size, "big")}
    if isinstance(private_key, rsa.RSAPrivateKey):
        rsa_numbers = private_key.private_numbers()
        public = rsa_numbers.public_numbers
        return {"kty": kty, "key_ops": ops, "n": _big(public.n), "e": _big(public.e), "d": _big(rsa_numbers.d),
                "p": _big(rsa_numbers.p), "q": _big(rsa_numbers.q), "dp": _big(rsa_numbers.dmp1),
                "dq": _big(rsa_numbers.dmq1), "qi": _big(rsa_numbers.iqmp)}
    raise AlgorithmNotSupported(f"cannot import a {type(private_key).__name__} into Azure Key Vault")  # pragma: no cover


def _big(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
