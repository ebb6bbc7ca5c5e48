"""``keyplane keys create|list|delete|pubkey|sign|verify``: keys in any store, from the shell.

Each action is registered by its own ``_register_<action>`` function listed in `_ACTIONS`
and handled by one ``_<action>`` function below it; a new action (``keys import``) adds
one of each and one entry to `_ACTIONS`.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..algorithms import KeySpec, SignatureAlgorithm
from ..errors import ConfigError, KeyplaneError
from ..signer import KeyInfo, KeyStore
from .common import EXIT_USAGE, action, command_group, key_argument, open_key, open_store, print_result, store_argument
from .io import read_input, read_public_key, read_signature, write_bytes
from .keys_import import register_import

__all__ = ["register"]

DEFAULT_SPEC = KeySpec.ED25519
_SPECS = ", ".join(spec.value for spec in KeySpec)
_STORE_HELP = "store URI or name from keyplane.toml (default: $KEYPLANE_STORE)"


def register(subparsers: Any) -> None:
    actions = command_group(subparsers, "keys", "create, list, delete and use keys in any store")
    for add in _ACTIONS:
        add(actions)


# -- keys create ---------------------------------------------------------------------------


def _register_create(actions: Any) -> None:
    create = action(actions, "create", "create a key in a store", _create)
    create.add_argument("name", help="the new key's name in the store")
    create.add_argument("--spec", default=DEFAULT_SPEC.value, help=f"key spec: {_SPECS} (default: %(default)s)")
    create.add_argument("--store", help=_STORE_HELP)
    create.add_argument("--algorithm", help="signature algorithm (default: the spec's, e.g. ES256 for P-256)")


def _create(args: argparse.Namespace) -> int:
    with open_store(args, store_argument(args.store)) as store:
        signer = store.create_key(args.name, KeySpec.parse(args.spec), algorithm=args.algorithm)
        spec = signer.public_key.spec.value
        data = {"ok": True, "name": args.name, "uri": signer.uri, "key_id": signer.key_id, "spec": spec,
                "algorithm": signer.algorithm.value}
        print_result(args, data, [f"created key {args.name}",
                                  f"  spec       {spec}",
                                  f"  algorithm  {signer.algorithm.value}",
                                  f"  key_id     {signer.key_id}",
                                  f"  uri        {signer.uri}"])
    return 0


# -- keys list -----------------------------------------------------------------------------


def _register_list(actions: Any) -> None:
    lst = action(actions, "list", "list the keys in a store, with spec and key id", _list)
    lst.add_argument("--store", help=_STORE_HELP)


def _require_existing(store: KeyStore) -> None:
    # A directory-backed store (the file store) lists a missing directory as empty; for a
    # user that is almost always a mistyped path, so say so instead of "(no keys)".
    directory = getattr(store, "directory", None)
    if isinstance(directory, Path) and not directory.is_dir():
        raise ConfigError(f"store directory {directory} does not exist")


def _described(store: KeyStore, info: KeyInfo) -> dict[str, Any]:
    """The listing entry, with spec and key id filled in by opening the key when the store left them out."""
    entry: dict[str, Any] = {"name": info.name, "uri": info.uri, "spec": info.spec.value if info.spec else None,
                             "key_id": info.key_id, "version": info.version, "enabled": info.enabled}
    if (info.spec is None or info.key_id is None) and info.enabled is not False:
        try:
            public_key = store.open(info.name).public_key
        except KeyplaneError as e:
            entry["error"] = type(e).__name__
        else:
            entry["spec"], entry["key_id"] = public_key.spec.value, public_key.key_id
    return entry


def _list(args: argparse.Namespace) -> int:
    with open_store(args, store_argument(args.store)) as store:
        _require_existing(store)
        entries = [_described(store, info) for info in store.list_keys()]
    lines = [f"{'NAME':<24} {'SPEC':<10} {'KEY ID':<43} URI"] if entries else ["(no keys)"]
    for e in entries:
        key_id = e["key_id"] or (f"({e['error']})" if "error" in e else "-")
        lines.append(f"{e['name']:<24} {e['spec'] or '-':<10} {key_id:<43} {e['uri']}")
    print_result(args, {"ok": True, "keys": entries}, lines)
    return 0


# -- keys delete ---------------------------------------------------------------------------

_DELETION_WORDS = {
    "immediate": "deleted",
    "scheduled": "scheduled for deletion",
    "soft": "deleted (soft delete: the service can still recover it)",
    "disabled": "disabled (the service does not delete keys)",
}


def _register_delete(actions: Any) -> None:
    delete = action(actions, "delete", "delete a key from a store (asks first unless --yes)", _delete)
    delete.add_argument("name", help="the key's name in the store")
    delete.add_argument("--store", help=_STORE_HELP)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError("refusing to delete without confirmation: standard input is not a terminal; pass --yes")
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _delete(args: argparse.Namespace) -> int:
    with open_store(args, store_argument(args.store)) as store:
        signer = store.open(args.name)  # fails now (KeyNotFound) rather than after the question
        what = f"{args.name} ({signer.public_key.spec.value}, key id {signer.key_id})"
        if not args.yes and not _confirmed(f"delete key {what} from {store.uri}? This cannot be undone. [y/N] "):
            print("keyplane: not deleted", file=sys.stderr)
            return EXIT_USAGE
        store.delete_key(args.name)
        deletion = store.capabilities.deletion
    print_result(args, {"ok": True, "name": args.name, "key_id": signer.key_id, "deletion": deletion},
                 f"{_DELETION_WORDS.get(deletion, 'deleted')}: {what}")
    return 0


# -- keys pubkey / sign / verify -----------------------------------------------------------


def _register_pubkey(actions: Any) -> None:
    pub = action(actions, "pubkey", "print a key's public key", _pubkey)
    key_argument(pub)
    pub.add_argument("--format", choices=("pem", "jwk", "der"), default="pem",
                     help="pem, jwk, or der (printed as base64) (default: %(default)s)")


def _pubkey(args: argparse.Namespace) -> int:
    signer = open_key(args, args.key)
    pk = signer.public_key
    if args.format == "jwk":
        text = json.dumps(pk.to_jwk(alg=signer.algorithm), indent=2)
    elif args.format == "der":
        text = base64.b64encode(pk.to_der()).decode()
    else:
        text = pk.to_pem().rstrip()
    print_result(args, {"ok": True, "key_id": pk.key_id, "jwk": pk.to_jwk(alg=signer.algorithm), "pem": pk.to_pem()},
                 text)
    return 0


def _register_sign(actions: Any) -> None:
    sign = action(actions, "sign", "sign a file (or standard input)", _sign)
    key_argument(sign)
    sign.add_argument("--in", dest="input", help="message file (default: standard input)")
    sign.add_argument("--out", help="write the raw signature here instead of printing base64")
    sign.add_argument("--algorithm", help="signature algorithm (default: the key's)")


def _sign(args: argparse.Namespace) -> int:
    signer = open_key(args, args.key, args.algorithm)
    signature = signer.sign(read_input(args.input))
    encoded = base64.b64encode(signature).decode()
    if args.out:
        write_bytes(args.out, signature, "signature file")
    data = {"ok": True, "key_id": signer.key_id, "algorithm": signer.algorithm.value, "signature": encoded}
    print_result(args, data, f"wrote {len(signature)}-byte signature to {args.out}" if args.out else encoded)
    return 0


def _register_verify(actions: Any) -> None:
    verify = action(actions, "verify", "verify a signature; exit 1 if it does not verify", _verify)
    target = verify.add_mutually_exclusive_group(required=True)
    target.add_argument("key", nargs="?", help="key URI or name (its public key is used)")
    target.add_argument("--pubkey", help="public key file: PEM, DER (raw or base64) or JWK (verify offline)")
    verify.add_argument("--signature", required=True, help="signature file (raw or base64), or base64 text")
    verify.add_argument("--in", dest="input", help="message file (default: standard input)")
    verify.add_argument("--algorithm", help="signature algorithm (default: the key's)")


def _verify(args: argparse.Namespace) -> int:
    if args.pubkey:
        public_key = read_public_key(args.pubkey)
        algorithm = SignatureAlgorithm.parse(args.algorithm) if args.algorithm else public_key.spec.default_algorithm
    else:
        signer = open_key(args, args.key, args.algorithm)
        public_key, algorithm = signer.public_key, signer.algorithm
    signature, message = read_signature(args.signature), read_input(args.input)
    public_key.verify(signature, message, algorithm)
    print_result(args, {"ok": True, "verified": True, "key_id": public_key.key_id, "algorithm": algorithm.value},
                 f"verified: {algorithm.value} signature by {public_key.key_id}")
    return 0


# The actions, in the order `keyplane keys --help` lists them.
_ACTIONS: tuple[Callable[[Any], None], ...] = (
    _register_create,
    register_import,
    _register_list,
    _register_delete,
    _register_pubkey,
    _register_sign,
    _register_verify,
)
