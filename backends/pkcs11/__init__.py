"""The PKCS#11 back end: keys in an HSM or a software token (SoftHSM2), through python-pkcs11.

URIs follow RFC 7512::

    pkcs11:token=agents?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PKCS11_PIN   (a store)
    pkcs11:token=agents;object=ca;id=%01%02?module-path=...&pin-source=env:PKCS11_PIN           (a key)

Token selection: ``token`` (label), ``serial``, ``manufacturer``, ``model``, ``slot-id``,
``slot-description``, ``slot-manufacturer``. Key selection: ``object`` (CKA_LABEL) and/or
``id`` (CKA_ID, percent-encoded bytes). Query: ``module-path`` (default
``$KEYPLANE_PKCS11_MODULE``), ``pin-source=env:NAME|file:PATH`` (``pin-value`` is accepted
as RFC 7512 allows, and never printed), ``max-sessions`` (default 16), ``algorithm``.

Signing hashes on the host wherever the algorithm allows (ECDSA, RSA), so a message of
any length costs one short call into the token; Ed25519 and ML-DSA sign the message
itself, as their definitions require. ECDSA comes back as r||s and leaves as DER.

The package, one job per module:
  module      loading the shared object once per process, initialised for threads
  pool        one login per token, a bounded session pool, recovery from a lost token
  mechanisms  the PKCS#11 numbers: key generation, signing mechanisms, capabilities
  objects     templates, finding key objects, reading public keys
  errors      the one python-pkcs11 -> keyplane error table
  signer      Pkcs11Signer (sign, sign_digest) and its precomputed SignPlan
  store       Pkcs11KeyStore (create, import, open, list, delete)
"""

from __future__ import annotations

from .signer import Pkcs11Signer
from .store import DEFAULT_MAX_SESSIONS, MODULE_ENV, Pkcs11KeyStore

__all__ = ["DEFAULT_MAX_SESSIONS", "MODULE_ENV", "Pkcs11KeyStore", "Pkcs11Signer"]
