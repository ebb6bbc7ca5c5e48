"""CompositeSigner over real back ends' signers, the composite: URI, and the bad inputs issue 20 lists."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa

import signers
from signers import KeySpec, SignatureAlgorithm
from signers.composite import (
    PREFIX,
    CompositeAlgorithm,
    CompositeKeyStore,
    CompositePublicKey,
    CompositeSigner,
    LocalSigner,
    MuSigner,
    composite_uri,
    generate,
)
from signers.errors import AlgorithmNotSupported, ConfigError, InvalidSignature, KeyExists, KeyNotFound
from signers.local_keys import generate_private_key
from signers.x509 import CertificateAuthority

V = CompositeAlgorithm
MESSAGE = b"pay 10 EUR to account 42"
REQUIRED = [V.MLDSA65_ED25519_SHA512, V.MLDSA65_ECDSA_P256_SHA512, V.MLDSA87_ECDSA_P384_SHA512, V.MLDSA44_ED25519_SHA512]


def _composite(variant: CompositeAlgorithm) -> CompositeSigner:
    return CompositeSigner(*generate(variant), variant)


@pytest.mark.parametrize("variant", REQUIRED, ids=str)
def test_sign_and_verify_both_ways(variant: CompositeAlgorithm) -> None:
    signer = _composite(variant)
    assert isinstance(signer, signers.Signer)
    signature = signer.sign(MESSAGE)
    assert len(signature) > variant.mldsa_signature_size
    signer.public_key.verify(signature, MESSAGE)
    async_signature = asyncio.run(signer.sign_async(MESSAGE))
    signer.public_key.verify(async_signature, MESSAGE)
    # The halves are the draft's: ML-DSA over M' with the label as context, the traditional half over M'.
    representative = PREFIX + variant.label + b"\x00" + variant.prehash(MESSAGE)
    assert variant.message_representative(MESSAGE) == representative
    mldsa_half, classical_half = signer.public_key.split_signature(signature)
    signer.public_key.mldsa.verify(mldsa_half, representative, context=variant.label)
    signer.public_key.classical.verify(classical_half, representative, variant.classical_algorithm)


def test_wrong_label_is_refused() -> None:
    """An ML-DSA half signed with another context (empty, or another variant's label) does not verify."""
    variant = V.MLDSA65_ED25519_SHA512
    mldsa_half, classical_half = generate(variant)
    key = CompositePublicKey(variant, mldsa_half.public_key, classical_half.public_key)
    representative = variant.message_representative(MESSAGE)
    good_classical = classical_half.sign(representative)
    for label in (b"", V.MLDSA65_ECDSA_P256_SHA512.label, variant.label[:-1]):
        hasher = mldsa.MLDSAMuHasher(mldsa_half.public_key.key, label)  # type: ignore[arg-type]
        hasher.update(representative)
        with pytest.raises(InvalidSignature):
            key.verify(mldsa_half.sign_mu(hasher.finalize()) + good_classical, MESSAGE)
    # a traditional half over another variant's M' (wrong label in M')
    other = V.MLDSA65_ECDSA_P256_SHA512.message_representative(MESSAGE)
    hasher = mldsa.MLDSAMuHasher(mldsa_half.public_key.key, variant.label)  # type: ignore[arg-type]
    hasher.update(representative)
    with pytest.raises(InvalidSignature):
        key.verify(mldsa_half.sign_mu(hasher.finalize()) + classical_half.sign(other), MESSAGE)


def test_one_half_valid_other_not() -> None:
    variant = V.MLDSA65_ECDSA_P256_SHA512
    signer = _composite(variant)
    other = _composite(variant)
    signature, foreign = signer.sign(MESSAGE), other.sign(MESSAGE)
    size = variant.mldsa_signature_size
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(signature[:size] + foreign[size:], MESSAGE)  # traditional half from another key
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(foreign[:size] + signature[size:], MESSAGE)  # ML-DSA half from another key
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(signature[:size] + b"\x30\x00", MESSAGE)  # malformed DER half
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(signature[:size], MESSAGE)  # no traditional half at all


def test_wrong_variant_is_refused() -> None:
    signer = _composite(V.MLDSA65_ED25519_SHA512)
    signature = signer.sign(MESSAGE)
    with pytest.raises(AlgorithmNotSupported):
        signer.public_key.verify(signature, MESSAGE, V.MLDSA44_ED25519_SHA512)
    with pytest.raises(AlgorithmNotSupported):
        signer.public_key.verify(signature, MESSAGE, SignatureAlgorithm.ML_DSA_65)
    with pytest.raises(AlgorithmNotSupported, match="unknown composite"):
        CompositeAlgorithm.parse("MLDSA65-Ed25519-SHA256")


def test_classical_half_of_the_wrong_curve() -> None:
    variant = V.MLDSA65_ECDSA_P256_SHA512
    mldsa_half, _ = generate(variant)
    p384 = LocalSigner(generate_private_key(KeySpec.P384))
    with pytest.raises(AlgorithmNotSupported):
        CompositeSigner(mldsa_half, p384, variant)
    with pytest.raises(AlgorithmNotSupported):
        CompositePublicKey(variant, mldsa_half.public_key, p384.public_key)
    # A P-384 key's encoding in a P-256 variant's public key is refused when decoding.
    good = _composite(variant).public_key.to_bytes()
    bad = good[: variant.mldsa_public_key_size] + p384.public_key.to_raw()
    with pytest.raises(ConfigError):
        CompositePublicKey.from_bytes(variant, bad)
    # A signature whose traditional half was made by a P-384 key over the right M' does not verify.
    signer = CompositeSigner(mldsa_half, LocalSigner(generate_private_key(KeySpec.P256)), variant)
    signature = signer.sign(MESSAGE)
    representative = variant.message_representative(MESSAGE)
    forged = signature[: variant.mldsa_signature_size] + p384.sign(representative)
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(forged, MESSAGE)


def test_halves_must_be_the_variants_specs_and_algorithms() -> None:
    variant = V.MLDSA65_ED25519_SHA512
    m44 = LocalSigner(generate_private_key(KeySpec.ML_DSA_44))
    ed = LocalSigner(generate_private_key(KeySpec.ED25519))
    with pytest.raises(AlgorithmNotSupported):
        CompositeSigner(m44, ed, variant)
    with pytest.raises(AlgorithmNotSupported):
        CompositeSigner(ed, m44, variant)  # halves swapped: the "ML-DSA" half cannot sign a mu
    rsa = LocalSigner(generate_private_key(KeySpec.RSA2048), SignatureAlgorithm.RS256)
    m44 = LocalSigner(generate_private_key(KeySpec.ML_DSA_44))
    with pytest.raises(AlgorithmNotSupported, match="PS256"):
        CompositeSigner(m44, rsa, V.MLDSA44_RSA2048_PSS_SHA256)


class _NoMu:
    """A Signer that signs pure ML-DSA only (empty context): it cannot be a composite's ML-DSA half."""

    def __init__(self) -> None:
        self._inner = LocalSigner(generate_private_key(KeySpec.ML_DSA_65))
        self.public_key, self.algorithm = self._inner.public_key, self._inner.algorithm
        self.key_id, self.uri = self._inner.key_id, "test:no-mu"

    def sign(self, message: bytes) -> bytes:
        return self._inner.sign(message)

    async def sign_async(self, message: bytes) -> bytes:
        return self._inner.sign(message)


def test_ml_dsa_half_must_sign_a_mu() -> None:
    assert not isinstance(_NoMu(), MuSigner)
    with pytest.raises(AlgorithmNotSupported, match="external mu"):
        CompositeSigner(_NoMu(), LocalSigner(generate_private_key(KeySpec.ED25519)), V.MLDSA65_ED25519_SHA512)


class _LyingHalf(LocalSigner):
    """A traditional half whose back end signs with another key."""

    def sign(self, message: bytes) -> bytes:
        return LocalSigner(generate_private_key(KeySpec.ED25519)).sign(message)


def test_a_back_end_signing_with_another_key_yields_nothing() -> None:
    mldsa_half = LocalSigner(generate_private_key(KeySpec.ML_DSA_65))
    liar = _LyingHalf(generate_private_key(KeySpec.ED25519))
    signer = CompositeSigner(mldsa_half, liar, V.MLDSA65_ED25519_SHA512)
    with pytest.raises(InvalidSignature, match="traditional half"):
        signer.sign(MESSAGE)


def test_context_is_bound_and_limited() -> None:
    signer = _composite(V.MLDSA44_ED25519_SHA512)
    signature = signer.sign(MESSAGE, context=b"app-1")
    signer.public_key.verify(signature, MESSAGE, context=b"app-1")
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(signature, MESSAGE, context=b"app-2")
    with pytest.raises(ConfigError):
        signer.sign(MESSAGE, context=b"x" * 256)
    with pytest.raises(InvalidSignature):
        signer.public_key.verify(signature, MESSAGE, context=b"x" * 256)


def test_public_key_encodings_round_trip() -> None:
    for variant in CompositeAlgorithm:
        if variant.classical_spec.family.value == "RSA" and variant is not V.MLDSA44_RSA2048_PSS_SHA256:
            continue  # RSA key generation is slow; one RSA variant covers the encoding
        key = _composite(variant).public_key
        assert CompositePublicKey.from_bytes(variant, key.to_bytes()) == key
        assert CompositePublicKey.from_der(key.to_der()) == key
        if variant.has_jose_name:
            jwk = key.to_jwk()
            assert jwk["kty"] == "AKP" and jwk["alg"] == variant.jose_name and jwk["kid"] == key.key_id
            assert CompositePublicKey.from_jwk(jwk) == key
    with pytest.raises(ConfigError, match="private"):
        CompositePublicKey.from_jwk({**key.to_jwk(), "priv": "AAAA"})


def test_concurrent_signing_loses_nothing() -> None:
    signer = _composite(V.MLDSA65_ED25519_SHA512)
    results: list[bytes] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        signature = signer.sign(b"%d" % i)
        with lock:
            results.append(signature)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    assert sum(signer.public_key.is_valid(s, b"%d" % i) for i in range(16) for s in results) == 16


# -- composite: URIs over the file store -----------------------------------------------------


def test_composite_uri_opens_two_file_keys(file_store_uri: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with signers.open_store(file_store_uri) as store:
        pq = store.create_key("pq", KeySpec.ML_DSA_65)
        ed = store.create_key("ed", KeySpec.ED25519)
    uri = composite_uri(V.MLDSA65_ED25519_SHA512, pq.uri, ed.uri)
    signer = signers.open(uri)
    assert isinstance(signer, CompositeSigner)
    assert signer.uri == uri and "secret" not in repr(signer)
    signer.public_key.verify(signer.sign(MESSAGE), MESSAGE)
    again = signers.open(uri)
    assert again.key_id == signer.key_id
    # keyplane.toml names for the halves, and for the composite itself
    config = tmp_path / "keyplane.toml"
    config.write_text(
        f'[keys.pq]\nuri = "{pq.uri}"\n[keys.ed]\nuri = "{ed.uri}"\n'
        f'[keys.hybrid]\nuri = "{composite_uri(V.MLDSA65_ED25519_SHA512, "pq", "ed")}"\n'
    )
    monkeypatch.setenv("KEYPLANE_CONFIG", str(config))  # the halves' names resolve from the default config
    named = signers.open("hybrid")
    assert named.key_id == signer.key_id


def test_composite_uri_bad_input(file_store_uri: str) -> None:
    with signers.open_store(file_store_uri) as store:
        pq = store.create_key("pq", KeySpec.ML_DSA_65)
        p256 = store.create_key("p256", KeySpec.P256)
    with pytest.raises(ConfigError, match="lacks"):
        signers.open(f"composite:MLDSA65-Ed25519-SHA512?mldsa={pq.uri}")
    with pytest.raises(ConfigError, match="unknown attribute"):
        signers.open("composite:MLDSA65-Ed25519-SHA512?mldsa=a&classical=b&pin-value=1234")
    with pytest.raises(AlgorithmNotSupported):
        signers.open(composite_uri(V.MLDSA65_ED25519_SHA512, pq.uri, p256.uri))  # wrong classical key type
    with pytest.raises(AlgorithmNotSupported):
        signers.open(composite_uri(V.MLDSA65_ECDSA_P256_SHA512, p256.uri, pq.uri))  # halves swapped
    with pytest.raises(KeyNotFound):
        signers.open(composite_uri(V.MLDSA65_ECDSA_P256_SHA512, pq.uri, p256.uri.replace("/p256", "/nope")))
    with pytest.raises(AlgorithmNotSupported, match="not implemented"):
        signers.open("composite:MLDSA87-Ed448-SHAKE256?mldsa=pq&classical=ed448")


def test_composite_store_create_list_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYPLANE_PASSWORD", "composite-test-password")
    uri = composite_uri(None, f"file:{tmp_path / 'pq'}", f"file:{tmp_path / 'classical'}")
    with signers.open_store(uri) as store:
        assert isinstance(store, CompositeKeyStore)
        signer = store.create_key("issuer", V.MLDSA65_ECDSA_P256_SHA512)
        signer.public_key.verify(signer.sign(MESSAGE), MESSAGE)
        with pytest.raises(KeyExists):
            store.create_key("issuer", V.MLDSA65_ECDSA_P256_SHA512)
        (info,) = list(store.list_keys())
        assert info.name == "issuer"
        assert signers.open(info.uri).key_id == signer.key_id  # the variant is inferred from the halves
        assert store.open("issuer", V.MLDSA65_ECDSA_P256_SHA512).key_id == signer.key_id
        store.delete_key("issuer")
        assert list(store.list_keys()) == []
        with pytest.raises(KeyNotFound):
            store.open("issuer")


def test_secret_values_in_a_half_never_reach_the_composite_uri() -> None:
    half = "pkcs11:token=t;object=k?module-path=/x.so&pin-value=hunter2"
    store = CompositeKeyStore.from_uri(composite_uri(V.MLDSA65_ED25519_SHA512, "pq", half))
    assert "hunter2" not in store.uri and "hunter2" not in repr(store)


def test_the_classical_ca_refuses_a_composite_signer_with_a_typed_error() -> None:
    with pytest.raises(AlgorithmNotSupported, match="CompositeCertificateAuthority"):
        CertificateAuthority.create_root(_composite(V.MLDSA65_ED25519_SHA512), "CN=x")


def test_an_ml_dsa_half_failure_is_the_error_reported() -> None:
    class _Failing(LocalSigner):
        def sign_mu(self, mu: bytes) -> bytes:
            raise KeyNotFound("the ML-DSA key is gone")

    signer = CompositeSigner(_Failing(generate_private_key(KeySpec.ML_DSA_65)),
                             LocalSigner(generate_private_key(KeySpec.ED25519)), V.MLDSA65_ED25519_SHA512)
    with pytest.raises(KeyNotFound, match="gone"):
        signer.sign(MESSAGE)
    with pytest.raises(KeyNotFound, match="gone"):
        asyncio.run(signer.sign_async(MESSAGE))
