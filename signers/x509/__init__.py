"""An X.509 certificate authority whose keys never leave their key store.

Roots, intermediates and leaves (from a public key or a checked CSR), CRLs from the shared
revocation store, and chain verification by OpenSSL's RFC 5280 validator (pyOpenSSL), with a
registration point for signature algorithms OpenSSL cannot verify (`register_chain_verifier`). Any KeySpec signs, ML-DSA (RFC 9881) and
RSA-PSS included: `cryptography`'s builders make the to-be-signed bytes and the Signer signs
them (see `tbs_signing`).

```python
from signers.x509 import CertificateAuthority, verify_chain
root = CertificateAuthority.create_root(signers.open(ROOT_KEY_URI), "CN=Acme Root")
leaf = root.issue(agent_key, "CN=agent-7", uris=["spiffe://acme/agent/7"])
verify_chain(leaf, [], [root.certificate], crl=root.crl())
```
"""

from __future__ import annotations

from .authority import DEFAULT_LEAF_VALIDITY, CertificateAuthority
from .chain import ChainQuestion, ChainVerifier, register_chain_verifier, verify_chain
from .crl import reason_name
from .csr import check_csr, create_csr
from .errors import CertificateError, InvalidCSR, PolicyRefused, Reason
from .files import load_certificates, load_crl, load_csr, read_certificates, to_pem, write_pem
from .policy import IssueRequest, NamePolicy, Policy
from .profile import SubjectAltNames, extended_key_usage, key_usage, parse_name
from .serials import new_serial, parse_serial, serial_id
from .tbs_signing import sign_certificate, sign_crl, sign_csr

__all__ = [
    "DEFAULT_LEAF_VALIDITY",
    "CertificateAuthority",
    "CertificateError",
    "ChainQuestion",
    "ChainVerifier",
    "InvalidCSR",
    "IssueRequest",
    "NamePolicy",
    "Policy",
    "PolicyRefused",
    "Reason",
    "SubjectAltNames",
    "check_csr",
    "create_csr",
    "extended_key_usage",
    "key_usage",
    "load_certificates",
    "load_crl",
    "load_csr",
    "new_serial",
    "parse_name",
    "parse_serial",
    "read_certificates",
    "reason_name",
    "register_chain_verifier",
    "sign_certificate",
    "sign_crl",
    "serial_id",
    "sign_csr",
    "to_pem",
    "verify_chain",
    "write_pem",
]
