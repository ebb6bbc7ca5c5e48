"""``keyplane token|passport|revoke|jwks|audit``: issuance from the command line.

Keys are key URIs or names from keyplane.toml (opened with `signers.open`); verifiers
take the issuer's public keys as a file (``--jwks``: a JWKS, one JWK or a PEM public
key), so verification runs offline. A refused token exits 1 with one line saying why
(``keyplane: TokenRevoked: ...``), as every TokenError does through `signers.cli.main`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..clock import DEFAULT_LEEWAY
from ..errors import ConfigError
from .agent_io import public_key_of, read_json_object, trusted_keys
from .common import (
    EXIT_INVALID,
    action,
    command_group,
    environment_default,
    key_argument,
    open_key,
    print_result,
    seconds,
)
from .io import looks_like_jwt, read_bytes, read_token, write_bytes

__all__ = ["register"]

# Finite, non-negative seconds (NaN would switch expiry checks off; see signers.clock.duration).
_seconds = seconds("the leeway")
_ttl_seconds = seconds("the lifetime", allow_zero=False)


def _positive_seconds(text: str) -> float:
    """A lifetime: finite seconds, at least one."""
    value = _ttl_seconds(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} must be at least one second")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} must not be negative")
    return value


def register(subparsers: Any) -> None:
    _register_token(subparsers)
    _register_passport(subparsers)
    _register_revoke(subparsers)
    _register_jwks(subparsers)
    _register_audit(subparsers)


# -- argument groups shared by the verify commands -----------------------------------------


def _add_trust(parser: argparse.ArgumentParser) -> None:
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks", help="trusted issuer keys: a JWKS file, one JWK or a PEM public key (offline)")
    keys.add_argument("--key", help="trust this key URI or configured key name instead")
    parser.add_argument("--aud", action="append", help="accepted audience (repeatable); required if the token has aud")
    parser.add_argument("--iss", action="append", help="accepted issuer (repeatable)")
    parser.add_argument("--leeway", type=_seconds, default=DEFAULT_LEEWAY,
                        help=f"clock skew tolerated, seconds (default {DEFAULT_LEEWAY:g})")
    revs = parser.add_mutually_exclusive_group()
    revs.add_argument("--revocations", help="SQLite revocation store to check (default: $KEYPLANE_REVOCATIONS)")
    revs.add_argument("--revocation-list", help="signed revocation list (JWT file) to check, verified with the same keys")
    parser.add_argument("--list-iss", action="append",
                        help="issuer the signed revocation list must have (repeatable; default: the --iss values)")
    parser.add_argument("--min-list-number", type=_count, help="refuse signed revocation lists older than this number")


def _register_token(subparsers: Any) -> None:
    sub = command_group(subparsers, "token", "sign and verify JWTs with any key")

    sign = action(sub, "sign", "sign a JWT (adds iat, nbf, exp and jti unless given)", _token_sign)
    key_argument(sign)
    sign.add_argument("--claims", help="claims as a JSON object, or @FILE")
    sign.add_argument("--sub", help="subject")
    sign.add_argument("--iss", help="issuer")
    sign.add_argument("--aud", action="append", help="audience (repeatable)")
    sign.add_argument("--ttl", type=_positive_seconds, default=3600, help="lifetime in seconds (default 3600)")
    sign.add_argument("--typ", default="JWT", help="header typ (default JWT)")
    sign.add_argument("--alg", help="alg name to write when there are two (Ed25519 keys: EdDSA or Ed25519)")

    verify = action(sub, "verify", "verify a JWT offline; exit 1 if it is refused", _token_verify)
    verify.add_argument("token", help="the token, a file holding it, or - for standard input")
    verify.add_argument("--typ", help="required header typ")
    _add_trust(verify)


def _register_passport(subparsers: Any) -> None:
    sub = command_group(subparsers, "passport", "issue and verify agent passports")

    issue = action(sub, "issue", "issue a passport to an agent key", _passport_issue)
    key_argument(issue, "issuer's")
    issue.add_argument("--sub", required=True, help="the agent's id")
    issue.add_argument("--name", required=True, help="the agent's display name")
    issue.add_argument("--agent-key", required=True,
                       help="the agent's public key: key URI / configured name, or a JWK or PEM file")
    code = issue.add_mutually_exclusive_group(required=True)
    code.add_argument("--code-hash", help="sha256 of the agent's code (hex or sha256:hex)")
    code.add_argument("--code-file", help="hash this file as the agent's code")
    issue.add_argument("--stage", required=True, help="e.g. dev, staging, production")
    issue.add_argument("--trust-score", type=int, required=True, help="0-100")
    issue.add_argument("--scope", action="append", default=[], help="granted scope (repeatable)")
    issue.add_argument("--ttl", type=_positive_seconds, default=86400, help="lifetime in seconds (default one day)")
    issue.add_argument("--iss", help="issuer")
    issue.add_argument("--aud", action="append", help="audience (repeatable)")
    issue.add_argument("--out", help="write the token to this file too")

    verify = action(sub, "verify", "verify a passport offline; exit 1 if it is refused", _passport_verify)
    verify.add_argument("token", help="the passport, a file holding it, or - for standard input")
    verify.add_argument("--scope", action="append", default=[], help="required scope (repeatable)")
    verify.add_argument("--min-trust-score", type=int, help="refuse passports scoring lower")
    _add_trust(verify)


def _register_revoke(subparsers: Any) -> None:
    revoke = action(subparsers, "revoke", "revoke a token id or certificate serial; list or sign the list", _revoke)
    revoke.add_argument("id", nargs="?", help="the jti (or hex certificate serial with --kind x509-serial), "
                        "or a whole token we issued (with --jwks/--key: its jti is revoked)")
    revoke.add_argument("--db", help="SQLite revocation store (default: $KEYPLANE_REVOCATIONS)")
    revoke.add_argument("--kind", default="jti", help="jti (default) or x509-serial")
    revoke.add_argument("--reason", default="unspecified", help="why (kept with the record)")
    revoke.add_argument("--list", action="store_true", help="list the revocations instead")
    revoke.add_argument("--sign-list", metavar="KEY", help="print a signed revocation list made with this key")
    revoke.add_argument("--iss", help="issuer of the signed list (with --sign-list)")
    revoke.add_argument("--ttl", type=_positive_seconds, default=3600, help="signed list lifetime, seconds (default 3600)")
    trust = revoke.add_mutually_exclusive_group()
    trust.add_argument("--jwks", help="our public keys (JWKS, JWK or PEM file): to revoke a whole token by its jti")
    trust.add_argument("--key", help="our key URI or configured name: to revoke a whole token by its jti")
    revoke.add_argument("--out", help="write the signed list to this file")


def _register_jwks(subparsers: Any) -> None:
    jwks = action(subparsers, "jwks", "print the JWKS of one or more keys (for offline verifiers)", _jwks)
    jwks.add_argument("keys", nargs="+", help="key URIs or configured key names")
    jwks.add_argument("--out", help="write it to this file")
    jwks.add_argument("--alg", help="alg name to write when there are two (Ed25519 keys: EdDSA or Ed25519, RFC 9864)")


def _register_audit(subparsers: Any) -> None:
    sub = command_group(subparsers, "audit", "check a hash-chained signing log")
    verify = action(sub, "verify", "verify the chain; exit 1 naming the first bad record", _audit_verify)
    verify.add_argument("log", help="the log: *.jsonl or a SQLite file")
    keys = verify.add_mutually_exclusive_group()
    keys.add_argument("--jwks", help="public keys to verify checkpoint signatures (JWKS, JWK or PEM file)")
    keys.add_argument("--key", help="key URI or configured name whose public key verifies checkpoints")
    verify.add_argument("--expected-head", help="record_hash the log must end at (catches truncation)")
    verify.add_argument("--require-checkpoint-at-end", action="store_true",
                        help="refuse a log whose last record is not a verified checkpoint")
    verify.add_argument("--max-unchecked", type=_count,
                        help="refuse a log with more records than this after its last verified checkpoint")


# -- helpers -------------------------------------------------------------------------------


def _read_token(value: str, what: str = "token") -> str:
    return read_token(value, what)  # a missing file is reported as missing, not as a malformed token


def _revocations(args: argparse.Namespace, keys: Any) -> Any:
    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.revocation import RevocationList, SQLiteRevocationStore

    if getattr(args, "revocation_list", None):
        issuers = args.list_iss or args.iss
        if not issuers:
            raise ConfigError("--revocation-list needs --list-iss (or --iss): the list's issuer must be pinned")
        return RevocationList.load(read_token(args.revocation_list, "revocation list"), keys, issuer=issuers,
                                   leeway=args.leeway, min_number=args.min_list_number)
    db = environment_default(getattr(args, "revocations", None), "KEYPLANE_REVOCATIONS")
    if db:
        if not Path(db).is_file():
            raise ConfigError(f"revocation store {db} does not exist")
        return SQLiteRevocationStore(db)
    return None


def _verify_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"audience": args.aud, "issuer": args.iss, "leeway": args.leeway}


def _write(path: str | None, text: str) -> None:
    if path:
        write_bytes(path, (text + "\n").encode("utf-8"))


# -- handlers ------------------------------------------------------------------------------


def _token_sign(args: argparse.Namespace) -> int:
    import uuid  # 4 ms at start-up otherwise

    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.jose import sign_jwt

    claims: dict[str, Any] = {}
    if args.claims:
        claims = read_json_object(args.claims, "--claims")
    for name, value in (("sub", args.sub), ("iss", args.iss)):
        if value is not None:
            claims[name] = value
    if args.aud:
        claims["aud"] = args.aud[0] if len(args.aud) == 1 else args.aud
    now = int(time.time())
    claims.setdefault("iat", now)
    claims.setdefault("nbf", now)
    claims.setdefault("exp", now + int(args.ttl))
    claims.setdefault("jti", str(uuid.uuid4()))
    signer = open_key(args, args.key)
    token = sign_jwt(signer, claims, typ=args.typ or None, alg=args.alg)
    print_result(args, {"ok": True, "token": token, "kid": signer.key_id, "alg": signer.algorithm.value,
                        "claims": claims}, token)
    return 0


def _token_verify(args: argparse.Namespace) -> int:
    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.jose import verify_jwt

    keys = trusted_keys(args, args.jwks, args.key)
    verified = verify_jwt(_read_token(args.token), keys, typ=args.typ, revocations=_revocations(args, keys),
                          **_verify_options(args))
    data = {"ok": True, "header": verified.header, "claims": verified.claims, "kid": verified.kid,
            "alg": verified.algorithm.value}
    print_result(args, data, [f"valid: {verified.algorithm.value} token signed by {verified.kid}",
                              json.dumps(verified.claims, indent=2, sort_keys=True)])
    return 0


def _passport_issue(args: argparse.Namespace) -> int:
    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.passport import code_hash_of, issue_passport

    code_hash = code_hash_of(read_bytes(args.code_file, "code file")) if args.code_file else args.code_hash
    signer = open_key(args, args.key)
    aud = None if not args.aud else (args.aud[0] if len(args.aud) == 1 else args.aud)
    token = issue_passport(
        signer, sub=args.sub, name=args.name, agent_key=public_key_of(args, args.agent_key, "agent key file"), code_hash=code_hash,
        stage=args.stage, trust_score=args.trust_score, scopes=args.scope, ttl=args.ttl, iss=args.iss, aud=aud,
    )
    _write(args.out, token)
    print_result(args, {"ok": True, "token": token, "kid": signer.key_id, "alg": signer.algorithm.value}, token)
    return 0


def _passport_verify(args: argparse.Namespace) -> int:
    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.passport import verify_passport

    keys = trusted_keys(args, args.jwks, args.key)
    passport = verify_passport(
        _read_token(args.token), keys, revocations=_revocations(args, keys), required_scopes=args.scope,
        min_trust_score=args.min_trust_score, **_verify_options(args),
    )
    data = {"ok": True, "sub": passport.sub, "name": passport.name, "agent_key_id": passport.agent_key.key_id,
            "code_hash": passport.code_hash, "stage": passport.stage, "trust_score": passport.trust_score,
            "scopes": list(passport.scopes), "iss": passport.iss, "jti": passport.jti,
            "expires_at": passport.expires_at.isoformat(), "issuer_kid": passport.issuer_kid}
    print_result(args, data, [
        f"valid passport for {passport.sub} ({passport.name}), issued by {passport.issuer_kid}",
        f"  agent key   {passport.agent_key.spec.value} {passport.agent_key.key_id}",
        f"  stage       {passport.stage}, trust score {passport.trust_score}",
        f"  scopes      {', '.join(passport.scopes) or '-'}",
        f"  code hash   {passport.code_hash}",
        f"  expires     {passport.expires_at.isoformat()}",
    ])
    return 0


def _revoke(args: argparse.Namespace) -> int:
    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.revocation import SQLiteRevocationStore, issue_revocation_list, revoke_token

    db = environment_default(args.db, "KEYPLANE_REVOCATIONS")
    if not db:
        raise ConfigError("no revocation store: give --db PATH or set KEYPLANE_REVOCATIONS")
    if not (args.id or args.list or args.sign_list):
        raise ConfigError("give an id to revoke, --list, or --sign-list KEY")
    whole_token = bool(args.id) and looks_like_jwt(args.id.strip())
    if whole_token and not (args.jwks or args.key):
        raise ConfigError("that looks like a whole token: pass its jti, or add --jwks/--key with our keys "
                          "to revoke the jti of a token we issued")
    keys = trusted_keys(args, args.jwks, args.key) if whole_token else None
    with SQLiteRevocationStore(db) as store:
        if args.id:
            if keys is not None:
                record = revoke_token(store, args.id.strip(), keys, reason=args.reason)
            else:
                record = store.revoke(args.id, kind=args.kind, reason=args.reason)
            print_result(args, {"ok": True, "id": record.id, "kind": record.kind, "reason": record.reason,
                                "revoked_at": record.revoked_at.isoformat()},
                         f"revoked {record.kind} {record.id} ({record.reason}) at {record.revoked_at.isoformat()}")
        if args.list:
            entries = list(store.list())
            print_result(args, {"ok": True, "revocations": [
                {"id": r.id, "kind": r.kind, "reason": r.reason, "revoked_at": r.revoked_at.isoformat()}
                for r in entries]},
                [f"{r.revoked_at.isoformat()}\t{r.kind}\t{r.id}\t{r.reason}" for r in entries] or ["(none revoked)"])
        if args.sign_list:
            if not args.iss:
                raise ConfigError("--sign-list needs --iss (the list's issuer)")
            token = issue_revocation_list(open_key(args, args.sign_list), store, issuer=args.iss, ttl=args.ttl)
            _write(args.out, token)
            print_result(args, {"ok": True, "token": token}, token)
    return 0


def _jwks(args: argparse.Namespace) -> int:
    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.jose import JWKS

    jwks = JWKS.of(*(open_key(args, k) for k in args.keys), alg=args.alg)
    _write(args.out, jwks.to_json())
    print(jwks.to_json())
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    # lazy: issuance modules (rfc8785, sqlite3) load only when a token command runs
    from signers.audit import verify_chain

    if not Path(args.log).is_file():
        raise ConfigError(f"audit log {args.log} does not exist")
    keys = trusted_keys(args, args.jwks, args.key) if (args.jwks or args.key) else None
    if (args.require_checkpoint_at_end or args.max_unchecked is not None) and keys is None:
        raise ConfigError("--require-checkpoint-at-end and --max-unchecked need the keys (--jwks or --key)")
    result = verify_chain(args.log, keys, expected_head=args.expected_head,
                          require_checkpoint_at_end=args.require_checkpoint_at_end, max_unchecked=args.max_unchecked)
    if not result.ok:
        if args.json:
            print(json.dumps(result.to_dict(), indent=2))
        else:
            print(f"keyplane: audit chain broken: {result.reason}", file=sys.stderr)
        return EXIT_INVALID
    lines = [f"audit chain ok: {result.records} records, {result.checkpoints} checkpoints "
             f"({result.checkpoints_verified} signatures verified), head {result.head}"]
    print_result(args, result.to_dict(), lines + [f"  note: {n}" for n in result.notes])
    return 0
