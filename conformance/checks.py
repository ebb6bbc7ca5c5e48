"""The checks, one function each; the runner decides order, timing and what a result means.

A check returns a short detail (pass), raises `CheckFailed` (fail) or `Unsupported`
(not-supported, with the reason). Any other exception is a fail naming it. Verification
is always `cryptography`, through `PublicKey.verify` where an algorithm row exists, and
directly for the "other algorithm" negatives that have no row (ECDSA with another hash,
ML-DSA with a context). A composite variant's signatures are verified by the composite
verifier and again, half by half, by `composite_checks.verify_independently`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature, encode_dss_signature

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.composite import CompositeAlgorithm, CompositePublicKey
from signers.errors import AlgorithmNotSupported, InvalidSignature
from signers.keys import PublicKey, b64url_encode
from signers.local_keys import generate_private_key
from signers.signer import KeyInfo, KeyStore, Signer

from . import composite_checks
from .plan import CHECKS, STORE_CHECKS
from .specs import AnyPublicKey, Spec

__all__ = [
    "CHECKS",
    "MESSAGE_SIZES",
    "STORE_CHECKS",
    "CheckFailed",
    "SpecState",
    "Unsupported",
    "rfc7638_thumbprint",
    "diagnose",
    "expected_key_id",
    "public_key_der",
    "signature_format_problem",
]

MESSAGE_SIZES = (0, 1, 32, 4097, 1 << 20)
LARGE_MESSAGE = 1 << 20
LIMITED_SIZES = (0, 4097, LARGE_MESSAGE)  # sizes a service may document it cannot sign

# Group orders, to check r and s are in range.
_EC_ORDER = {
    KeySpec.P256: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    KeySpec.P384: int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
    ),
    KeySpec.SECP256K1: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}
# FIPS 204, Table 2.
_MLDSA_SIZE = {KeySpec.ML_DSA_44: 2420, KeySpec.ML_DSA_65: 3309, KeySpec.ML_DSA_87: 4627}


class CheckFailed(Exception):
    """The back end did something the contract forbids; the message says what."""


class Unsupported(Exception):
    """The check cannot run here (capability not claimed, input not given); the message says why."""


@dataclass
class SpecState:
    """What the checks of one key spec share: the key made in `create` and what was signed with it.

    A fresh worker (after a crash) gets `name`, `created`, `deleted` and the public key seen
    when the key was made (`expected_der`); `need_signer` then re-opens the key by name.
    """

    store: KeyStore
    spec: Spec
    name: str
    signer: Signer | None = None
    reopened: Signer | None = None
    signatures: list[tuple[bytes, bytes]] = field(default_factory=list)  # (message, signature)
    extra: list[tuple[bytes, bytes]] = field(default_factory=list)  # other signatures of this key (nonce check)
    child_key_id: str | None = None
    created: bool = False
    deleted: bool = False
    expected_der: bytes | None = None  # set when restored in a fresh worker
    sibling: str | None = None

    def need_signer(self) -> Signer:
        if self.signer is None and self.expected_der is not None and not self.deleted:
            signer = self.store.open(self.name)
            if public_key_der(signer.public_key) != self.expected_der:
                raise CheckFailed(f"re-opening {self.name} in a fresh worker gave another public key")
            self.signer = signer
        if self.signer is None:
            raise CheckFailed("no key to check: create/open failed")
        return self.signer

    def all_signatures(self) -> list[tuple[bytes, bytes]]:
        return self.signatures + self.extra


# -- primitives --------------------------------------------------------------------------


def rfc7638_thumbprint(public_key: Any) -> str:
    """RFC 7638 thumbprint computed here from the `cryptography` key, independently of signers.keys.

    ML-DSA (JWK kty AKP, draft-ietf-cose-dilithium) uses the members alg, kty, pub.
    """
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        members = {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(public_key.public_bytes_raw())}
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp256k1": "secp256k1"}[public_key.curve.name]
        size = (public_key.curve.key_size + 7) // 8
        nums = public_key.public_numbers()
        members = {"crv": crv, "kty": "EC", "x": b64url_encode(nums.x.to_bytes(size, "big")),
                   "y": b64url_encode(nums.y.to_bytes(size, "big"))}
    elif isinstance(public_key, rsa.RSAPublicKey):
        rn = public_key.public_numbers()
        members = {"e": b64url_encode(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big")), "kty": "RSA",
                   "n": b64url_encode(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big"))}
    else:
        raw = public_key.public_bytes_raw()
        alg = {1312: "ML-DSA-44", 1952: "ML-DSA-65", 2592: "ML-DSA-87"}[len(raw)]
        members = {"alg": alg, "kty": "AKP", "pub": b64url_encode(raw)}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def expected_key_id(public_key: AnyPublicKey) -> str:
    """The key id computed here (RFC 7638; for a composite key from its halves' `cryptography` keys)."""
    if isinstance(public_key, CompositePublicKey):
        return composite_checks.thumbprint(public_key)
    return rfc7638_thumbprint(public_key.key)


def signature_format_problem(spec: Spec, public_key: Any, signature: bytes) -> str | None:
    """Why `signature` is not in the standard X.509 form for `spec`, or None."""
    if isinstance(spec, CompositeAlgorithm):
        return composite_checks.format_problem(spec, public_key, signature, lambda pk, sig: signature_format_problem(
            pk.spec, pk, sig))
    family = spec.family
    if family is KeyFamily.EC:
        try:
            r, s = decode_dss_signature(signature)
        except ValueError:
            return f"not a DER Ecdsa-Sig-Value ({len(signature)} bytes; raw r||s?)"
        if encode_dss_signature(r, s) != signature:
            return "DER Ecdsa-Sig-Value is not canonical (re-encoding differs)"
        order = _EC_ORDER[spec]
        if not (0 < r < order and 0 < s < order):
            return "r or s outside [1, n-1]"
        return None
    if family is KeyFamily.EDDSA:
        return None if len(signature) == 64 else f"Ed25519 signature is {len(signature)} bytes, not 64"
    if family is KeyFamily.RSA:
        key = public_key.key
        assert isinstance(key, rsa.RSAPublicKey)
        size = (key.key_size + 7) // 8
        return None if len(signature) == size else f"RSA signature is {len(signature)} bytes, not the modulus's {size}"
    expected = _MLDSA_SIZE[spec]
    return None if len(signature) == expected else f"{spec.value} signature is {len(signature)} bytes, FIPS 204 says {expected}"


def diagnose(public_key: PublicKey, algorithm: SignatureAlgorithm, signature: bytes, message: bytes,
             uri: str = "") -> str:
    """Why a signature that does not verify under `algorithm` was made, when it is a known mistake.

    Tried: the digest hashed again (moto <= 5.2.5 with MessageType=DIGEST), RSASSA-PSS with a
    salt other than the hash length (moto pads with the maximum), another algorithm of the key.
    """
    if isinstance(public_key, CompositePublicKey):
        return ""  # the negatives row names what a composite signature got wrong
    key = public_key.key
    aws = uri.startswith("awskms:")
    hint = "; use `keyplane emulator aws` (AWS's documented Sign semantics)" if aws else ""
    if algorithm.hash_name is not None:
        digest_message = hashes.Hash(algorithm.hash_algorithm())
        digest_message.update(message)
        once = digest_message.finalize()
        if public_key.is_valid(signature, once, algorithm):
            who = "this endpoint double-hashes DIGEST messages: moto <= 5.2.5 does this" if aws else \
                "the service hashed the digest again (it signed H(H(message)))"
            return f" ({who}{hint})"
        if isinstance(key, rsa.RSAPublicKey) and algorithm.is_pss:
            h = algorithm.hash_algorithm()
            for candidate in (message, once):
                try:
                    chosen = h if candidate is message else Prehashed(h)
                    key.verify(signature, candidate, padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.AUTO),
                               chosen)
                except (CryptoInvalidSignature, ValueError, TypeError):
                    continue
                twice = "" if candidate is message else ", over the digest hashed again"
                return (f" (RSASSA-PSS with a salt other than the {h.digest_size}-byte hash length{twice}; "
                        f"AWS KMS and RFC 8017 practice use salt = hash length{hint})")
    for other in public_key.spec.algorithms:
        if other is not algorithm and public_key.is_valid(signature, message, other):
            return f" (it verifies as {other.value}: the signer used the wrong algorithm)"
    return ""


@functools.cache
def other_public_key(spec: Spec) -> AnyPublicKey:
    """A different key of the same spec (made once per process), for the other-key negative."""
    if isinstance(spec, CompositeAlgorithm):
        return composite_checks.other_public_key(spec)
    return PublicKey(generate_private_key(spec).public_key())


def _flip(data: bytes, bit: int = 0) -> bytes:
    if not data:
        return b"\x01"
    index = (bit // 8) % len(data)
    out = bytearray(data)
    out[index] ^= 1 << (bit % 8)
    return bytes(out)


def _other_algorithm_verifiers(spec: Spec, algorithm: Any, public_key: Any) -> dict[
    str, Callable[[bytes, bytes], None]
]:
    """Verifiers for the same key under a different algorithm; each raises on an invalid signature."""
    out: dict[str, Callable[[bytes, bytes], None]] = {}
    if isinstance(spec, CompositeAlgorithm):
        return out  # a variant's only algorithm is itself; `composite_checks.tampered` verifies as other variants
    for other in spec.algorithms:
        if other is not algorithm:
            out[other.value] = functools.partial(_verify_with, public_key, other)
    key = public_key.key
    if isinstance(key, ec.EllipticCurvePublicKey):
        other_hash: hashes.HashAlgorithm = hashes.SHA384() if algorithm.hash_name == "sha256" else hashes.SHA256()
        out[f"ECDSA-{other_hash.name.upper()}"] = lambda sig, msg: key.verify(sig, msg, ec.ECDSA(other_hash))
    elif isinstance(key, mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey):
        ml_key = key  # a context string makes it a different signature (FIPS 204 domain separation)
        out[f"{spec.value} with context"] = lambda sig, msg: ml_key.verify(sig, msg, b"keyplane-conformance")
    return out


def _verify_with(public_key: Any, algorithm: Any, signature: bytes, message: bytes) -> None:
    public_key.verify(signature, message, algorithm)


def _accepts(verify: Callable[[bytes, bytes], None], signature: bytes, message: bytes) -> bool:
    try:
        verify(signature, message)
    except (InvalidSignature, CryptoInvalidSignature, AlgorithmNotSupported, ValueError, TypeError):
        return False  # refused (a typed refusal of the algorithm too)
    return True


# -- per-spec checks -----------------------------------------------------------------------


def check_open(state: SpecState) -> str:
    signer = state.need_signer()
    by_name = state.store.open(state.name)
    by_uri = state.store.open(signer.uri)
    state.reopened = by_name
    problems = []
    for how, opened in (("by name", by_name), ("by URI", by_uri)):
        if opened.algorithm is not state.spec.default_algorithm:
            problems.append(f"open {how} gave {opened.algorithm.value}, default is {state.spec.default_algorithm.value}")
        if opened.public_key.spec is not state.spec:
            problems.append(f"open {how} gave a {opened.public_key.spec.value} key")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"by name and by URI {signer.uri}"


def check_public_key(state: SpecState, listing: list[KeyInfo] | None) -> str:
    signer = state.need_signer()
    if state.reopened is None:
        raise CheckFailed("re-open failed (see open)")
    if state.reopened.public_key != signer.public_key:
        raise CheckFailed("the re-opened key's public key differs from the one create returned")
    if signer.public_key.spec is not state.spec:
        raise CheckFailed(f"created a {signer.public_key.spec.value} key, asked for {state.spec.value}")
    info = _find(listing or [], state, signer)
    if info is not None and info.key_id is not None and info.key_id != signer.key_id:
        raise CheckFailed(f"list_keys reports key_id {info.key_id}, the signer {signer.key_id}")
    via = " and list_keys key_id" if info is not None and info.key_id is not None else ""
    return f"re-open{via} match"


def check_key_id(state: SpecState, process_local: bool = False) -> str:
    """RFC 7638 thumbprint, the same after a re-open and in another process (unless the store's
    keys are process-local, when that part cannot apply and the row is not-supported)."""
    signer = state.need_signer()
    expected = expected_key_id(signer.public_key)
    problems = []
    if signer.key_id != expected:
        problems.append(f"key_id {signer.key_id} is not the RFC 7638 thumbprint {expected}")
    if state.reopened is not None and state.reopened.key_id != signer.key_id:
        problems.append(f"re-open gave key_id {state.reopened.key_id}")
    if process_local:
        pass
    elif state.child_key_id is None:
        problems.append("no key_id from the child process (see threads)")
    elif state.child_key_id != signer.key_id:
        problems.append(f"a child process got key_id {state.child_key_id}")
    if problems:
        raise CheckFailed("; ".join(problems))
    if process_local:
        raise Unsupported(f"{signer.key_id} is the RFC 7638 thumbprint; the cross-process key_id check does not "
                          "apply: the store's keys are process-local (Capabilities.process_local)")
    return f"{signer.key_id} (RFC 7638; same after re-open and in a child process)"


def check_sign_verify(state: SpecState) -> str:
    """Every size must sign and verify. The empty, the 4097-byte and the 1 MiB message may be refused with
    AlgorithmNotSupported (a documented service limit: Cloud KMS signs pure Ed25519 up to 64 KiB, AWS KMS
    only over a RAW message of 1 to 4096 bytes): the row is then not-supported, saying which.
    The 1- and 32-byte messages must always sign."""
    signer = state.need_signer()
    problems, refused, verified = [], [], []
    for size in MESSAGE_SIZES:
        message = os.urandom(size)
        try:
            signature = signer.sign(message)
        except AlgorithmNotSupported as e:
            if size not in LIMITED_SIZES:  # only these may hit a documented service limit
                problems.append(f"{_size(size)}: sign raised AlgorithmNotSupported: {e}")
            else:
                refused.append(f"{_size(size)} refused: AlgorithmNotSupported: {e}")
            continue
        except Exception as e:
            problems.append(f"{_size(size)}: sign raised {type(e).__name__}: {e}")
            continue
        state.signatures.append((message, signature))
        try:
            signer.public_key.verify(signature, message, signer.algorithm)
        except InvalidSignature:
            why = diagnose(signer.public_key, signer.algorithm, signature, message, signer.uri)
            problems.append(f"{_size(size)}: signature does not verify{why}")
            continue
        if isinstance(signer.public_key, CompositePublicKey) and not _accepts(
                functools.partial(composite_checks.verify_independently, signer.public_key), signature, message):
            problems.append(f"{_size(size)}: the composite verifier accepts it, the half-by-half check with "
                            "cryptography does not")
            continue
        verified.append(_size(size))
    if problems:
        raise CheckFailed("; ".join(problems + refused))
    if refused:
        raise Unsupported("; ".join(refused) + (f" (verified: {', '.join(verified)})" if verified else ""))
    return "messages of " + ", ".join(verified) + " verify"


def check_signature_format(state: SpecState) -> str:
    signer = state.need_signer()
    if not state.signatures:
        raise CheckFailed("no signatures to inspect (see sign-verify)")
    problems = {p for _, sig in state.signatures if (p := signature_format_problem(state.spec, signer.public_key, sig))}
    if problems:
        raise CheckFailed("; ".join(sorted(problems)))
    return _format_name(state.spec)


def check_negatives(state: SpecState) -> str:
    signer = state.need_signer()
    good = [(m, s) for m, s in state.signatures if signer.public_key.is_valid(s, m, signer.algorithm)]
    if not good:
        raise CheckFailed("no valid signature to tamper with (see sign-verify)")
    message, signature = next(((m, s) for m, s in good if len(m) == 32), good[0])
    own = functools.partial(_verify_with, signer.public_key, signer.algorithm)
    cases: dict[str, tuple[Callable[[bytes, bytes], None], bytes, bytes]] = {
        "flipped message bit": (own, signature, _flip(message, 5)),
        "flipped signature bit": (own, _flip(signature, 8 * (len(signature) // 2) + 3), message),
        "other key": (functools.partial(_verify_with, other_public_key(state.spec), signer.algorithm), signature, message),
    }
    others = _other_algorithm_verifiers(state.spec, signer.algorithm, signer.public_key)
    for name, verify in others.items():
        cases[f"other algorithm {name}"] = (verify, signature, message)
    if isinstance(signer.public_key, CompositePublicKey):
        cases.update(composite_checks.tampered(signer.public_key, signature, message))
    accepted = [name for name, (verify, sig, msg) in cases.items() if _accepts(verify, sig, msg)]
    if accepted:
        raise CheckFailed("verification accepted: " + ", ".join(accepted))
    note = "" if others else " (the spec has no other algorithm)"
    if isinstance(state.spec, CompositeAlgorithm):
        note = ": " + ", ".join(cases)
    return f"{len(cases)} tampered cases rejected{note}"


def check_list_keys(state: SpecState, listing: list[KeyInfo] | None, error: str | None) -> str:
    if not state.store.capabilities.list:
        raise Unsupported("the store does not claim list (Capabilities.list is False)")
    if error is not None:
        raise CheckFailed(f"list_keys raised {error}")
    signer = state.need_signer()
    info = _find(listing or [], state, signer)
    if info is None:
        raise CheckFailed(f"list_keys ({len(listing or [])} keys) does not include {state.name}")
    return f"found as {info.name}"


# -- helpers -----------------------------------------------------------------------------


def _find(listing: list[KeyInfo], state: SpecState, signer: Signer) -> KeyInfo | None:
    for info in listing:
        if info.name == state.name or info.uri == signer.uri or (info.key_id is not None and info.key_id == signer.key_id):
            return info
    return None


def _size(size: int) -> str:
    return "1 MiB" if size == 1 << 20 else f"{size} B"


def _format_name(spec: Spec) -> str:
    if isinstance(spec, CompositeAlgorithm):
        return composite_checks.FORMAT
    return {
        KeyFamily.EC: "canonical DER Ecdsa-Sig-Value",
        KeyFamily.EDDSA: "64 bytes",
        KeyFamily.RSA: "modulus length",
        KeyFamily.MLDSA: f"FIPS 204 length {_MLDSA_SIZE.get(spec)}",
    }[spec.family]


def public_key_der(public_key: AnyPublicKey) -> bytes:
    """The SubjectPublicKeyInfo (a composite key's has the variant's OID)."""
    return public_key.to_der()
