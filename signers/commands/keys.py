"""``keyplane keys create|import|list|pubkey|sign|verify`` (import lives in `keys_import`)."""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from .io import default_store, read_input, read_signature
from .keys_import import register_import

__all__ = ["register"]


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="create, list and use keys in any store")
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = sub.add_parser("create", help="create a key in a store")
    create.add_argument("name")
    create.add_argument("--spec", default="Ed25519", help="Ed25519, P-256, P-384, secp256k1, RSA-2048/3072/4096, ML-DSA-44/65/87")
    create.add_argument("--store", help="store URI or name (default: $KEYPLANE_STORE)")
    create.add_argument("--algorithm", help="signature algorithm (default: the spec's)")
    create.set_defaults(func=_create)

    register_import(sub)

    lst = sub.add_parser("list", help="list the keys in a store")
    lst.add_argument("--store", help="store URI or name (default: $KEYPLANE_STORE)")
    lst.set_defaults(func=_list)

    pub = sub.add_parser("pubkey", help="print a key's public key")
    pub.add_argument("key", help="key URI or name from keyplane.toml")
    pub.add_argument("--format", choices=("pem", "jwk", "der"), default="pem")
    pub.set_defaults(func=_pubkey)

    sign = sub.add_parser("sign", help="sign a file (or standard input)")
    sign.add_argument("key", help="key URI or name from keyplane.toml")
    sign.add_argument("--in", dest="input", help="message file (default: standard input)")
    sign.add_argument("--out", help="write the raw signature here instead of printing base64")
    sign.add_argument("--algorithm", help="signature algorithm (default: the key's)")
    sign.set_defaults(func=_sign)

    verify = sub.add_parser("verify", help="verify a signature; exit 1 if it does not verify")
    target = verify.add_mutually_exclusive_group(required=True)
    target.add_argument("key", nargs="?", help="key URI or name (its public key is used)")
    target.add_argument("--pubkey", help="public key file: PEM or JWK (verify offline)")
    verify.add_argument("--signature", required=True, help="signature file or base64")
    verify.add_argument("--in", dest="input", help="message file (default: standard input)")
    verify.add_argument("--algorithm", help="signature algorithm (default: the key's)")
    verify.set_defaults(func=_verify)


def _create(args: argparse.Namespace) -> int:
    import signers
    from signers.cli import print_result

    with signers.open_store(default_store(args.store)) as store:
        signer = store.create_key(args.name, signers.KeySpec.parse(args.spec), algorithm=args.algorithm)
        data = {"ok": True, "uri": signer.uri, "key_id": signer.key_id, "spec": signer.public_key.spec.value,
                "algorithm": signer.algorithm.value}
        print_result(args, data, f"created {args.name}: {signer.public_key.spec.value} {signer.algorithm.value}\n"
                                 f"  uri    {signer.uri}\n  key_id {signer.key_id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    import signers
    from signers.cli import print_result

    with signers.open_store(default_store(args.store)) as store:
        infos = list(store.list_keys())
    data = {"ok": True, "keys": [{"name": i.name, "uri": i.uri, "spec": i.spec.value if i.spec else None,
                                  "key_id": i.key_id, "version": i.version, "enabled": i.enabled} for i in infos]}
    lines = [f"{i.name}\t{i.spec.value if i.spec else '-'}\t{i.uri}" for i in infos] or ["(no keys)"]
    print_result(args, data, lines)
    return 0


def _pubkey(args: argparse.Namespace) -> int:
    import signers
    from signers.cli import print_result

    signer = signers.open(args.key)
    pk = signer.public_key
    if args.format == "jwk":
        text = json.dumps(pk.to_jwk(alg=signer.algorithm), indent=2)
    elif args.format == "der":
        text = base64.b64encode(pk.to_der()).decode()
    else:
        text = pk.to_pem().rstrip()
    print_result(args, {"ok": True, "key_id": pk.key_id, "jwk": pk.to_jwk(alg=signer.algorithm), "pem": pk.to_pem()}, text)
    return 0


def _sign(args: argparse.Namespace) -> int:
    import signers
    from signers.cli import print_result

    signer = signers.open(args.key, args.algorithm)
    signature = signer.sign(read_input(args.input))
    encoded = base64.b64encode(signature).decode()
    if args.out:
        Path(args.out).write_bytes(signature)
    data = {"ok": True, "key_id": signer.key_id, "algorithm": signer.algorithm.value, "signature": encoded}
    print_result(args, data, f"wrote {len(signature)}-byte signature to {args.out}" if args.out else encoded)
    return 0


def _verify(args: argparse.Namespace) -> int:
    import signers
    from signers.cli import print_result

    if args.pubkey:
        text = Path(args.pubkey).read_text(encoding="utf-8")
        public_key = signers.PublicKey.from_jwk(text) if text.lstrip().startswith("{") else signers.PublicKey.from_pem(text)
        algorithm = signers.SignatureAlgorithm.parse(args.algorithm) if args.algorithm else public_key.spec.default_algorithm
    else:
        signer = signers.open(args.key, args.algorithm)
        public_key, algorithm = signer.public_key, signer.algorithm
    public_key.verify(read_signature(args.signature), read_input(args.input), algorithm)
    print_result(args, {"ok": True, "verified": True, "key_id": public_key.key_id, "algorithm": algorithm.value},
                 f"verified: {algorithm.value} signature by {public_key.key_id}")
    return 0
