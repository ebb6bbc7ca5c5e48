"""Transit's wire shapes for `backends.vault_transit`: key types, key records, sign requests and answers.

Kept apart from the store so each module has one job: this one knows what Transit's JSON
looks like (key types per spec, the ``keys`` map of a read, the ``vault:vN:...`` signature
text, the OpenAPI help listing key types); the store decides what to ask.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, BackendUnavailable, ConfigError, InvalidSignature, KeyNotFound
from signers.keys import PublicKey

from .key_wrap import rsa_aes_key_wrap

# -- mapping tables --------------------------------------------------------------------

CLASSICAL_TYPES: dict[KeySpec, str] = {
    KeySpec.ED25519: "ed25519",
    KeySpec.P256: "ecdsa-p256",
    KeySpec.P384: "ecdsa-p384",
    KeySpec.RSA2048: "rsa-2048",
    KeySpec.RSA3072: "rsa-3072",
    KeySpec.RSA4096: "rsa-4096",
}
OPENBAO_MLDSA_TYPES: dict[KeySpec, str] = {
    KeySpec.ML_DSA_44: "mldsa-44",
    KeySpec.ML_DSA_65: "mldsa-65",
    KeySpec.ML_DSA_87: "mldsa-87",
}
HASHICORP_MLDSA_TYPE = "ml-dsa"  # with parameter_set "44" / "65" / "87"
HASHICORP_MLDSA_SETS: dict[KeySpec, str] = {
    KeySpec.ML_DSA_44: "44",
    KeySpec.ML_DSA_65: "65",
    KeySpec.ML_DSA_87: "87",
}
SPEC_BY_TYPE: dict[str, KeySpec] = {t: s for s, t in (CLASSICAL_TYPES | OPENBAO_MLDSA_TYPES).items()}
TRANSIT_HASH = {"sha256": "sha2-256", "sha384": "sha2-384", "sha512": "sha2-512"}

NAME_PATTERN = re.compile(r"\w(?:[\w.\-]*\w)?", re.ASCII)  # Transit's own route pattern for key names
MOUNT_PATTERN = re.compile(r"\w[\w.\-]*(?:/\w[\w.\-]*)*", re.ASCII)  # no "." / ".." segments
SIGNATURE_PATTERN = re.compile(r"^[a-z]+:v(\d+):([A-Za-z0-9+/=]+)$")
@dataclass(frozen=True)
class KeyRecord:
    """One Transit key as read from the server."""

    name: str
    type: str
    spec: KeySpec
    latest: int
    public_keys: Mapping[int, str]  # version -> the server's text (PEM, or base64 raw for Ed25519 / ML-DSA)

    @property
    def versions(self) -> list[int]:
        return sorted(self.public_keys)  # numerically: 10 after 9

    def public_key(self, version: int) -> PublicKey:
        text = self.public_keys.get(version)
        if text is None:
            raise KeyNotFound(f"key {self.name!r} has no version {version} (versions: {self.versions})")
        return public_key_from(self.spec, text)


def version_number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise ConfigError(f"version must be a positive integer, not {text[:20]!r}")
    return int(text)


def check_name(name: str) -> None:
    if not isinstance(name, str) or len(name) > 256 or not NAME_PATTERN.fullmatch(name):
        raise ConfigError("Transit key names are letters, digits, '_', '-' and '.', starting and ending with a "
                          "letter, digit or '_'")


def key_record(name: str, data: Mapping[str, Any]) -> KeyRecord:
    """A key record from Transit's read / create answer; AlgorithmNotSupported for non-signing keys."""
    key_type = str(data.get("type", ""))
    spec = SPEC_BY_TYPE.get(key_type)
    if key_type == HASHICORP_MLDSA_TYPE:
        parameter_set = str(data.get("parameter_set", ""))
        spec = next((s for s, p in HASHICORP_MLDSA_SETS.items() if p == parameter_set), None)
    if spec is None or data.get("supports_signing") is False:
        raise AlgorithmNotSupported(f"key {name!r} is a Transit {key_type or 'unknown'} key, "
                                    "which keyplane does not sign with")
    try:
        public_keys = {int(v): str(info.get("public_key") or "") for v, info in data["keys"].items()}
        latest = int(data.get("latest_version") or max(public_keys))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BackendUnavailable(f"unexpected Transit answer for key {name!r}", e) from e
    return KeyRecord(name=name, type=key_type, spec=spec, latest=latest, public_keys=public_keys)


def public_key_from(spec: KeySpec, text: str) -> PublicKey:
    """Transit gives PEM for EC and RSA, base64 raw bytes for Ed25519 and ML-DSA."""
    if text.lstrip().startswith("-----BEGIN"):
        return PublicKey.from_pem(text)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BackendUnavailable("Transit returned a public key that is neither PEM nor base64", e) from e
    if spec is KeySpec.ED25519:
        try:
            return PublicKey(ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except ValueError as e:
            raise BackendUnavailable("Transit returned a malformed Ed25519 public key", e) from e
    if spec.family is KeyFamily.MLDSA:
        return PublicKey.from_raw_mldsa(spec, raw)
    return PublicKey.from_der(raw)


def sign_parameters(algorithm: SignatureAlgorithm, version: int) -> dict[str, Any]:
    """The fixed part of a sign request for `algorithm` (the input is added per call)."""
    body: dict[str, Any] = {"key_version": version}
    family = algorithm.family
    if family in (KeyFamily.EC, KeyFamily.RSA):
        body.update(prehashed=True, hash_algorithm=TRANSIT_HASH[str(algorithm.hash_name)])
    if family is KeyFamily.EC:
        body["marshaling_algorithm"] = "asn1"
    if family is KeyFamily.RSA:
        body["signature_algorithm"] = "pss" if algorithm.is_pss else "pkcs1v15"
        if algorithm.is_pss:
            body["salt_length"] = "hash"  # PS256 = salt of the hash's length; Transit's default is the maximum
    return body


def signature_from(reply: Mapping[str, Any], name: str, version: int, algorithm: SignatureAlgorithm) -> bytes:
    """The signature bytes of a sign answer for version `version` of key `name`."""
    warnings = " ".join(str(w) for w in reply.get("warnings") or ())
    if "salt_length" in warnings:
        # An older server ignored salt_length and used the maximum salt: not a PS256 signature.
        raise AlgorithmNotSupported(f"this server ignores salt_length, so it cannot make {algorithm.value} "
                                    "signatures with salt = hash length; use RS256 (pkcs1v15)")
    try:
        text = reply["data"]["signature"]
    except (KeyError, TypeError) as e:
        raise BackendUnavailable(f"Transit answered a sign request for {name!r} without a signature", e) from e
    got, signature = parse_signature(str(text))
    if got != version:
        raise BackendUnavailable(f"Transit signed with version {got} of {name!r}, not {version}")
    return signature


def parse_signature(text: str) -> tuple[int, bytes]:
    """``vault:vN:BASE64`` -> (N, signature bytes)."""
    match = SIGNATURE_PATTERN.match(text)
    if match is None:
        raise InvalidSignature("not a Transit signature (expected vault:vN:BASE64)")
    try:
        return int(match.group(1)), base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidSignature("Transit signature is not valid base64") from e


def types_from_help(reply: Any) -> frozenset[str] | None:
    """Key-type names from the server's OpenAPI help for ``keys/<name>`` (the ``type`` parameter's text)."""
    try:
        schemas = reply["openapi"]["components"]["schemas"]
    except (KeyError, TypeError):
        return None
    for schema in schemas.values():
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        description = str(properties.get("type", {}).get("description", ""))
        if "ed25519" in description:
            names = set(re.findall(r'"([a-z0-9][a-z0-9\-]*)"', description))
            if "parameter_set" not in properties:
                names.discard(HASHICORP_MLDSA_TYPE)  # HashiCorp's ML-DSA needs a parameter set
            return frozenset(names)
    return None



def wrap_for_import(wrapping_key_pem: str, pkcs8_der: bytes) -> str:
    """Transit BYOK ciphertext (``hash_function=SHA256``): `rsa_aes_key_wrap` of the PKCS#8 DER, base64."""
    try:
        wrapping = serialization.load_pem_public_key(wrapping_key_pem.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm) as e:
        raise BackendUnavailable("Transit returned a wrapping key that is not a PEM public key", e) from e
    return base64.b64encode(rsa_aes_key_wrap(wrapping, pkcs8_der)).decode("ascii")


def digest_is_valid(public_key: PublicKey, signature: bytes, digest: bytes, algorithm: SignatureAlgorithm) -> bool:
    """Does `signature` verify over the precomputed `digest` (ECDSA / RSA) with `public_key`?"""
    key = public_key.key
    h = algorithm.hash_algorithm()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(Prehashed(h)))
        elif isinstance(key, rsa.RSAPublicKey):
            pad: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if algorithm.is_pss else padding.PKCS1v15()
            )
            key.verify(signature, digest, pad, Prehashed(h))
        else:
            return False
    except (CryptoInvalidSignature, ValueError):
        return False
    return True
