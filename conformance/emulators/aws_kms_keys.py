"""Key types moto 5.2.5's KMS lacks, served with real `cryptography` keys: Ed25519 and ML-DSA.

`ExtraKeySpecs` (a context manager) teaches moto the AWS key specs
``ECC_NIST_EDWARDS25519`` and ``ML_DSA_44`` / ``ML_DSA_65`` / ``ML_DSA_87``: CreateKey
accepts them, the key is made by `cryptography`, GetPublicKey returns its SPKI DER and
DescribeKey lists the signing algorithms AWS documents (``ED25519_SHA_512`` and
``ED25519_PH_SHA_512``; ``ML_DSA_SHAKE_256``). Signing itself is in `aws_kms.documented_sign`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

__all__ = ["EXTRA_SIGNING_ALGORITHMS", "ExtraKeySpecs", "ExtraPrivateKey"]

_MLDSA: dict[str, Any] = {"ML_DSA_44": mldsa.MLDSA44PrivateKey, "ML_DSA_65": mldsa.MLDSA65PrivateKey,
          "ML_DSA_87": mldsa.MLDSA87PrivateKey}
EXTRA_SIGNING_ALGORITHMS = {
    "ECC_NIST_EDWARDS25519": ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
    **{spec: ["ML_DSA_SHAKE_256"] for spec in _MLDSA},
}


class ExtraPrivateKey:
    """moto's private-key shape (sign / verify / public_key) around a `cryptography` key."""

    def __init__(self, key_spec: str) -> None:
        self.key_spec = key_spec
        self.private_key: Any = (ed25519.Ed25519PrivateKey.generate() if key_spec == "ECC_NIST_EDWARDS25519"
                                 else _MLDSA[key_spec].generate())

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        signature: bytes = self.private_key.sign(message)
        return signature

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        try:
            self.private_key.public_key().verify(signature, message)
        except Exception:
            return False
        return True

    def public_key(self) -> bytes:
        der: bytes = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return der


class ExtraKeySpecs:
    """Install the extra key specs in moto's KMS (this process) for the duration of a `with`."""

    def __enter__(self) -> ExtraKeySpecs:
        from moto.kms import models

        self._models = models
        backend = models.KmsBackend
        self._saved = (backend._KmsBackend__ensure_valid_key_spec,  # type: ignore[attr-defined]
                       models.generate_private_key, models.Key.signing_algorithms)
        check, generate = self._saved[0], self._saved[1]
        algorithms: Any = self._saved[2]

        def ensure_valid_key_spec(self: Any, key_spec: str) -> None:
            if key_spec not in EXTRA_SIGNING_ALGORITHMS:
                check(self, key_spec)

        def generate_private_key(key_spec: str) -> Any:
            return ExtraPrivateKey(key_spec) if key_spec in EXTRA_SIGNING_ALGORITHMS else generate(key_spec)

        def signing_algorithms(key: Any) -> Any:
            if key.key_spec in EXTRA_SIGNING_ALGORITHMS and key.key_usage == "SIGN_VERIFY":
                return list(EXTRA_SIGNING_ALGORITHMS[key.key_spec])
            return algorithms.fget(key)

        backend._KmsBackend__ensure_valid_key_spec = ensure_valid_key_spec  # type: ignore[attr-defined]
        models.generate_private_key = generate_private_key
        models.Key.signing_algorithms = property(signing_algorithms)  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        check, generate, algorithms = self._saved
        self._models.KmsBackend._KmsBackend__ensure_valid_key_spec = check  # type: ignore[attr-defined]
        self._models.generate_private_key = generate
        self._models.Key.signing_algorithms = algorithms  # type: ignore[method-assign]
