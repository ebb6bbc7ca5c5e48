"""``keyplane ca init|issue|sign-csr|csr|revoke|crl|verify``: a CA whose key stays in its store.

A CA lives in a directory (``--dir``, default ``$KEYPLANE_CA_DIR``); its layout is described
in `signers.x509.directory`. ``--key``, ``--cert`` and ``--revocations`` override the
directory's entries (or replace the directory). Everything heavy is imported inside the
handlers so ``keyplane --help`` stays fast. Bad input (a missing or damaged file, NaN or a
negative duration, a malformed serial) is a one-line ConfigError, exit 2.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from signers.errors import ConfigError

if TYPE_CHECKING:
    from cryptography import x509

    from signers.x509.directory import CaDirectory

from .common import EXIT_INVALID, action, command_group, open_key, print_result

__all__ = ["register"]

_SAN_HELP = "dns:NAME, uri:spiffe://... or uri:urn:uuid:..., email:A@B, ip:ADDR (untagged: inferred strictly)"


def register(subparsers: Any) -> None:
    """Add `keyplane ca ...` to the CLI's subparsers."""
    sub = command_group(subparsers, "ca", "an X.509 certificate authority whose key stays in its key store")

    init = action(sub, "init", "create a root CA (or, with --parent, an intermediate) in --dir", _init)
    _ca_location(init)
    init.add_argument("--subject", required=True, help="CA name, e.g. 'CN=Acme Root,O=Acme' or just 'Acme Root'")
    init.add_argument("--days", type=float, default=None, help="validity in days (root 3650, intermediate 365)")
    init.add_argument("--path-length", type=int, default=None,
                      help="CA certificates allowed below this one (root: unlimited; intermediate: 0)")
    init.add_argument("--parent", help="directory of the CA that signs this one (makes an intermediate)")

    issue = action(sub, "issue", "issue a certificate for a public key", _issue)
    _ca_location(issue)
    whose = issue.add_mutually_exclusive_group(required=True)
    whose.add_argument("--pubkey", help="the subject's public key: PEM, DER or JWK file")
    whose.add_argument("--for-key", help="the subject's key as a URI or name (its public key is used)")
    _request_options(issue)

    sign_csr = action(sub, "sign-csr", "issue a certificate for a CSR (its signature is checked)", _sign_csr)
    _ca_location(sign_csr)
    sign_csr.add_argument("csr", help="CSR file (PEM or DER)")
    _request_options(sign_csr)

    csr = action(sub, "csr", "make a CSR signed by a key in any store", _csr)
    csr.add_argument("--key", required=True, help="key URI or name")
    csr.add_argument("--subject", required=True)
    csr.add_argument("--san", action="append", default=[], help=_SAN_HELP)
    csr.add_argument("--out", help="write the PEM here (default: print it)")

    revoke = action(sub, "revoke", "revoke a certificate by serial (hex) or certificate file", _revoke)
    _ca_location(revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("serial", nargs="?", help="serial in hex, any spelling (ab, 0x00AB, 00:ab are one serial)")
    which.add_argument("--certificate", help="the certificate file to revoke")
    revoke.add_argument("--reason", default="unspecified", help="RFC 5280 reason, e.g. keyCompromise, superseded")

    crl = action(sub, "crl", "write a fresh CRL signed by the CA key", _crl)
    _ca_location(crl)
    crl.add_argument("--hours", type=float, default=24.0, help="until the next update (default 24)")
    crl.add_argument("--out", help="write the PEM here (default: DIR/crl.pem, or print it)")

    verify = action(sub, "verify", "verify a certificate chain; exit 1 with the reason if it fails", _verify)
    verify.add_argument("certificate", help="the certificate (PEM; further certificates in it count as intermediates)")
    verify.add_argument("--roots", action="append", default=[], help="trusted root PEM file(s); default: the --dir CA's root")
    verify.add_argument("--untrusted", action="append", default=[], help="intermediate certificate PEM file(s)")
    verify.add_argument("--crl", action="append", default=[], help="CRL file(s) to check revocation against")
    verify.add_argument("--require-crl", action="store_true", help="fail unless every issuer's CRL is given")
    verify.add_argument("--no-crl", action="store_true", help="with --dir: do not check the CA's own crl.pem")
    verify.add_argument("--eku", action="append", default=[], help="required extended key usage (client_auth, ...)")
    verify.add_argument("--at", help="verify as of this ISO 8601 time (default: now)")
    verify.add_argument("--dir", help="a CA directory: its chain is trusted and its crl.pem checked (see --no-crl)")


def _ca_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="CA directory (default: $KEYPLANE_CA_DIR)")
    parser.add_argument("--key", help="CA key URI or name (overrides the directory's)")
    parser.add_argument("--cert", help="CA certificate PEM (overrides DIR/ca.pem)")
    parser.add_argument("--revocations", help="revocation database (overrides DIR/revocations.db)")


def _request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject", help="subject name (a CSR's own subject by default)")
    parser.add_argument("--san", action="append", default=[], help=_SAN_HELP)
    parser.add_argument("--hours", type=float, help="validity in hours from now (default 24; CA certificates 365 days)")
    parser.add_argument("--key-usage", action="append", help="key usage name(s) (default digital_signature)")
    parser.add_argument("--eku", action="append", help="extended key usage(s) (default client_auth, server_auth)")
    parser.add_argument("--ca", action="store_true", help="issue a CA certificate")
    parser.add_argument("--path-length", type=int, default=None, help="with --ca: CA certificates allowed below")
    parser.add_argument("--out", help="write the PEM here (default: print it)")


# -- shared helpers ------------------------------------------------------------------------


def _locate(args: argparse.Namespace, *, creating: bool = False) -> CaDirectory:
    from signers.x509.directory import CaDirectory  # lazy: keeps `keyplane --help` fast

    given = args.dir or os.environ.get("KEYPLANE_CA_DIR")
    return CaDirectory.locate(given, key=args.key, cert=args.cert, revocations=args.revocations, creating=creating)


def _key_reference(given: str, signer_uri: str) -> str:
    """What ca.json records: a keyplane.toml name as given, else the signer's URI (secrets removed)."""
    return given if ":" not in given else signer_uri


def _duration(value: float | None, unit: float, what: str) -> datetime.timedelta | None:
    """A CLI duration (`value` units of `unit` seconds); ConfigError (exit 2) for NaN, infinities and negatives."""
    from signers.clock import duration  # lazy: keeps `keyplane --help` fast

    if value is None:
        return None
    return datetime.timedelta(seconds=duration(value * unit, what))


def _one_line(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Data errors `cryptography` raises as ValueError/OverflowError (a damaged certificate, an absurd
    number) become a one-line ConfigError: exit 2, never a traceback or an ASN.1 ParseError dump."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from signers.x509.errors import plain_error  # lazy: keeps `keyplane --help` fast

        try:
            return handler(args)
        except (ValueError, OverflowError) as e:
            raise ConfigError(plain_error(e)) from None

    return run


# -- handlers ------------------------------------------------------------------------------


@_one_line
def _init(args: argparse.Namespace) -> int:
    """Create a root CA, or with --parent an intermediate, in a new directory."""
    # lazy: keeps `keyplane --help` fast
    from signers.x509 import CertificateAuthority, write_pem
    from signers.x509.directory import open_ca
    from signers.x509.files import summary

    location = _locate(args, creating=True)
    if location.directory is None:
        raise ConfigError("ca init needs --dir (or $KEYPLANE_CA_DIR)")
    if (location.directory / "ca.json").exists():
        raise ConfigError(f"{location.directory} already holds a CA (ca.json); init never overwrites")
    if args.path_length is not None and args.path_length < 0:
        raise ConfigError("--path-length must be 0 or more")
    validity = _duration(args.days, 86400.0, "--days")
    signer = open_key(args, location.key)
    options: dict[str, Any] = {"validity": validity} if validity is not None else {}
    if args.parent:
        parent_location = _locate(argparse.Namespace(dir=args.parent, key=None, cert=None, revocations=None))
        with open_ca(parent_location) as parent:
            ca = parent.create_intermediate(signer, args.subject, path_length=args.path_length or 0, **options)
        parent_location.record_issued(ca.certificate)
    else:
        ca = CertificateAuthority.create_root(signer, args.subject, path_length=args.path_length, **options)
    directory = location.directory
    state = location.write_state(_key_reference(location.key, signer.uri))
    write_pem(directory / "ca.pem", ca.certificate)
    write_pem(directory / "chain.pem", *ca.chain)
    certificate = ca.chain[0]
    data = {"ok": True, "directory": str(directory), **summary(certificate), "key": state["key"]}
    print_result(args, data, [f"created CA {certificate.subject.rfc4514_string()} in {directory}",
                              f"  key    {state['key']}", f"  serial {certificate.serial_number:x}",
                              f"  until  {certificate.not_valid_after_utc.isoformat()}"])
    return 0


def _request_keywords(args: argparse.Namespace) -> dict[str, Any]:
    from signers.x509 import SubjectAltNames  # lazy: keeps `keyplane --help` fast

    if args.path_length is not None and args.path_length < 0:
        raise ConfigError("--path-length must be 0 or more")
    names = SubjectAltNames.parse(args.san)
    keywords: dict[str, Any] = {"is_ca": args.ca, "path_length": args.path_length,
                                "key_usages": args.key_usage, "extended_key_usages": args.eku}
    if names:
        keywords.update(dns_names=names.dns_names, uris=names.uris, emails=names.emails,
                        ip_addresses=names.ip_addresses)
    validity = _duration(args.hours, 3600.0, "--hours")
    if validity is not None:
        keywords["validity"] = validity
    return keywords


@_one_line
def _issue(args: argparse.Namespace) -> int:
    # lazy: keeps `keyplane --help` fast
    from signers.x509.directory import open_ca
    from signers.x509.files import read_public_key

    public_key = read_public_key(args.pubkey) if args.pubkey else open_key(args, args.for_key).public_key
    keywords = _request_keywords(args)
    location = _locate(args)
    with open_ca(location) as ca:
        certificate = ca.issue(public_key, args.subject, **keywords)
    location.record_issued(certificate)
    return _emit_certificate(args, certificate)


@_one_line
def _sign_csr(args: argparse.Namespace) -> int:
    # lazy: keeps `keyplane --help` fast
    from signers.x509.directory import open_ca
    from signers.x509.files import read_csr

    csr = read_csr(args.csr)
    keywords = _request_keywords(args)
    if args.subject:
        keywords["subject"] = args.subject
    location = _locate(args)
    with open_ca(location) as ca:
        certificate = ca.sign_csr(csr, **keywords)
    location.record_issued(certificate)
    return _emit_certificate(args, certificate)


@_one_line
def _csr(args: argparse.Namespace) -> int:
    # lazy: keeps `keyplane --help` fast
    from signers.x509 import SubjectAltNames, create_csr, to_pem, write_pem

    names = SubjectAltNames.parse(args.san)
    request = create_csr(open_key(args, args.key), args.subject, dns_names=names.dns_names, uris=names.uris,
                         emails=names.emails, ip_addresses=names.ip_addresses)
    pem = to_pem(request).decode("ascii")
    if args.out:
        write_pem(args.out, request)
    print_result(args, {"ok": True, "subject": request.subject.rfc4514_string(), "pem": pem},
                 f"wrote CSR to {args.out}" if args.out else pem.rstrip())
    return 0


def _emit_certificate(args: argparse.Namespace, certificate: x509.Certificate) -> int:
    # lazy: keeps `keyplane --help` fast
    from signers.x509 import to_pem, write_pem
    from signers.x509.files import summary

    pem = to_pem(certificate).decode("ascii")
    if args.out:
        write_pem(args.out, certificate)
    facts = summary(certificate)
    text = (f"issued {facts['subject'] or '(no subject)'} serial {facts['serial']} until {facts['not_after']}"
            f" -> {args.out}" if args.out else pem.rstrip())
    print_result(args, {"ok": True, **facts, "pem": pem}, text)
    return 0


@_one_line
def _revoke(args: argparse.Namespace) -> int:
    """Revoke a serial; with a CA directory, republish DIR/crl.pem at once so `ca verify --dir` sees it."""
    # lazy: keeps `keyplane --help` fast
    from signers.x509 import parse_serial, read_certificates, write_pem
    from signers.x509.directory import open_ca

    given = read_certificates(args.certificate)[0] if args.certificate else None
    serial = given.serial_number if given is not None else parse_serial(args.serial)
    location = _locate(args)
    with open_ca(location) as ca:
        warning = _not_ours(location, ca.certificate, serial, given)
        record = ca.revoke(serial, args.reason)
        crl = ca.crl() if location.crl is not None else None
    if crl is not None and location.crl is not None:
        write_pem(location.crl, crl)
    if warning:
        print(f"keyplane: warning: {warning}; revoked anyway", file=sys.stderr)
    data = {"ok": True, "serial": f"{serial:x}", "reason": record.reason, "revoked_at": record.revoked_at.isoformat(),
            "warning": warning, "crl": str(location.crl) if crl is not None else None}
    published = (f"; republished {location.crl}" if crl is not None
                 else "; publish a new CRL with `keyplane ca crl`")
    print_result(args, data, f"revoked {serial:x} ({record.reason}) at {record.revoked_at.isoformat()}{published}")
    return 0


def _not_ours(location: CaDirectory, ca_certificate: x509.Certificate, serial: int,
              given: x509.Certificate | None) -> str | None:
    """Why `serial` does not look like one this CA issued, or None."""
    # lazy: keeps `keyplane --help` fast
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    from signers.x509.errors import describe

    if given is not None:
        try:
            given.verify_directly_issued_by(ca_certificate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            return f"{describe(given)} was not issued by this CA"
        return None
    if location.issued is None or not location.issued.is_dir():
        return None  # no issuance record kept (explicit paths, or a CA that has issued nothing yet)
    if location.issued_certificate(serial) is None:
        return f"serial {serial:x} was never issued by this CA (no {location.issued / f'{serial:x}.pem'})"
    return None


@_one_line
def _crl(args: argparse.Namespace) -> int:
    # lazy: keeps `keyplane --help` fast
    from pathlib import Path

    from cryptography.x509 import CRLNumber

    from signers.x509 import to_pem, write_pem
    from signers.x509.directory import open_ca

    validity = _duration(args.hours, 3600.0, "--hours")
    location = _locate(args)
    with open_ca(location) as ca:
        crl = ca.crl(validity=validity)
    out = Path(args.out) if args.out else location.crl
    if out is not None:
        write_pem(out, crl)
    pem = to_pem(crl).decode("ascii")
    number = crl.extensions.get_extension_for_class(CRLNumber).value.crl_number
    data = {"ok": True, "revoked": len(crl), "crl_number": number, "next_update": crl.next_update_utc,
            "path": str(out) if out else None, "pem": pem}
    print_result(args, data, f"CRL #{number} with {len(crl)} revoked serial(s), next update "
                             f"{crl.next_update_utc.isoformat() if crl.next_update_utc else '-'}"
                             + (f" -> {out}" if out else "\n" + pem.rstrip()))
    return 0


@_one_line
def _verify(args: argparse.Namespace) -> int:
    # lazy: keeps `keyplane --help` fast
    from pathlib import Path

    from signers.x509 import CertificateError, read_certificates, verify_chain
    from signers.x509.files import read_crl

    given = read_certificates(args.certificate)
    leaf, intermediates = given[0], given[1:]
    roots = [c for path in args.roots for c in read_certificates(path)]
    for path in args.untrusted:
        intermediates += read_certificates(path)
    crls = [read_crl(path) for path in args.crl]
    if args.dir:
        chain = read_certificates(Path(args.dir) / "chain.pem")
        intermediates += chain[:-1]
        roots.append(chain[-1])
        own_crl = Path(args.dir) / "crl.pem"
        if not args.no_crl and own_crl.resolve() not in {Path(p).resolve() for p in args.crl}:
            if not own_crl.is_file():
                raise ConfigError(f"{own_crl} does not exist: publish one with `keyplane ca crl --dir {args.dir}` "
                                  "(or pass --no-crl to verify without revocation)")
            crls.append(read_crl(own_crl))
    if not roots:
        raise ConfigError("give --roots FILE (or --dir of a CA) to say which root is trusted")
    at = _parse_time(args.at) if args.at else None
    try:
        path = verify_chain(leaf, intermediates, roots, at=at, crls=crls, require_crl=args.require_crl,
                            extended_key_usages=args.eku)
    except CertificateError as e:
        failing = e.certificate.subject.rfc4514_string() if e.certificate is not None else None
        print_result(args, {"ok": False, "verified": False, "reason": e.reason.value, "certificate": failing,
                            "message": str(e)}, f"NOT verified: {e}")
        return EXIT_INVALID
    subjects = [c.subject.rfc4514_string() for c in path]
    print_result(args, {"ok": True, "verified": True, "path": subjects, "crls_checked": len(crls)},
                 "verified: " + " <- ".join(subjects))
    return 0


def _parse_time(text: str) -> datetime.datetime:
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--at {text[:60]!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
