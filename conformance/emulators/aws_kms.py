"""``keyplane emulator aws``: moto's KMS server with AWS's documented Sign semantics.

moto 5.2.5's KMS `Sign` differs from what the AWS KMS API reference documents in ways that
make correct client code fail (measured 2026-11-21):

* ``MessageType=DIGEST`` is ignored: the digest is hashed again, so the signature only
  verifies over ``sha256(digest)``;
* RSASSA-PSS uses the maximum salt length, where AWS uses a salt as long as the hash;
* a RAW message longer than 4096 bytes is accepted (AWS refuses it), so a client that
  forgets to hash long messages would pass;
* a disabled key or one pending deletion still signs (AWS: DisabledException /
  KMSInvalidStateException);
* there is no Ed25519 (``ECC_NIST_EDWARDS25519``) and no ML-DSA (``ML_DSA_44/65/87``).

`documented_sign` replaces moto's `Sign` handler with one that does what the reference
says, for every key type, with the private key moto (or `aws_kms_keys`) holds;
`kms_as_documented()` installs it and the extra key specs for the duration of a `with`.
The test suite's moto fixture and this command use the same code.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from .aws_kms_keys import ExtraKeySpecs

__all__ = ["RAW_LIMIT", "documented_sign", "kms_as_documented", "serve_forever", "start_server"]

RAW_LIMIT = 4096
MU_SIZE = 64


def _kms_error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def _sign_eddsa_mldsa(private: Any, algorithm: str, message_type: str, message: bytes) -> bytes:
    """Ed25519 (pure over RAW; Ed25519ph over a SHA-512 DIGEST) and ML-DSA (RAW or EXTERNAL_MU)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if isinstance(private, ed25519.Ed25519PrivateKey):
        if algorithm == "ED25519_SHA_512" and message_type == "RAW":
            return private.sign(message)
        raise _kms_error("ValidationException",
                         f"{algorithm} with MessageType {message_type} is not emulated (pure Ed25519 is RAW only).")
    if message_type == "RAW":
        signature: bytes = private.sign(message)
        return signature
    if message_type == "EXTERNAL_MU":
        if len(message) != MU_SIZE:
            raise _kms_error("ValidationException", "EXTERNAL_MU must be exactly 64 bytes.")
        mu_signature: bytes = private.sign_mu(message)
        return mu_signature
    raise _kms_error("ValidationException", f"MessageType {message_type} is not valid for {algorithm}.")


def _check_key(key: Any, algorithm: str) -> None:
    if key.key_state == "Disabled":
        raise _kms_error("DisabledException", f"{key.arn} is disabled.")
    if key.key_state != "Enabled":
        raise _kms_error("KMSInvalidStateException", f"{key.arn} is {key.key_state}.")
    if key.key_usage != "SIGN_VERIFY":
        raise _kms_error("InvalidKeyUsageException", f"{key.arn} key usage is {key.key_usage}.")
    if algorithm not in key.signing_algorithms:
        raise _kms_error("ValidationException", f"SigningAlgorithm {algorithm} is not valid for {key.arn}.")


def documented_sign(self: Any) -> str:
    """moto's KMS `Sign`, as the AWS API reference documents it (replaces KmsResponse.sign).

    RAW: 1..4096 bytes, hashed by the service. DIGEST: exactly the algorithm's hash length,
    signed as a pre-hashed value. PSS salt = hash length. EXTERNAL_MU: ML-DSA's 64-byte mu.
    Disabled / pending-deletion keys refused.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    key_id = self._get_param("KeyId")
    message = self._get_param("Message")
    message_type = self._get_param("MessageType") or "RAW"
    algorithm = self._get_param("SigningAlgorithm")
    self._validate_key_id(key_id)
    if isinstance(message, str):
        message = base64.b64decode(message)
    key = self.kms_backend.describe_key(key_id)
    _check_key(key, algorithm)
    if message_type == "RAW" and not 1 <= len(message) <= RAW_LIMIT:
        raise _kms_error("ValidationException", "Message must be 1 to 4096 bytes when MessageType is RAW.")
    private = key.private_key.private_key  # moto's wrapper (and ours) holds the cryptography key
    if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        signature = _sign_eddsa_mldsa(private, algorithm, message_type, message)
    else:
        hash_algorithm = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[-3:]]
        if message_type == "RAW":
            chosen: Any = hash_algorithm
        elif message_type == "DIGEST":
            if len(message) != hash_algorithm.digest_size:
                raise _kms_error("ValidationException", f"Digest is invalid length for algorithm {algorithm}.")
            chosen = Prehashed(hash_algorithm)
        else:
            raise _kms_error("ValidationException", f"MessageType {message_type} is not valid for {algorithm}.")
        if isinstance(private, ec.EllipticCurvePrivateKey):
            signature = private.sign(message, ec.ECDSA(chosen))
        else:
            pad: padding.AsymmetricPadding = (
                padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
                if "_PSS_" in algorithm else padding.PKCS1v15()
            )
            signature = private.sign(message, pad, chosen)
    return json.dumps(
        {"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(), "SigningAlgorithm": algorithm}
    )


@contextmanager
def kms_as_documented() -> Iterator[None]:
    """Install `documented_sign` and the extra key specs in moto's KMS (this process only)."""
    from moto.kms.responses import KmsResponse

    original = KmsResponse.sign
    KmsResponse.sign = documented_sign  # type: ignore[method-assign]
    try:
        with ExtraKeySpecs():
            yield
    finally:
        KmsResponse.sign = original  # type: ignore[method-assign]


@contextmanager
def start_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[Any]:
    """moto's ThreadedMotoServer with the documented KMS, running for the duration; yields it (``.port``)."""
    import socket

    from moto.server import ThreadedMotoServer

    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    with kms_as_documented():
        server.start()
        server.port = port  # type: ignore[attr-defined]  # the chosen port, for callers
        try:
            yield server
        finally:
            server.stop()


def serve_forever(host: str, port: int, **options: Any) -> None:
    """Run until interrupted, printing how to point keyplane (and its harness) at it."""
    from importlib.metadata import version

    with start_server(host, port) as server:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(f"AWS KMS emulator (moto {version('moto')} with AWS's documented Sign; Ed25519 and ML-DSA served by "
              f"cryptography) on http://{host}:{server.port}", flush=True)
        print("any credentials are accepted, e.g.:\n"
              "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1\n"
              f"  keyplane conformance run awskms://{shown}:{server.port}/", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()
