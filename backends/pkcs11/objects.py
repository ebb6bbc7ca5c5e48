"""Key objects on a token: templates to make them, finding them, and reading their public keys.

Every function takes the python-pkcs11 module (`sdk()`) and a session lent by the pool;
none of them translates errors (the store and signer do, in one place: `errors.translate`).
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signers.algorithms import KeySpec
from signers.errors import AlgorithmNotSupported, ConfigError, KeyCorrupt, KeyNotFound, KeyplaneError
from signers.keys import PublicKey
from signers.signature_format import curve_size

from .mechanisms import CKK_EC, CKK_EC_EDWARDS, CKK_ML_DSA, CKK_RSA, EC_PARAMS, KEYGEN, PARAMETER_SETS, KeyGen
from .pool import PooledSession, TokenSessions

__all__ = [
    "check_label", "describe", "find_private", "import_templates", "keypair_templates", "object_id", "public_key",
    "read_public", "same_public_key", "spec_of",
]

_CURVES: dict[KeySpec, ec.EllipticCurve] = {
    KeySpec.P256: ec.SECP256R1(), KeySpec.P384: ec.SECP384R1(), KeySpec.SECP256K1: ec.SECP256K1(),
}


def _private_flags(pkcs11: Any, label: str, object_id: bytes) -> dict[Any, Any]:
    """What every private key we make or import is: a token object that signs, sensitive, never extractable."""
    A = pkcs11.Attribute
    return {A.TOKEN: True, A.PRIVATE: True, A.SENSITIVE: True, A.EXTRACTABLE: False, A.SIGN: True,
            A.DECRYPT: False, A.UNWRAP: False, A.DERIVE: False, A.LABEL: label, A.ID: object_id}


def _public_flags(pkcs11: Any, label: str, object_id: bytes) -> dict[Any, Any]:
    A = pkcs11.Attribute
    return {A.TOKEN: True, A.PRIVATE: False, A.VERIFY: True, A.ENCRYPT: False, A.WRAP: False,
            A.LABEL: label, A.ID: object_id}


def keypair_templates(pkcs11: Any, gen: KeyGen, label: str, object_id: bytes) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """C_GenerateKeyPair templates: a token key pair whose private half is sensitive and not extractable."""
    A = pkcs11.Attribute
    public = _public_flags(pkcs11, label, object_id)
    if gen.ec_params is not None:
        public[A.EC_PARAMS] = gen.ec_params
    if gen.parameter_set is not None:
        public[A.PARAMETER_SET] = gen.parameter_set
    return public, _private_flags(pkcs11, label, object_id)


def import_templates(pkcs11: Any, private_key: Any, spec: KeySpec, label: str,
                     object_id: bytes) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """C_CreateObject templates (public, private) for an existing `cryptography` private key.

    The private object gets the same flags as a generated one (CKA_SENSITIVE true,
    CKA_EXTRACTABLE false), so after the import its secret attributes can never be read
    back. Raises AlgorithmNotSupported for a key type this import does not carry (ML-DSA).
    """
    A, C, K = pkcs11.Attribute, pkcs11.ObjectClass, pkcs11.KeyType
    public = {A.CLASS: C.PUBLIC_KEY, **_public_flags(pkcs11, label, object_id)}
    private = {A.CLASS: C.PRIVATE_KEY, **_private_flags(pkcs11, label, object_id)}
    if isinstance(private_key, rsa.RSAPrivateKey):
        numbers = private_key.private_numbers()
        pub = numbers.public_numbers
        parts = {A.MODULUS: pub.n, A.PUBLIC_EXPONENT: pub.e}
        public.update({A.KEY_TYPE: K.RSA, **{k: _big(v) for k, v in parts.items()}})
        private.update({A.KEY_TYPE: K.RSA, **{k: _big(v) for k, v in parts.items()},
                        A.PRIVATE_EXPONENT: _big(numbers.d), A.PRIME_1: _big(numbers.p), A.PRIME_2: _big(numbers.q),
                        A.EXPONENT_1: _big(numbers.dmp1), A.EXPONENT_2: _big(numbers.dmq1),
                        A.COEFFICIENT: _big(numbers.iqmp)})
        return public, private
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        params = KEYGEN[spec].ec_params
        point = private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                      serialization.PublicFormat.UncompressedPoint)
        scalar = private_key.private_numbers().private_value.to_bytes(curve_size(spec), "big")
        public.update({A.KEY_TYPE: K.EC, A.EC_PARAMS: params, A.EC_POINT: _octet_string(point)})
        private.update({A.KEY_TYPE: K.EC, A.EC_PARAMS: params, A.VALUE: scalar})
        return public, private
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        params = KEYGEN[spec].ec_params
        point = private_key.public_key().public_bytes_raw()
        public.update({A.KEY_TYPE: K.EC_EDWARDS, A.EC_PARAMS: params, A.EC_POINT: _octet_string(point)})
        private.update({A.KEY_TYPE: K.EC_EDWARDS, A.EC_PARAMS: params, A.VALUE: private_key.private_bytes_raw()})
        return public, private
    raise AlgorithmNotSupported(f"importing {spec.value} keys into a PKCS#11 token is not supported "
                                "(PKCS#11 3.2 ML-DSA object templates are not implemented here)")


def _big(value: int) -> bytes:
    """A PKCS#11 Big integer: unsigned big-endian, no leading zero bytes."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _octet_string(value: bytes) -> bytes:
    """DER OCTET STRING around a point (CKA_EC_POINT's encoding by the spec)."""
    if len(value) < 0x80:
        return bytes((0x04, len(value))) + value
    return bytes((0x04, 0x81, len(value))) + value


def find_private(pkcs11: Any, pooled: PooledSession, label: str | None, object_id: bytes | None,
                 tokens: TokenSessions) -> Any:
    """The one private key object matching label and/or id.

    Raises ConfigError when several match, KeyNotFound when none does (after checking the
    token is still there and logged in: BackendUnavailable / LoginLost otherwise).
    """
    A = pkcs11.Attribute
    template: dict[Any, Any] = {A.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}
    if label is not None:
        template[A.LABEL] = label
    if object_id is not None:
        template[A.ID] = object_id
    found = list(pooled.session.get_objects(template))
    if len(found) == 1:
        return found[0]
    what = describe(label, object_id)
    if len(found) > 1:
        raise ConfigError(f"{len(found)} private keys match {what} on {tokens.name}; name it by id= as well")
    tokens.check_present(pooled)  # an empty search on a gone token or without a login is not a missing key
    template[A.CLASS] = pkcs11.ObjectClass.PUBLIC_KEY
    if any(True for _ in pooled.session.get_objects(template)):
        raise KeyNotFound(f"key {what} on {tokens.name} has a public half but no private key")
    raise KeyNotFound(f"no key {what} on {tokens.name}")


def read_public(pkcs11: Any, session: Any, private: Any, object_id: bytes, tokens: TokenSessions) -> PublicKey:
    """The key pair's public key: from its public object, or (RSA) from the private object's public parts.

    Raises KeyCorrupt when there is no public half to read and none can be derived.
    """
    A = pkcs11.Attribute
    if private[A.KEY_TYPE] == pkcs11.KeyType.RSA:
        return public_key(pkcs11, private)  # the private object's own modulus: it cannot belong to another key
    # Pair by CKA_ID (PKCS#11's convention); a key made without one is paired by its label.
    pairing = {A.ID: object_id} if object_id else {A.LABEL: private[A.LABEL]}
    candidates = list(session.get_objects({A.CLASS: pkcs11.ObjectClass.PUBLIC_KEY, **pairing}))
    if len(candidates) == 1:
        return public_key(pkcs11, candidates[0])
    raise KeyCorrupt(f"the private key {describe(private[A.LABEL], object_id)} on {tokens.name} has no public key "
                     "object with its id, and its public key cannot be derived")


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    """Whether two public keys are the same key (compared by their DER SubjectPublicKeyInfo)."""
    return a == b


def public_key(pkcs11: Any, obj: Any) -> PublicKey:
    """A PublicKey from a public-key object's attributes (or an RSA private key's modulus and exponent).

    Raises KeyCorrupt for numbers `cryptography` refuses, AlgorithmNotSupported for a curve
    or parameter set keyplane does not know.
    """
    try:
        return _decode_public_key(pkcs11, obj)
    except ValueError as e:  # cryptography refused the numbers: the object is damaged
        raise KeyCorrupt(f"the token holds a public key keyplane cannot decode: {e}") from e


def _decode_public_key(pkcs11: Any, obj: Any) -> PublicKey:
    A = pkcs11.Attribute
    key_type = int(obj[A.KEY_TYPE])
    if key_type == CKK_RSA:
        n = int.from_bytes(obj[A.MODULUS], "big")
        e = int.from_bytes(obj[A.PUBLIC_EXPONENT], "big")
        return PublicKey(rsa.RSAPublicNumbers(e, n).public_key())
    if key_type == CKK_ML_DSA:
        spec = PARAMETER_SETS.get(int(obj[A.PARAMETER_SET]))
        if spec is None:
            raise AlgorithmNotSupported("ML-DSA key with an unknown parameter set")
        return PublicKey.from_raw_mldsa(spec, bytes(obj[A.VALUE]))
    spec = EC_PARAMS.get(bytes(obj[A.EC_PARAMS]))
    if spec is None:
        raise AlgorithmNotSupported(f"EC key on a curve keyplane does not support (params {bytes(obj[A.EC_PARAMS]).hex()})")
    point = _ec_point(bytes(obj[A.EC_POINT]), 32 if spec is KeySpec.ED25519 else 1 + 2 * curve_size(spec))
    if spec is KeySpec.ED25519:
        return PublicKey(ed25519.Ed25519PublicKey.from_public_bytes(point))
    return PublicKey(ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[spec], point))


def _ec_point(value: bytes, size: int) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING by the spec, a bare point on some tokens: accept both."""
    if len(value) == size:
        return value
    if len(value) == size + 2 and value[0] == 0x04 and value[1] == size:
        return value[2:]
    if len(value) == size + 3 and value[0] == 0x04 and value[1] == 0x81 and value[2] == size:
        return value[3:]
    raise KeyCorrupt(f"CKA_EC_POINT of {len(value)} bytes is not a point of {size} bytes")


def spec_of(pkcs11: Any, private: Any) -> KeySpec | None:
    """The spec of a private key object from attributes every token shows, or None if not ours."""
    A = pkcs11.Attribute
    try:
        key_type = int(private[A.KEY_TYPE])
        if key_type == CKK_RSA:
            return KeySpec.parse(f"RSA-{len(bytes(private[A.MODULUS])) * 8}")
        if key_type in (CKK_EC, CKK_EC_EDWARDS):
            return EC_PARAMS.get(bytes(private[A.EC_PARAMS]))
        if key_type == CKK_ML_DSA:
            return PARAMETER_SETS.get(int(private[A.PARAMETER_SET]))
    except (KeyplaneError, pkcs11.PKCS11Error, KeyError, ValueError):
        return None
    return None


def object_id(value: bytes | str | None) -> bytes:
    """A CKA_ID from bytes or hex text (16 random bytes when None); ConfigError otherwise."""
    if value is None:
        return os.urandom(16)
    if isinstance(value, bytes) and value:
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ConfigError("id must be bytes or hexadecimal text") from None
    raise ConfigError("id must be non-empty bytes or hexadecimal text")


def check_label(name: str) -> None:
    """ConfigError unless `name` can be a CKA_LABEL keyplane makes (1-128 bytes of printable text)."""
    if not isinstance(name, str) or not name or len(name.encode("utf-8")) > 128 or not name.isprintable():
        raise ConfigError("key name (CKA_LABEL) must be 1-128 bytes of printable text")


def describe(label: str | None, object_id: bytes | None) -> str:
    """A key as messages name it: its label and/or id (never anything secret)."""
    parts = ([f"{label!r}"] if label is not None else []) + ([f"id={object_id.hex()}"] if object_id else [])
    return " ".join(parts) or "(unnamed)"
