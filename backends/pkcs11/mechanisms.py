"""PKCS#11 numbers and what keyplane does with them: key generation, signing mechanisms, capabilities.

The numbers are the specification's (PKCS#11 3.0/3.2), so the tables read as the spec.
Nothing here opens a session; `sdk()` hands back python-pkcs11 once `load_module` has
imported it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signers.algorithms import KeyFamily, KeySpec
from signers.signer import Capabilities

__all__ = [
    "DIGEST_INFO", "EC_PARAMS", "HASHLIB", "KEYGEN", "PSS_PARAMS", "SIGN_MECHANISM", "KeyGen", "capabilities",
    "mechanism_name", "sdk",
]

CKO_PUBLIC_KEY, CKO_PRIVATE_KEY = 2, 3
CKK_RSA, CKK_EC, CKK_EC_EDWARDS, CKK_ML_DSA = 0x0, 0x3, 0x40, 0x4A
CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS = 0x0, 0x1, 0xD
CKM_EC_KEY_PAIR_GEN, CKM_ECDSA = 0x1040, 0x1041
CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA = 0x1055, 0x1057
CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_DSA = 0x1C, 0x1D  # PKCS#11 3.2
CKM_SHA256, CKM_SHA384, CKM_SHA512 = 0x250, 0x260, 0x270
CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA512 = 0x2, 0x3, 0x4


def sdk() -> Any:
    """python-pkcs11, already imported by load_module (through signers.sdk.require)."""
    import pkcs11  # optional SDK: imported lazily so `import backends` needs no extra

    return pkcs11


@dataclass(frozen=True)
class KeyGen:
    """How to generate a key of one spec: key type, mechanism, and the curve / size / parameter set."""

    key_type: int
    mechanism: int
    ec_params: bytes | None = None  # DER OID of the named curve (CKA_EC_PARAMS)
    bits: int | None = None
    parameter_set: int | None = None  # CKA_PARAMETER_SET for ML-DSA


KEYGEN: dict[KeySpec, KeyGen] = {
    KeySpec.ED25519: KeyGen(CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, ec_params=bytes.fromhex("06032b6570")),
    KeySpec.P256: KeyGen(CKK_EC, CKM_EC_KEY_PAIR_GEN, ec_params=bytes.fromhex("06082a8648ce3d030107")),
    KeySpec.P384: KeyGen(CKK_EC, CKM_EC_KEY_PAIR_GEN, ec_params=bytes.fromhex("06052b81040022")),
    KeySpec.SECP256K1: KeyGen(CKK_EC, CKM_EC_KEY_PAIR_GEN, ec_params=bytes.fromhex("06052b8104000a")),
    KeySpec.RSA2048: KeyGen(CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, bits=2048),
    KeySpec.RSA3072: KeyGen(CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, bits=3072),
    KeySpec.RSA4096: KeyGen(CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, bits=4096),
    KeySpec.ML_DSA_44: KeyGen(CKK_ML_DSA, CKM_ML_DSA_KEY_PAIR_GEN, parameter_set=1),
    KeySpec.ML_DSA_65: KeyGen(CKK_ML_DSA, CKM_ML_DSA_KEY_PAIR_GEN, parameter_set=2),
    KeySpec.ML_DSA_87: KeyGen(CKK_ML_DSA, CKM_ML_DSA_KEY_PAIR_GEN, parameter_set=3),
}

# CKA_EC_PARAMS -> spec; Ed25519 also as the PrintableString "edwards25519" some tokens store.
EC_PARAMS: dict[bytes, KeySpec] = {g.ec_params: s for s, g in KEYGEN.items() if g.ec_params is not None}
EC_PARAMS[b"\x13\x0cedwards25519"] = KeySpec.ED25519
# CKA_PARAMETER_SET -> ML-DSA spec.
PARAMETER_SETS: dict[int, KeySpec] = {g.parameter_set: s for s, g in KEYGEN.items() if g.parameter_set}

SIGN_MECHANISM: dict[KeyFamily, dict[bool, int]] = {  # family -> {is_pss: mechanism}
    KeyFamily.EDDSA: {False: CKM_EDDSA},
    KeyFamily.EC: {False: CKM_ECDSA},
    KeyFamily.RSA: {True: CKM_RSA_PKCS_PSS, False: CKM_RSA_PKCS},
    KeyFamily.MLDSA: {False: CKM_ML_DSA},
}

# RSA-PSS over a host digest: CK_RSA_PKCS_PSS_PARAMS (hashAlg, mgf, sLen = hash length).
PSS_PARAMS: dict[str, tuple[int, int, int]] = {
    "sha256": (CKM_SHA256, CKG_MGF1_SHA256, 32),
    "sha384": (CKM_SHA384, CKG_MGF1_SHA384, 48),
    "sha512": (CKM_SHA512, CKG_MGF1_SHA512, 64),
}

# hashlib over cryptography on the hot path: a quarter of the cost for a short message.
HASHLIB: dict[str, Callable[[bytes], Any]] = {"sha256": hashlib.sha256, "sha384": hashlib.sha384,
                                               "sha512": hashlib.sha512}

# PKCS#1 v1.5 over a host digest: CKM_RSA_PKCS pads, we supply the DigestInfo (RFC 8017 section 9.2).
DIGEST_INFO: dict[str, bytes] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

_DETERMINISTIC = frozenset({KeySpec.ED25519, KeySpec.ML_DSA_44, KeySpec.ML_DSA_65, KeySpec.ML_DSA_87})


def capabilities(mechanisms: frozenset[int] | None, secp256k1: bool = False) -> Capabilities:
    """Specs whose generation and signing mechanisms the token lists (all classical ones when unknown)."""
    specs: set[KeySpec] = set()
    for spec, gen in KEYGEN.items():
        sign = SIGN_MECHANISM[spec.family][spec.default_algorithm.is_pss]
        if mechanisms is None:
            if spec.family is not KeyFamily.MLDSA and spec is not KeySpec.SECP256K1:
                specs.add(spec)
        elif gen.mechanism in mechanisms and sign in mechanisms and (spec is not KeySpec.SECP256K1 or secp256k1):
            specs.add(spec)
    return Capabilities(
        key_specs=frozenset(specs),
        prehash=True,  # ECDSA and RSA sign a host-side digest
        deterministic=frozenset(specs & _DETERMINISTIC),
        deletion="immediate",  # C_DestroyObject
    )


def mechanism_name(mechanism: int | None) -> str:
    """CKM_... for messages; the hex number when python-pkcs11 does not know it."""
    if mechanism is None:
        return "signing mechanism"
    try:
        return "CKM_" + sdk().Mechanism(mechanism).name
    except (ImportError, ValueError):
        return f"mechanism 0x{mechanism:x}"
