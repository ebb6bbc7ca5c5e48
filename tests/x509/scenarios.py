"""Fifty crafted chains and the verdict OpenSSL gives each (None = verifies).

Each scenario is `build(forge) -> Chain`. The expected verdicts were measured with
``openssl verify -x509_strict`` (and OpenSSL 4 in process, through pyOpenSSL); the test checks
`verify_chain` gives the same one, and, for classical keys, that the `openssl` CLI still does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from signers.x509 import Reason

from .crafted import (
    DAY,
    HOUR,
    NO_CRL_SIGN,
    NOW,
    UNKNOWN_OID,
    Chain,
    Forge,
    change_contents,
    flip_signature,
    printable,
    raw,
)

CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH
SERVER = ExtendedKeyUsageOID.SERVER_AUTH
ROOT_NAME = "CN=Scenario Root,O=keyplane"
ISSUING_NAME = "CN=Scenario Issuing,O=keyplane"


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[Forge], Chain]
    verdict: Reason | None


def _three(f: Forge, **options: object) -> Chain:
    return Chain(f.leaf(), [f.issuing()], [f.root()], options=dict(options))


def _crls(f: Forge, leaf_revoked: tuple[int, ...] = (), issuing_revoked: tuple[int, ...] = ()) -> list:
    return [f.issuing_crl(leaf_revoked), f.root_crl(issuing_revoked)]


def _leaf_under(f: Forge, issuing: x509.Certificate, **changes: object) -> Chain:
    return Chain(f.leaf(**changes), [issuing], [f.root()])


SCENARIOS = [
    # -- paths that verify ------------------------------------------------------------------
    Scenario("three-level chain", lambda f: _three(f), None),
    Scenario("leaf directly under the root",
             lambda f: Chain(f.cert("CN=direct", "leaf", ROOT_NAME, "root"), [], [f.root()]), None),
    Scenario("all CRLs given, nothing revoked", lambda f: Chain(f.leaf(), [f.issuing()], [f.root()], _crls(f)), None),
    Scenario("require_crl with every CRL", lambda f: Chain(f.leaf(), [f.issuing()], [f.root()], _crls(f),
                                                             {"require_crl": True}), None),
    Scenario("CRL lists another serial", lambda f: Chain(f.leaf(), [f.issuing()], [f.root()], _crls(f, (77,))), None),
    Scenario("intermediates in any order, extra unrelated ones",
             lambda f: Chain(f.leaf(), [f.cert("CN=unrelated", "other", "CN=unrelated", "other", ca=True),
                                        f.issuing()], [f.root()]), None),
    # RFC 5280 4.2.1.3 says a CA certificate MUST carry keyUsage; -x509_strict enforces it.
    Scenario("issuer without keyUsage", lambda f: _leaf_under(f, _no_ku_issuing(f)), Reason.INVALID),
    Scenario("self-issued rollover not counted against pathLen", lambda f: _rollover(f), None),
    Scenario("issuer name differs only in case",
             lambda f: Chain(f.leaf(issuer="CN=scenario issuing,O=KEYPLANE"), [f.issuing()], [f.root()]), None),
    Scenario("issuer name differs only in string type",
             lambda f: Chain(f.leaf(issuer=printable(ISSUING_NAME)), [f.issuing()], [f.root()]), None),
    Scenario("issuer name differs only in spaces",
             lambda f: Chain(f.leaf(issuer=x509.Name.from_rfc4514_string("CN=Scenario  Issuing,O=keyplane")),
                             [f.issuing()], [f.root()]), None),
    Scenario("critical name constraints, leaf inside",
             lambda f: _leaf_under(f, f.issuing(extensions=[(_dns_constraint(permitted="ok.test"), True)]),
                                   extensions=[(x509.SubjectAlternativeName([x509.DNSName("a.ok.test")]), False)]),
             None),
    Scenario("critical certificate policies", lambda f: _leaf_under(
        f, f.issuing(extensions=[(x509.CertificatePolicies([x509.PolicyInformation(
            x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), True)])), None),
    Scenario("unknown non-critical extension",
             lambda f: Chain(f.leaf(extensions=[(raw(UNKNOWN_OID, b"\x05\x00"), False)]), [f.issuing()], [f.root()]),
             None),
    Scenario("intermediate EKU includes the purpose", lambda f: Chain(
        f.leaf(eku=[CLIENT]), [f.issuing(eku=[CLIENT, SERVER])], [f.root()], options={"extended_key_usages": ["client_auth"]}),
        None),
    Scenario("leaf without EKU, purpose required",
             lambda f: _three(f, extended_key_usages=["client_auth"]), None),
    Scenario("verified at a past time inside every validity",
             lambda f: _three(f, at=NOW - HOUR / 2), None),
    # -- time ------------------------------------------------------------------------------
    Scenario("leaf expired", lambda f: Chain(f.leaf(not_after=NOW - HOUR / 2), [f.issuing()], [f.root()]),
             Reason.EXPIRED),
    Scenario("leaf not yet valid", lambda f: Chain(f.leaf(not_before=NOW + HOUR), [f.issuing()], [f.root()]),
             Reason.NOT_YET_VALID),
    Scenario("intermediate expired", lambda f: Chain(f.leaf(), [f.issuing(not_after=NOW - HOUR / 2)], [f.root()]),
             Reason.EXPIRED),
    Scenario("root expired", lambda f: Chain(f.leaf(), [f.issuing()], [f.root(not_after=NOW - HOUR / 2)]),
             Reason.EXPIRED),
    Scenario("verified after the leaf's end", lambda f: _three(f, at=NOW + 2 * DAY), Reason.EXPIRED),
    # -- who issued it ---------------------------------------------------------------------
    Scenario("wrong root", lambda f: Chain(f.leaf(), [f.issuing()],
                                           [f.cert("CN=Other Root", "other", "CN=Other Root", "other", ca=True)]),
             Reason.WRONG_ISSUER),
    Scenario("missing intermediate", lambda f: Chain(f.leaf(), [], [f.root()]), Reason.WRONG_ISSUER),
    Scenario("issuer name really differs",
             lambda f: Chain(f.leaf(issuer="CN=Scenario Issuer,O=keyplane"), [f.issuing()], [f.root()]),
             Reason.WRONG_ISSUER),
    Scenario("root of the same name, other key", lambda f: Chain(
        f.leaf(), [f.issuing()], [f.cert(ROOT_NAME, "impostor", ROOT_NAME, "impostor", ca=True)]), Reason.WRONG_ISSUER),
    Scenario("AKI does not match the issuer's SKI", lambda f: Chain(f.leaf(aki="other"), [f.issuing()], [f.root()]),
             Reason.WRONG_ISSUER),
    Scenario("an intermediate passed as the trust anchor", lambda f: Chain(f.leaf(), [], [f.issuing()]),
             Reason.WRONG_ISSUER),
    Scenario("the leaf passed as its own trust anchor", lambda f: Chain(f.leaf(), [f.issuing()], [f.leaf()]),
             Reason.WRONG_ISSUER),
    # -- signatures ------------------------------------------------------------------------
    Scenario("leaf signature flipped", lambda f: Chain(flip_signature(f.leaf()), [f.issuing()], [f.root()]),
             Reason.BAD_SIGNATURE),
    Scenario("leaf contents changed", lambda f: Chain(change_contents(f.leaf(), b"scenario-agent", b"scenario-agenT"),
                                                      [f.issuing()], [f.root()]), Reason.BAD_SIGNATURE),
    Scenario("intermediate signature flipped", lambda f: Chain(f.leaf(), [flip_signature(f.issuing())], [f.root()]),
             Reason.BAD_SIGNATURE),
    Scenario("leaf signed by another key under the right names",
             lambda f: Chain(_signed_by_other(f),
                             [f.issuing()], [f.root()]), Reason.BAD_SIGNATURE),
    # -- CA rules --------------------------------------------------------------------------
    Scenario("issuer CA:FALSE", lambda f: _leaf_under(f, f.issuing(ca=False, path_length=None)), Reason.NOT_A_CA),
    Scenario("issuer without basicConstraints", lambda f: _leaf_under(f, f.issuing(ca=None)), Reason.NOT_A_CA),
    Scenario("intermediate pathLen 0 with a CA below it", lambda f: _too_deep(f), Reason.PATH_LENGTH_EXCEEDED),
    Scenario("root pathLen 0 with an intermediate", lambda f: Chain(f.leaf(), [f.issuing()],
                                                                    [f.root(path_length=0)]),
             Reason.PATH_LENGTH_EXCEEDED),
    Scenario("issuer without keyCertSign",
             lambda f: _leaf_under(f, f.issuing(usage=x509.KeyUsage(True, False, False, False, False, False, True,
                                                                    False, False))), Reason.NOT_A_CA),
    Scenario("leaf EKU lacks the purpose", lambda f: Chain(f.leaf(eku=[SERVER]), [f.issuing()], [f.root()],
                                                           options={"extended_key_usages": ["client_auth"]}),
             Reason.KEY_USAGE),
    Scenario("intermediate EKU excludes the leaf's purpose", lambda f: Chain(
        f.leaf(eku=[CLIENT]), [f.issuing(eku=[SERVER])], [f.root()], options={"extended_key_usages": ["client_auth"]}),
        Reason.KEY_USAGE),
    Scenario("name constraints violated", lambda f: _leaf_under(
        f, f.issuing(extensions=[(_dns_constraint(permitted="ok.test"), True)]),
        extensions=[(x509.SubjectAlternativeName([x509.DNSName("evil.test")]), False)]), Reason.NAME_CONSTRAINTS),
    Scenario("excluded IP address", lambda f: _leaf_under(
        f, f.issuing(extensions=[(x509.NameConstraints(None, [x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))]),
                                  True)]),
        extensions=[(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("10.1.2.3"))]), False)]),
        Reason.NAME_CONSTRAINTS),
    Scenario("unknown critical extension in the leaf",
             lambda f: Chain(f.leaf(extensions=[(raw(UNKNOWN_OID, b"\x05\x00"), True)]), [f.issuing()], [f.root()]),
             Reason.UNHANDLED_CRITICAL_EXTENSION),
    Scenario("unknown critical extension in the intermediate",
             lambda f: _leaf_under(f, f.issuing(extensions=[(raw(UNKNOWN_OID, b"\x05\x00"), True)])),
             Reason.UNHANDLED_CRITICAL_EXTENSION),
    # -- malformed -------------------------------------------------------------------------
    Scenario("malformed basicConstraints in the intermediate",
             lambda f: _leaf_under(f, f.issuing(ca=None, extensions=[(raw(ExtensionOID.BASIC_CONSTRAINTS, b"\x30\x03\x01\x01"), True)])),
             Reason.INVALID),
    Scenario("malformed subjectAltName in the leaf",
             lambda f: Chain(f.leaf(extensions=[(raw(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x05\x82\x09ab"),
                                                 False)]), [f.issuing()], [f.root()]), Reason.INVALID),
    # -- revocation ------------------------------------------------------------------------
    Scenario("leaf revoked", lambda f: Chain(f.leaf(), [f.issuing()], [f.root()], _crls(f, (3,))), Reason.REVOKED),
    Scenario("intermediate revoked", lambda f: Chain(f.leaf(), [f.issuing()], [f.root()], _crls(f, (), (2,))),
             Reason.REVOKED),
    Scenario("leaf revoked, only the issuing CRL given",
             lambda f: Chain(f.leaf(), [f.issuing()], [f.root()], [f.issuing_crl((3,))]), Reason.REVOKED),
    Scenario("CRL signed by another key", lambda f: Chain(
        f.leaf(), [f.issuing()], [f.root()], [f.crl(ISSUING_NAME, "other"), f.root_crl()]), Reason.BAD_CRL),
    Scenario("CRL expired", lambda f: Chain(f.leaf(), [f.issuing()], [f.root()],
                                            [f.issuing_crl(last_update=NOW - DAY, next_update=NOW - HOUR),
                                             f.root_crl()]), Reason.BAD_CRL),
    Scenario("CRL not yet valid", lambda f: Chain(f.leaf(), [f.issuing()], [f.root()],
                                                  [f.issuing_crl(last_update=NOW + HOUR), f.root_crl()]),
             Reason.BAD_CRL),
    Scenario("CRL scoped to CA certificates (onlyContainsCACerts)", lambda f: Chain(
        f.leaf(), [f.issuing()], [f.root()],
        [f.issuing_crl(extensions=[(x509.IssuingDistributionPoint(None, None, False, True, None, False, False), True)]),
         f.root_crl()]), Reason.BAD_CRL),
    Scenario("CRL with an unknown critical extension", lambda f: Chain(
        f.leaf(), [f.issuing()], [f.root()],
        [f.issuing_crl(extensions=[(raw(UNKNOWN_OID, b"\x05\x00"), True)]), f.root_crl()]), Reason.BAD_CRL),
    Scenario("CRL issuer without cRLSign", lambda f: _no_crl_sign(f), Reason.BAD_CRL),
    Scenario("require_crl, the root's CRL missing",
             lambda f: Chain(f.leaf(), [f.issuing()], [f.root()], [f.issuing_crl()], {"require_crl": True}),
             Reason.BAD_CRL),
]


def _no_ku_issuing(f: Forge) -> x509.Certificate:
    """An issuing CA certificate with no keyUsage extension at all (RFC 5280: any usage)."""
    public_key = f.key("issuing").public_key()
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string(ISSUING_NAME))
        .issuer_name(x509.Name.from_rfc4514_string(ROOT_NAME)).public_key(public_key).serial_number(2)
        .not_valid_before(NOW - HOUR).not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(f.key("root").public_key()), critical=False)
    )
    return f.sign(builder, f.key("root"))


def _signed_by_other(f: Forge) -> x509.Certificate:
    """The leaf's fields, AKI naming the issuing CA, but the signature made by another key."""
    public_key = f.key("leaf").public_key()
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name.from_rfc4514_string("CN=scenario-agent"))
        .issuer_name(x509.Name.from_rfc4514_string(ISSUING_NAME)).public_key(public_key).serial_number(3)
        .not_valid_before(NOW - HOUR).not_valid_after(NOW + DAY)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(f.key("issuing").public_key()), critical=False)
    )
    return f.sign(builder, f.key("other"))


def _rollover(f: Forge) -> Chain:
    """Root (pathLen 0) -> a self-issued certificate for the root's new key -> leaf (RFC 5280 6.1.4 (l))."""
    rolled = f.cert(ROOT_NAME, "root-new", ROOT_NAME, "root", ca=True, path_length=0, serial=50)
    leaf = f.cert("CN=rolled-agent", "leaf", ROOT_NAME, "root-new", serial=51)
    return Chain(leaf, [rolled], [f.root(path_length=0)])


def _too_deep(f: Forge) -> Chain:
    deep = f.cert("CN=Too Deep", "deep", ISSUING_NAME, "issuing", ca=True, serial=60)
    leaf = f.cert("CN=deep-agent", "leaf", "CN=Too Deep", "deep", serial=61)
    return Chain(leaf, [deep, f.issuing()], [f.root(path_length=1)])


def _no_crl_sign(f: Forge) -> Chain:
    issuing = f.issuing(usage=NO_CRL_SIGN)
    return Chain(f.leaf(), [issuing], [f.root()], _crls(f))


def _dns_constraint(*, permitted: str) -> x509.NameConstraints:
    return x509.NameConstraints([x509.DNSName(permitted)], None)
