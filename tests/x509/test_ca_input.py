"""The CA's sharp edges (issue 13 item 5): validity from now, URI SANs, one spelling per serial."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from signers.algorithms import KeySpec
from signers.errors import ConfigError
from signers.revocation import MemoryRevocationStore
from signers.x509 import CertificateAuthority, SubjectAltNames, parse_serial, serial_id
from signers.x509.authority import BACKDATE

from .conftest import KeyFactory


@pytest.fixture(scope="module")
def root_key(file_key: KeyFactory):  # type: ignore[no-untyped-def]
    return file_key("input-root", KeySpec.P256)


@pytest.fixture
def ca(root_key) -> CertificateAuthority:  # type: ignore[no-untyped-def]
    return CertificateAuthority.create_root(root_key, "CN=Input Root", revocations=MemoryRevocationStore())


def test_validity_counts_from_now(ca: CertificateAuthority) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    leaf = ca.issue(ca.signer, "CN=two-minutes", validity=datetime.timedelta(minutes=2))
    assert leaf.not_valid_after_utc >= before + datetime.timedelta(minutes=2)
    assert leaf.not_valid_before_utc <= before - BACKDATE + datetime.timedelta(seconds=1)


@pytest.mark.parametrize("seconds", [30, 60, 0, -5])
def test_validity_not_longer_than_the_backdating_is_refused(ca: CertificateAuthority, seconds: int) -> None:
    with pytest.raises(ConfigError):
        ca.issue(ca.signer, "CN=born-expired", validity=datetime.timedelta(seconds=seconds))


def test_root_and_crl_durations_are_checked(root_key) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="backdated"):
        CertificateAuthority.create_root(root_key, "CN=Short", validity=datetime.timedelta(seconds=30))
    ca = CertificateAuthority.create_root(root_key, "CN=Root")
    with pytest.raises(ConfigError):
        ca.crl(validity=datetime.timedelta(seconds=-1))
    with pytest.raises(ConfigError, match="backdated"):  # it would be stale when made
        ca.crl(validity=datetime.timedelta(seconds=5))
    crl = ca.crl(validity=datetime.timedelta(seconds=11))
    assert crl.last_update_utc < datetime.datetime.now(datetime.UTC) < crl.next_update_utc  # type: ignore[operator]


@pytest.mark.parametrize("uri", ["urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "spiffe://acme/agent/7",
                                 "https://agents.example/7", "mailto:ops@example.test"])
def test_uri_sans_take_any_rfc3986_scheme(ca: CertificateAuthority, uri: str) -> None:
    leaf = ca.issue(ca.signer, "CN=uri", uris=[uri])
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [uri]


@pytest.mark.parametrize("bad", ["no-scheme", "1http://x", "urn:", ""])
def test_uri_san_without_a_scheme_is_refused(ca: CertificateAuthority, bad: str) -> None:
    with pytest.raises(ConfigError, match="URI SAN"):
        ca.issue(ca.signer, "CN=uri", uris=[bad])


def test_untagged_sans_are_inferred_strictly() -> None:
    names = SubjectAltNames.parse(["urn:uuid:1234", "spiffe://a/b", "a@b.test", "10.0.0.1", "::1", "host.test"])
    assert names.uris == ("urn:uuid:1234", "spiffe://a/b")
    assert names.emails == ("a@b.test",) and names.ip_addresses == ("10.0.0.1", "::1")
    assert names.dns_names == ("host.test",)  # urn:... never became a DNS name
    for ambiguous in ("host.test:8443", "mailto:x@y", "not a name", "uuid:1234"):
        with pytest.raises(ConfigError, match="dns:NAME, uri:URI"):
            SubjectAltNames.parse([ambiguous])
    assert SubjectAltNames.parse(["uri:mailto:x@y", "dns:host.test"]).uris == ("mailto:x@y",)


@pytest.mark.parametrize("spelling", ["ab", "AB", "0xab", "0x00AB", "00:ab", "  Ab  ", 0xAB])
def test_serial_spellings_are_one_serial(spelling: str | int) -> None:
    assert parse_serial(spelling) == 0xAB and serial_id(spelling) == "ab"


@pytest.mark.parametrize("bad", ["xyz", "0", "0x", "-1", "", "12.5", 0, -3, 2**160, True, 1.5])
def test_malformed_serials_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_serial(bad)  # type: ignore[arg-type]


def test_one_certificate_cannot_be_revoked_twice(ca: CertificateAuthority) -> None:
    leaf = ca.issue(ca.signer, "CN=twice")
    hex_serial = f"{leaf.serial_number:x}"
    first = ca.revoke("0x00" + hex_serial.upper(), "key_compromise")
    again = ca.revoke(hex_serial, "superseded")
    assert again.revoked_at == first.revoked_at and again.reason == "keyCompromise"  # the first record stands
    assert ca.is_revoked(leaf) and ca.is_revoked(hex_serial.upper()) and ca.is_revoked(leaf.serial_number)
    crl = ca.crl()
    assert len(crl) == 1 and crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None


def test_revoke_text_is_hex_never_decimal(ca: CertificateAuthority) -> None:
    ca.revoke("10")
    assert ca.is_revoked(0x10) and not ca.is_revoked(10)


def test_crl_merges_spellings_stored_by_other_tools(root_key) -> None:  # type: ignore[no-untyped-def]
    store = MemoryRevocationStore()
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    store.revoke("0xAB", kind="x509-serial", reason="keyCompromise", at=at)
    store.revoke("ab", kind="x509-serial", reason="superseded", at=at + datetime.timedelta(hours=1))
    ca = CertificateAuthority.create_root(root_key, "CN=Merge Root", revocations=store)
    crl = ca.crl()
    assert len(crl) == 1
    entry = crl.get_revoked_certificate_by_serial_number(0xAB)
    assert entry is not None and entry.revocation_date_utc == at


@pytest.mark.parametrize("subject", ["x" * 100_000, "CN=" + "y" * 65, "CN=a,,=b"])
def test_unusable_subjects_are_config_errors(ca: CertificateAuthority, subject: str) -> None:
    with pytest.raises(ConfigError, match="subject name"):
        ca.issue(ca.signer, subject)


def test_malformed_eku_oid_is_a_config_error(ca: CertificateAuthority) -> None:
    with pytest.raises(ConfigError, match="object identifier"):
        ca.issue(ca.signer, "CN=eku", extended_key_usages=["1..2"])
