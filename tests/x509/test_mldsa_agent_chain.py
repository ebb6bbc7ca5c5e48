"""Must show: ML-DSA-65 root -> ML-DSA-65 intermediate -> Ed25519 agent; verifies, then fails as "revoked"."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import SignatureAlgorithmOID

from signers.algorithms import KeySpec
from signers.revocation import SQLiteRevocationStore
from signers.x509 import CertificateAuthority, CertificateError, Reason, load_certificates, to_pem, verify_chain

from .conftest import KeyFactory
from .support import assert_links_verify, webpki_client_verify

AGENT = "spiffe://keyplane.test/agent/pq-7"


def test_post_quantum_chain_then_revocation(file_key: KeyFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = CertificateAuthority.create_root(file_key("pq-root", KeySpec.ML_DSA_65), "CN=PQ Root,O=keyplane")
    with SQLiteRevocationStore(tmp_path / "revocations.db") as store:
        issuing = root.create_intermediate(file_key("pq-issuing", KeySpec.ML_DSA_65), "CN=PQ Issuing,O=keyplane",
                                           revocations=store)
        agent_key = file_key("pq-agent", KeySpec.ED25519)
        agent = issuing.issue(agent_key, "CN=pq-agent-7", uris=[AGENT])

        # Through PEM and back, as a relying party would receive them.
        agent, intermediate = load_certificates(to_pem(agent, issuing.certificate))
        (root_certificate,) = load_certificates(to_pem(root.certificate))
        assert root_certificate.signature_algorithm_oid == SignatureAlgorithmOID.ML_DSA_65
        assert intermediate.signature_algorithm_oid == SignatureAlgorithmOID.ML_DSA_65
        assert agent.signature_algorithm_oid == SignatureAlgorithmOID.ML_DSA_65
        assert agent.public_key() == agent_key.public_key.key  # an Ed25519 subject key

        crls = [issuing.crl(), root.crl()]
        path = verify_chain(agent, [intermediate], [root_certificate], crls=crls, require_crl=True)
        assert path == [agent, intermediate, root_certificate]
        assert_links_verify(path)
        assert webpki_client_verify(agent, [intermediate], root_certificate)[-1] == root_certificate
        san = agent.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [AGENT]

        issuing.revoke(agent.serial_number, "key_compromise")
        # A second handle on the same database sees the revocation (what a separate CRL publisher would do).
        with SQLiteRevocationStore(tmp_path / "revocations.db") as reopened:
            publisher = CertificateAuthority(issuing.signer, intermediate, chain=[root_certificate],
                                             revocations=reopened)
            new_crl = publisher.crl()
        with pytest.raises(CertificateError) as caught:
            verify_chain(agent, [intermediate], [root_certificate], crls=[new_crl, crls[1]], require_crl=True)
        assert caught.value.reason is Reason.REVOKED
        assert caught.value.certificate == agent
        assert "revoked" in str(caught.value)
