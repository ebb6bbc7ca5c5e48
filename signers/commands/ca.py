"""``keyplane ca init|issue|sign-csr|csr|revoke|crl|verify``: a CA whose key stays in its store.

A CA lives in a directory (``--dir``, default ``$KEYPLANE_CA_DIR``):

    ca.json          the key (URI or keyplane.toml name; never a secret) and file names
    ca.pem           the CA certificate
    chain.pem        the CA certificate and its issuers up to the root
    revocations.db   revoked serials (SQLite, shared format with token revocation)

``--key``, ``--cert`` and ``--revocations`` override the directory's entries (or replace the
directory). Everything heavy is imported inside the handlers so ``keyplane --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signers.errors import ConfigError

from .common import EXIT_INVALID, open_key, print_result
from .io import read_bytes, read_public_key

if TYPE_CHECKING:
    from cryptography import x509

    from signers.x509 import CertificateAuthority

__all__ = ["register"]

STATE_FILE = "ca.json"


def register(subparsers: Any) -> None:
    ca = subparsers.add_parser("ca", help="an X.509 certificate authority whose key stays in its key store")
    sub = ca.add_subparsers(dest="ca_command", metavar="ACTION", required=True)

    init = sub.add_parser("init", help="create a root CA (or, with --parent, an intermediate) in --dir")
    _ca_location(init)
    init.add_argument("--subject", required=True, help="CA name, e.g. 'CN=Acme Root,O=Acme' or just 'Acme Root'")
    init.add_argument("--days", type=int, default=None, help="validity in days (root 3650, intermediate 365)")
    init.add_argument("--path-length", type=int, default=None,
                      help="CA certificates allowed below this one (root: unlimited; intermediate: 0)")
    init.add_argument("--parent", help="directory of the CA that signs this one (makes an intermediate)")
    init.set_defaults(func=_init)

    issue = sub.add_parser("issue", help="issue a certificate for a public key")
    _ca_location(issue)
    whose = issue.add_mutually_exclusive_group(required=True)
    whose.add_argument("--pubkey", help="the subject's public key: PEM or JWK file")
    whose.add_argument("--for-key", help="the subject's key as a URI or name (its public key is used)")
    _request_options(issue)
    issue.set_defaults(func=_issue)

    sign_csr = sub.add_parser("sign-csr", help="issue a certificate for a CSR (its signature is checked)")
    _ca_location(sign_csr)
    sign_csr.add_argument("csr", help="CSR file (PEM or DER)")
    _request_options(sign_csr)
    sign_csr.set_defaults(func=_sign_csr)

    csr = sub.add_parser("csr", help="make a CSR signed by a key in any store")
    csr.add_argument("--key", required=True, help="key URI or name")
    csr.add_argument("--subject", required=True)
    csr.add_argument("--san", action="append", default=[], help="dns:NAME, uri:spiffe://..., email:A@B, ip:ADDR")
    csr.add_argument("--out", help="write the PEM here (default: print it)")
    csr.set_defaults(func=_csr)

    revoke = sub.add_parser("revoke", help="revoke a certificate by serial (hex) or certificate file")
    _ca_location(revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("serial", nargs="?", help="serial number in hex (as `openssl x509 -serial` prints it)")
    which.add_argument("--certificate", help="the certificate file to revoke")
    revoke.add_argument("--reason", default="unspecified", help="RFC 5280 reason, e.g. keyCompromise, superseded")
    revoke.set_defaults(func=_revoke)

    crl = sub.add_parser("crl", help="write a fresh CRL signed by the CA key")
    _ca_location(crl)
    crl.add_argument("--hours", type=float, default=24.0, help="until the next update (default 24)")
    crl.add_argument("--out", help="write the PEM here (default: DIR/crl.pem, or print it)")
    crl.set_defaults(func=_crl)

    verify = sub.add_parser("verify", help="verify a certificate chain; exit 1 with the reason if it fails")
    verify.add_argument("certificate", help="the certificate (PEM; further certificates in it count as intermediates)")
    verify.add_argument("--roots", action="append", default=[], help="trusted root PEM file(s); default: the --dir CA's root")
    verify.add_argument("--untrusted", action="append", default=[], help="intermediate certificate PEM file(s)")
    verify.add_argument("--crl", action="append", default=[], help="CRL file(s) to check revocation against")
    verify.add_argument("--require-crl", action="store_true", help="fail unless every issuer's CRL is given")
    verify.add_argument("--eku", action="append", default=[], help="required extended key usage (client_auth, ...)")
    verify.add_argument("--at", help="verify as of this ISO 8601 time (default: now)")
    verify.add_argument("--dir", help="a CA directory: its chain is trusted (root) and supplied (intermediates)")
    verify.set_defaults(func=_verify)


def _ca_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="CA directory (default: $KEYPLANE_CA_DIR)")
    parser.add_argument("--key", help="CA key URI or name (overrides the directory's)")
    parser.add_argument("--cert", help="CA certificate PEM (overrides DIR/ca.pem)")
    parser.add_argument("--revocations", help="revocation database (overrides DIR/revocations.db)")


def _request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subject", help="subject name (a CSR's own subject by default)")
    parser.add_argument("--san", action="append", default=[], help="dns:NAME, uri:spiffe://..., email:A@B, ip:ADDR")
    parser.add_argument("--hours", type=float, help="validity in hours (default 24; CA certificates 365 days)")
    parser.add_argument("--key-usage", action="append", help="key usage name(s) (default digital_signature)")
    parser.add_argument("--eku", action="append", help="extended key usage(s) (default client_auth, server_auth)")
    parser.add_argument("--ca", action="store_true", help="issue a CA certificate")
    parser.add_argument("--path-length", type=int, default=None, help="with --ca: CA certificates allowed below")
    parser.add_argument("--out", help="write the PEM here (default: print it)")


# -- the CA directory --------------------------------------------------------------------


@dataclass
class _Location:
    directory: Path | None
    key: str
    cert: Path
    chain: Path
    revocations: Path


def _locate(args: argparse.Namespace, *, creating: bool = False) -> _Location:
    given = args.dir or os.environ.get("KEYPLANE_CA_DIR")
    directory = Path(given) if given else None
    state: dict[str, Any] = {}
    if directory is not None and not creating:
        try:
            state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            if not (args.key and args.cert):
                raise ConfigError(f"{directory} is not a CA directory (no {STATE_FILE}); run `keyplane ca init`") from None
        except ValueError as e:
            raise ConfigError(f"{directory / STATE_FILE} is not valid JSON") from e
    if directory is None and not (args.key and args.cert):
        raise ConfigError("give --dir (or $KEYPLANE_CA_DIR), or both --key and --cert")
    base = directory or Path(".")
    key = args.key or state.get("key")
    if not key:
        raise ConfigError("no CA key: give --key URI or name")
    return _Location(
        directory=directory,
        key=key,
        cert=Path(args.cert) if args.cert else base / state.get("certificate", "ca.pem"),
        chain=base / state.get("chain", "chain.pem"),
        revocations=Path(args.revocations) if args.revocations else base / state.get("revocations", "revocations.db"),
    )


@contextlib.contextmanager
def _open_ca(location: _Location, args: argparse.Namespace) -> Iterator[CertificateAuthority]:
    """The CA at `location` (its key opened with `args`' configuration), with its revocation database open."""
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.revocation import SQLiteRevocationStore
    from signers.x509 import CertificateAuthority, read_certificates

    signer = open_key(args, location.key)
    certificates = read_certificates(location.cert)
    parents: list[x509.Certificate] = []
    if location.chain.is_file():
        parents = [c for c in read_certificates(location.chain) if c != certificates[0]]
    with SQLiteRevocationStore(location.revocations) as revocations:
        yield CertificateAuthority(signer, certificates[0], chain=parents, revocations=revocations)


def _key_reference(given: str, signer_uri: str) -> str:
    """What ca.json records: a keyplane.toml name as given, else the signer's URI (secrets removed)."""
    return given if ":" not in given else signer_uri


# -- handlers ------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import CertificateAuthority, write_pem

    location = _locate(args, creating=True)
    if location.directory is None:
        raise ConfigError("ca init needs --dir (or $KEYPLANE_CA_DIR)")
    directory = location.directory
    if (directory / STATE_FILE).exists():
        raise ConfigError(f"{directory} already holds a CA ({STATE_FILE}); init never overwrites")
    signer = open_key(args, location.key)
    days = datetime.timedelta(days=args.days) if args.days else None
    if args.parent:
        parent_args = argparse.Namespace(dir=args.parent, key=None, cert=None, revocations=None)
        options: dict[str, Any] = {"path_length": 0 if args.path_length is None else args.path_length}
        if days:
            options["validity"] = days
        with _open_ca(_locate(parent_args), args) as parent:
            ca = parent.create_intermediate(signer, args.subject, **options)
    else:
        root_options: dict[str, Any] = {"path_length": args.path_length}
        if days:
            root_options["validity"] = days
        ca = CertificateAuthority.create_root(signer, args.subject, **root_options)
    directory.mkdir(parents=True, exist_ok=True)
    write_pem(directory / "ca.pem", ca.certificate)
    write_pem(directory / "chain.pem", *ca.chain)
    state = {"key": _key_reference(location.key, signer.uri), "certificate": "ca.pem", "chain": "chain.pem",
             "revocations": "revocations.db"}
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    certificate = ca.chain[0]
    data = {"ok": True, "directory": str(directory), **_summary(certificate), "key": state["key"]}
    print_result(args, data, [f"created CA {certificate.subject.rfc4514_string()} in {directory}",
                              f"  key    {state['key']}", f"  serial {certificate.serial_number:x}",
                              f"  until  {certificate.not_valid_after_utc.isoformat()}"])
    return 0


def _request_keywords(args: argparse.Namespace) -> dict[str, Any]:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import SubjectAltNames

    names = SubjectAltNames.parse(args.san)
    keywords: dict[str, Any] = {"is_ca": args.ca, "path_length": args.path_length,
                                "key_usages": args.key_usage, "extended_key_usages": args.eku}
    if names:
        keywords.update(dns_names=names.dns_names, uris=names.uris, emails=names.emails,
                        ip_addresses=names.ip_addresses)
    if args.hours is not None:
        keywords["validity"] = datetime.timedelta(hours=args.hours)
    return keywords


def _issue(args: argparse.Namespace) -> int:
    public_key = read_public_key(args.pubkey) if args.pubkey else open_key(args, args.for_key).public_key
    with _open_ca(_locate(args), args) as ca:
        certificate = ca.issue(public_key, args.subject, **_request_keywords(args))
    return _emit_certificate(args, certificate)


def _sign_csr(args: argparse.Namespace) -> int:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import load_csr

    csr = load_csr(read_bytes(args.csr, "CSR file"))
    keywords = _request_keywords(args)
    if args.subject:
        keywords["subject"] = args.subject
    with _open_ca(_locate(args), args) as ca:
        certificate = ca.sign_csr(csr, **keywords)
    return _emit_certificate(args, certificate)


def _csr(args: argparse.Namespace) -> int:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import SubjectAltNames, create_csr, to_pem

    names = SubjectAltNames.parse(args.san)
    request = create_csr(open_key(args, args.key), args.subject, dns_names=names.dns_names, uris=names.uris,
                         emails=names.emails, ip_addresses=names.ip_addresses)
    pem = to_pem(request).decode("ascii")
    if args.out:
        Path(args.out).write_text(pem, encoding="ascii")
    print_result(args, {"ok": True, "subject": request.subject.rfc4514_string(), "pem": pem},
                 f"wrote CSR to {args.out}" if args.out else pem.rstrip())
    return 0


def _emit_certificate(args: argparse.Namespace, certificate: x509.Certificate) -> int:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import to_pem, write_pem

    pem = to_pem(certificate).decode("ascii")
    if args.out:
        write_pem(args.out, certificate)
    summary = _summary(certificate)
    text = (f"issued {summary['subject'] or '(no subject)'} serial {summary['serial']} until {summary['not_after']}"
            f" -> {args.out}" if args.out else pem.rstrip())
    print_result(args, {"ok": True, **summary, "pem": pem}, text)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import read_certificates

    if args.certificate:
        serial = read_certificates(args.certificate)[0].serial_number
    else:
        try:
            serial = int(args.serial.replace(":", ""), 16)
        except ValueError:
            raise ConfigError(f"serial {args.serial!r} is not hexadecimal") from None
    with _open_ca(_locate(args), args) as ca:
        record = ca.revoke(serial, args.reason)
    data = {"ok": True, "serial": f"{serial:x}", "reason": record.reason, "revoked_at": record.revoked_at.isoformat()}
    print_result(args, data, f"revoked {serial:x} ({record.reason}) at {record.revoked_at.isoformat()}; "
                             "publish a new CRL with `keyplane ca crl`")
    return 0


def _crl(args: argparse.Namespace) -> int:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from cryptography.x509 import CRLNumber

    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import to_pem, write_pem

    location = _locate(args)
    with _open_ca(location, args) as ca:
        crl = ca.crl(validity=datetime.timedelta(hours=args.hours))
    out = Path(args.out) if args.out else (location.directory / "crl.pem" if location.directory else None)
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


def _verify(args: argparse.Namespace) -> int:
    # lazy: x509 (and sqlite3) load only when a ca command runs
    from signers.x509 import CertificateError, load_crl, read_certificates, verify_chain

    given = read_certificates(args.certificate)
    leaf, intermediates = given[0], given[1:]
    roots = [c for path in args.roots for c in read_certificates(path)]
    for path in args.untrusted:
        intermediates += read_certificates(path)
    if args.dir:
        chain = read_certificates(Path(args.dir) / "chain.pem")
        intermediates += chain[:-1]
        roots.append(chain[-1])
    if not roots:
        raise ConfigError("give --roots FILE (or --dir of a CA) to say which root is trusted")
    crls = [load_crl(read_bytes(path, "CRL file")) for path in args.crl]
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
        raise ConfigError(f"--at {text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)


def _summary(certificate: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": f"{certificate.serial_number:x}",
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "signature_algorithm": getattr(certificate.signature_algorithm_oid, "_name", None)
        or certificate.signature_algorithm_oid.dotted_string,
    }
