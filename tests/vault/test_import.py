"""BYOK into Transit on the OpenBao dev server: wrapped with the mount's wrapping key, then signs like a created key."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backends.vault_transit import VaultTransitKeyStore
from signers.algorithms import KeySpec
from signers.errors import AlgorithmNotSupported, ConfigError, KeyExists
from signers.key_import import load_private_key
from signers.keys import PublicKey
from signers.local_keys import generate_private_key
from signers.signer import ImportingKeyStore

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"


@pytest.mark.parametrize("spec", [KeySpec.ED25519, KeySpec.P256, KeySpec.P384, KeySpec.RSA2048, KeySpec.ML_DSA_44,
                                  KeySpec.ML_DSA_65, KeySpec.ML_DSA_87], ids=str)
def test_imported_key_signs_and_verifies(store: VaultTransitKeyStore, key_name: str, spec: KeySpec) -> None:
    assert isinstance(store, ImportingKeyStore)
    key = generate_private_key(spec)
    signer = store.import_key(key_name, key)
    assert signer.public_key == PublicKey(key.public_key()) and signer.version == 1
    for algorithm in spec.algorithms:
        opened = store.open(key_name, algorithm)
        opened.public_key.verify(opened.sign(b"imported"), b"imported", algorithm)


@pytest.mark.parametrize("level", ["44", "65", "87"])
def test_wycheproof_seed_imported_into_openbao_gives_the_published_key(
    store: VaultTransitKeyStore, key_name: str, level: str
) -> None:
    data = json.loads(gzip.decompress((VECTORS / f"mldsa_{level}_sign_seed_test.json.gz").read_bytes()))
    group = next(g for g in data["testGroups"] if g.get("publicKey"))
    key = load_private_key(bytes.fromhex(group["privateSeed"]), "seed", spec=f"ML-DSA-{level}")
    signer = store.import_key(key_name, key)
    assert signer.public_key.to_raw().hex() == group["publicKey"]
    signer.public_key.verify(signer.sign(b"m"), b"m")


def test_import_refusals(store: VaultTransitKeyStore, key_name: str) -> None:
    store.create_key(key_name, KeySpec.P256)
    with pytest.raises(KeyExists):
        store.import_key(key_name, generate_private_key(KeySpec.P256))
    with pytest.raises(AlgorithmNotSupported):
        store.import_key(key_name + "-k1", generate_private_key(KeySpec.SECP256K1))
    with pytest.raises(AlgorithmNotSupported):
        store.import_key(key_name + "-p521", ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(ConfigError):
        store.import_key(key_name + "-junk", "not a key")
    with pytest.raises(ConfigError, match="key names"):
        store.import_key(key_name + "\n", generate_private_key(KeySpec.P256))


@pytest.mark.parametrize(("spec", "algorithm"), [(KeySpec.P256, "ES256"), (KeySpec.P384, "ES384"),
                                                 (KeySpec.RSA2048, "PS256"), (KeySpec.RSA2048, "RS512")])
def test_sign_digest_uses_prehashed(store: VaultTransitKeyStore, key_name: str, spec: KeySpec, algorithm: str) -> None:
    import hashlib

    signer = store.create_key(key_name, spec, algorithm=algorithm)
    digest = hashlib.new(str(signer.algorithm.hash_name), b"message").digest()
    signer.public_key.verify(signer.sign_digest(digest), b"message", signer.algorithm)
    with pytest.raises(ConfigError, match="digest"):
        signer.sign_digest(digest + b"\0")


def test_sign_digest_is_refused_for_pure_algorithms(store: VaultTransitKeyStore, key_name: str) -> None:
    with pytest.raises(AlgorithmNotSupported):
        store.create_key(key_name, KeySpec.ED25519).sign_digest(b"\0" * 32)
