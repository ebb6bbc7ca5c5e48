"""PKCS#11 optional capabilities on a real SoftHSM2 token: import (C_CreateObject), digest signing,
and a key replaced under the same label and id (here or by another process) never signed with.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils

from backends.pkcs11 import Pkcs11KeyStore
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, ConfigError, KeyExists, KeyNotFound
from signers.signature_format import checked_digest
from signers.signer import DigestSigner, ImportingKeyStore, capabilities_of
from tests.fixtures.softhsm import SoftHsmToken

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

IMPORTS: dict[str, Callable[[], Any]] = {
    "P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "P-384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "Ed25519": ed25519.Ed25519PrivateKey.generate,
    "RSA-2048": lambda: rsa.generate_private_key(65537, 2048),
}


def _raw_session(token: SoftHsmToken) -> Any:
    """A python-pkcs11 session on the token this process is already logged in to (shares our module)."""
    import pkcs11

    return pkcs11.lib(token.module).get_token(token_label=token.label).open(rw=True)


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def test_protocols_are_discovered(store: Pkcs11KeyStore) -> None:
    caps = capabilities_of(store)
    assert {"import", "sign-digest"} <= caps.protocols
    assert "rotate" not in caps.protocols and "disable" not in caps.protocols  # PKCS#11 has neither
    assert caps.deletion == "immediate"
    assert isinstance(store, ImportingKeyStore)


@pytest.mark.parametrize("kind", sorted(IMPORTS))
def test_imported_key_signs_and_stays_secret(store: Pkcs11KeyStore, softhsm_token: SoftHsmToken, kind: str) -> None:
    import pkcs11

    A = pkcs11.Attribute
    private_key = IMPORTS[kind]()
    label = f"imported-{kind}"
    signer = store.import_key(label, private_key)
    assert signer.public_key.to_der() == _spki(private_key.public_key())
    for message in (b"", b"imported", os.urandom(5000)):
        signer.public_key.verify(signer.sign(message), message, signer.algorithm)
    reopened = store.open(label)
    assert reopened.public_key == signer.public_key
    reopened.public_key.verify(reopened.sign(b"again"), b"again", reopened.algorithm)

    session = _raw_session(softhsm_token)
    try:
        (private,) = session.get_objects({A.CLASS: pkcs11.ObjectClass.PRIVATE_KEY, A.LABEL: label})
        assert private[A.SENSITIVE] is True and private[A.EXTRACTABLE] is False
        assert private[A.TOKEN] and private[A.PRIVATE] and private[A.SIGN] and not private[A.DECRYPT]
        secret = A.PRIVATE_EXPONENT if kind.startswith("RSA") else A.VALUE
        with pytest.raises(pkcs11.PKCS11Error):
            private[secret]  # C_GetAttributeValue of the secret is refused once imported
    finally:
        session.close()
    with pytest.raises(KeyExists):
        store.import_key(label, private_key)


def test_import_refuses_what_it_cannot_carry(store: Pkcs11KeyStore) -> None:
    with pytest.raises(AlgorithmNotSupported):
        store.import_key("imported-mldsa", mldsa.MLDSA44PrivateKey.generate())
    with pytest.raises(ConfigError):
        store.import_key("imported-junk", b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(ConfigError):
        store.import_key("imported-opts", ec.generate_private_key(ec.SECP256R1()), colour="blue")
    names = {k.name for k in store.list_keys()}
    assert not names & {"imported-mldsa", "imported-junk", "imported-opts"}  # nothing half-made


@pytest.mark.parametrize(("spec", "algorithm"), [
    (KeySpec.P256, "ES256"), (KeySpec.P384, "ES384"), (KeySpec.SECP256K1, "ES256K"),
    (KeySpec.RSA2048, "PS256"), (KeySpec.RSA2048, "RS256"), (KeySpec.RSA2048, "PS384"),
])
def test_sign_digest_signs_the_digest_as_given(store: Pkcs11KeyStore, spec: KeySpec, algorithm: str) -> None:
    name = f"digest-{spec.value}-{algorithm}"
    try:
        signer = store.open(name, algorithm)
    except KeyNotFound:
        signer = store.create_key(name, spec, algorithm=algorithm)
    assert isinstance(signer, DigestSigner)
    alg = SignatureAlgorithm(algorithm)
    h = alg.hash_algorithm()
    digest = hashlib.sha3_256(b"m").digest() if h.digest_size == 32 else hashlib.sha3_384(b"m").digest()
    signature = signer.sign_digest(digest)  # a digest no hash of ours made: proves it is not hashed again
    key = signer.public_key.key
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, digest, ec.ECDSA(utils.Prehashed(h)))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        pad = padding.PSS(padding.MGF1(h), h.digest_size) if alg.is_pss else padding.PKCS1v15()
        key.verify(signature, digest, pad, utils.Prehashed(h))
    with pytest.raises(ConfigError):
        signer.sign_digest(digest[:-1])


def test_sign_digest_refused_for_ed25519(store: Pkcs11KeyStore) -> None:
    try:
        signer = store.open("digest-ed25519")
    except KeyNotFound:
        signer = store.create_key("digest-ed25519", KeySpec.ED25519)
    with pytest.raises(AlgorithmNotSupported):
        signer.sign_digest(bytes(32))


def test_key_replaced_in_this_process_is_not_signed_with(store: Pkcs11KeyStore, softhsm_store_uri: str) -> None:
    old = store.create_key("replaced-here", KeySpec.P256, id="a1a2")
    old.public_key.verify(old.sign(b"before"), b"before", old.algorithm)  # its key object is now cached
    with Pkcs11KeyStore.from_uri(softhsm_store_uri) as other:
        other.delete_key("replaced-here")
        new = other.create_key("replaced-here", KeySpec.P256, id="a1a2")  # same label, same CKA_ID
    with pytest.raises(KeyNotFound, match="replaced"):
        old.sign(b"after")
    fresh = store.open("replaced-here")
    assert fresh.public_key == new.public_key != old.public_key
    fresh.public_key.verify(fresh.sign(b"after"), b"after", fresh.algorithm)


def test_key_replaced_by_another_process_is_not_signed_with(store: Pkcs11KeyStore) -> None:
    old = store.create_key("replaced-elsewhere", KeySpec.ED25519, id="b1b2")
    old.public_key.verify(old.sign(b"before"), b"before", old.algorithm)
    code = (
        "import sys\n"
        "from backends.pkcs11 import Pkcs11KeyStore\n"
        "with Pkcs11KeyStore.from_uri(sys.argv[1]) as s:\n"
        "    s.delete_key('replaced-elsewhere')\n"
        "    s.create_key('replaced-elsewhere', 'Ed25519', id='b1b2')\n"
    )
    subprocess.run([sys.executable, "-c", code, store.uri], check=True, cwd=ROOT, timeout=120)
    for _ in range(3):  # however often it is asked, never a signature from the other key
        with pytest.raises(KeyNotFound):
            old.sign(b"after")


@pytest.mark.parametrize("query", ["max-sessions=abc", "max-sessions=0", "max-sessions=1.5"])
def test_bad_numbers_name_the_attribute(softhsm_token: SoftHsmToken, query: str) -> None:
    with pytest.raises(ConfigError, match="max-sessions"):
        Pkcs11KeyStore.from_uri(f"{softhsm_token.uri()}&{query}")
    with pytest.raises(ConfigError, match="slot-id"):
        Pkcs11KeyStore.from_uri(softhsm_token.uri().replace("pkcs11:", "pkcs11:slot-id=x;", 1))


def test_a_digest_that_is_not_bytes_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        checked_digest(SignatureAlgorithm.ES256, "0" * 32)  # type: ignore[arg-type]
