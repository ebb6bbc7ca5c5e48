"""CA keys in real back ends: SoftHSM2 (PKCS#11) and an OpenBao dev server (Transit).

The store fixtures (`softhsm_store_uri`, `openbao_store_uri`) live in tests/fixtures/ and start
their service once per session; when one is not available the test is skipped with the reason.
Every key spec the store claims is used as a CA key; the P-256 SoftHSM chain must pass
`openssl verify` (a must-show of the issue).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import signers
from signers.algorithms import KeyFamily, KeySpec
from signers.revocation import MemoryRevocationStore
from signers.signer import KeyStore, Signer
from signers.x509 import CertificateAuthority, CertificateError, Reason, verify_chain

from .conftest import KeyFactory
from .support import assert_links_verify, assert_openssl_accepts, openssl_crl_text

STORES = ["softhsm_store_uri", "openbao_store_uri"]


def _store(request: pytest.FixtureRequest, fixture: str) -> KeyStore:
    return signers.open_store(request.getfixturevalue(fixture))


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[KeyStore]:
    with _store(request, request.param) as opened:
        yield opened


def _create(store: KeyStore, spec: KeySpec) -> Signer:
    return store.create_key(f"x509-{spec.value.lower()}-{uuid.uuid4().hex[:8]}", spec)


def test_every_claimed_spec_as_ca_key(store: KeyStore, file_key: KeyFactory, tmp_path: Path) -> None:
    specs = sorted(store.capabilities.key_specs - set(store.capabilities.stubbed), key=list(KeySpec).index)
    assert specs, f"{store.uri} claims no key specs"
    agent = file_key("backend-agent", KeySpec.ED25519)
    for spec in specs:
        root = CertificateAuthority.create_root(_create(store, spec), f"CN=Backend Root {spec.value}",
                                                revocations=MemoryRevocationStore())
        issuing = root.create_intermediate(_create(store, spec), f"CN=Backend Issuing {spec.value}",
                                           revocations=MemoryRevocationStore())
        leaf = issuing.issue(agent, "CN=backend-agent", uris=["spiffe://keyplane.test/agent/backend"])
        crls = [issuing.crl(), root.crl()]
        path = verify_chain(leaf, [issuing.certificate], [root.certificate], crls=crls, require_crl=True)
        assert_links_verify(path)
        if spec.family is not KeyFamily.MLDSA:
            directory = tmp_path / spec.value
            assert_openssl_accepts(directory, leaf, [issuing.certificate], root.certificate, crls)
            openssl_crl_text(directory, crls[0], issuing.certificate)
        issuing.revoke(leaf)
        with pytest.raises(CertificateError) as caught:
            verify_chain(leaf, [issuing.certificate], [root.certificate], crl=issuing.crl())
        assert caught.value.reason is Reason.REVOKED, spec


def test_softhsm_p256_ca_passes_openssl_verify(request: pytest.FixtureRequest, file_key: KeyFactory,
                                              tmp_path: Path) -> None:
    with _store(request, "softhsm_store_uri") as store:
        ca_signer = _create(store, KeySpec.P256)
        reopened = signers.open(ca_signer.uri)  # the CA key by URI alone, as `keyplane ca` opens it
        root = CertificateAuthority.create_root(reopened, "CN=SoftHSM Root,O=keyplane")
        leaf = root.issue(file_key("softhsm-agent", KeySpec.P256), "CN=softhsm-agent", dns_names=["agent.test"])
    assert_openssl_accepts(tmp_path, leaf, [], root.certificate, [root.crl()])
    verify_chain(leaf, [], [root.certificate])


def test_openbao_mldsa65_root(request: pytest.FixtureRequest, file_key: KeyFactory) -> None:
    with _store(request, "openbao_store_uri") as store:
        if KeySpec.ML_DSA_65 not in store.capabilities.key_specs:
            pytest.skip(f"{store.uri} does not offer ML-DSA-65")
        root = CertificateAuthority.create_root(_create(store, KeySpec.ML_DSA_65), "CN=OpenBao PQ Root")
        issuing = root.create_intermediate(_create(store, KeySpec.ML_DSA_65), "CN=OpenBao PQ Issuing")
        leaf = issuing.issue(file_key("bao-agent", KeySpec.ED25519), "CN=bao-agent")
    assert_links_verify(verify_chain(leaf, [issuing.certificate], [root.certificate]))
