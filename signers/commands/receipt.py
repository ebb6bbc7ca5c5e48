"""``keyplane receipt sign|verify``: signed execution receipts and their DAG.

``sign`` digests an input and an output (files; ``--format json`` parses them as JSON and
digests their RFC 8785 form, the default ``bytes`` digests the bytes as they are) and
prints the receipt token. ``verify`` prints VALID (exit 0) or TAMPERED naming what
differed (exit 1); ``verify --dag R1 R2 ...`` checks every parent edge and names the first
broken one (exit 1).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import ConfigError
from .agent_io import read_json_object, read_token, trusted_keys
from .common import EXIT_INVALID, EXIT_OK, action, command_group, key_argument, open_key, print_result
from .io import read_bytes, write_bytes

__all__ = ["register"]


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "receipt", "execution receipts: sign, verify, check a DAG")

    sign = action(sub, "sign", "sign a receipt for one execution", _sign)
    key_argument(sign, "agent's")
    sign.add_argument("--input", required=True, help="the execution's input file")
    sign.add_argument("--output", required=True, help="the execution's output file")
    sign.add_argument("--format", choices=("bytes", "json"), default="bytes", help="how input and output are digested")
    sign.add_argument("--parent", action="append", default=[], help="a parent receipt (token, file or sha256: hash)")
    sign.add_argument("--agent", help="the agent's id (the receipt's sub)")
    sign.add_argument("--context", help="context as a JSON object, or @FILE")
    sign.add_argument("--audit", help="append the receipt's signature to this audit log")
    sign.add_argument("--out", help="write the receipt to this file too")

    verify = action(sub, "verify", "VALID or TAMPERED (exit 1); or --dag to check parent edges", _verify)
    verify.add_argument("receipts", nargs="+", help="the receipt (token or file); with --dag, all of them")
    verify.add_argument("--output", help="the output file to compare")
    verify.add_argument("--input", help="the input file to compare too")
    verify.add_argument("--format", choices=("bytes", "json"), default="bytes", help="as when signing")
    verify.add_argument("--dag", action="store_true", help="verify the receipts as a DAG")
    keys = verify.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks", help="the agent's public keys: JWKS, JWK or PEM file")
    keys.add_argument("--key", help="the agent's key URI or configured name")


def _value(path: str, form: str, what: str) -> Any:
    """The file's bytes, or its JSON with --format json; ConfigError when missing or not JSON."""
    data = read_bytes(path, what)
    if form == "bytes":
        return data
    try:
        return json.loads(data)
    except ValueError as e:
        raise ConfigError(f"{path} is not JSON (use --format bytes)") from e


def _parent(value: str) -> str:
    # lazy: signers.agents loads the whole token layer (rfc8785, pyOpenSSL, sqlite3); only `receipt` needs it
    from signers.agents.receipts import receipt_hash

    return value if value.startswith("sha256:") else receipt_hash(read_token(value))


def _sign(args: argparse.Namespace) -> int:
    # lazy: signers.agents and signers.audit load the token layer; only `receipt` needs them
    from signers.agents.receipts import sign_execution
    from signers.audit import open_audit_log

    context = read_json_object(args.context, "--context") if args.context else None
    receipt = sign_execution(
        open_key(args, args.key), _value(args.input, args.format, "input file"), _value(args.output, args.format, "output file"),
        parents=[_parent(p) for p in args.parent], context=context, agent=args.agent,
        audit=open_audit_log(args.audit) if args.audit else None,
    )
    if args.out:
        write_bytes(args.out, (receipt.token + "\n").encode("utf-8"), "--out file")
    print_result(args, {"ok": True, "token": receipt.token, "hash": receipt.hash, "input": receipt.input_digest,
                        "output": receipt.output_digest, "parents": list(receipt.parents)}, receipt.token)
    return 0


def _verify(args: argparse.Namespace) -> int:
    # lazy: signers.agents loads the whole token layer; only `receipt` needs it
    from signers.agents.receipts import verify_dag, verify_output

    keys = trusted_keys(args, args.jwks, args.key)
    tokens = [read_token(r) for r in args.receipts]
    if args.dag:
        dag = verify_dag(tokens, keys)
        print_result(args, {"ok": True, "receipts": len(dag.order), "edges": dag.edges, "roots": list(dag.roots)},
                     f"DAG verified: {len(dag.order)} receipts, {dag.edges} edges, {len(dag.roots)} root(s)")
        return EXIT_OK
    if len(tokens) != 1 or not args.output:
        raise ConfigError("verify one receipt with --output FILE (or several with --dag)")
    extra: dict[str, Any] = {"input": _value(args.input, args.format, "input file")} if args.input else {}
    check = verify_output(tokens[0], _value(args.output, args.format, "output file"), keys, **extra)
    verb = "differ" if len(check.differed) > 1 else "differs"
    text = "VALID" if check.valid else f"TAMPERED: {' and '.join(check.differed)} {verb} from the receipt"
    print_result(args, {"ok": check.valid, "status": check.status, "differed": list(check.differed),
                        "hash": check.receipt.hash}, text)
    return EXIT_OK if check.valid else EXIT_INVALID
