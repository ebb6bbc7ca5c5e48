"""``keyplane keys import NAME --from FILE [--format pem|der|jwk|seed] [--store URI] [--spec SPEC]``.

Bring your own key: the file is read with `signers.key_import.load_private_key` and stored
with the store's `import_key` (file store, Vault / OpenBao Transit, AWS KMS where the
service allows it). A store without import is a clear AlgorithmNotSupported.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import AlgorithmNotSupported, ConfigError
from ..secrets import resolve_secret
from ..signer import ImportingKeyStore
from .common import action, open_store, print_result, store_argument

__all__ = ["register_import"]

MAX_KEY_FILE = 1 << 20


def register_import(sub: Any) -> None:
    """Add ``import`` to the ``keys`` sub-commands."""
    imp = action(sub, "import", "import an existing private key into a store (BYOK)", _import)
    imp.add_argument("name", help="name of the new key in the store")
    imp.add_argument("--from", dest="source", required=True, metavar="FILE",
                     help="the private key: PKCS#8 PEM/DER (optionally encrypted), a private JWK, or a 32-byte seed")
    imp.add_argument("--format", choices=("pem", "der", "jwk", "seed"),
                     help="the file's format (default: detected; a raw seed needs --spec)")
    imp.add_argument("--spec", help="ML-DSA-44/65/87 or Ed25519 for a raw seed; otherwise checked against the key")
    imp.add_argument("--password-source", metavar="env:NAME|file:PATH", help="password of an encrypted PKCS#8 file")
    imp.add_argument("--store", help="store URI or name (default: $KEYPLANE_STORE)")
    imp.add_argument("--algorithm", help="signature algorithm (default: the spec's)")


def _import(args: argparse.Namespace) -> int:
    from signers.key_import import load_private_key  # lazy: keep `keyplane --help` from loading the key loaders

    path = Path(args.source)
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise ConfigError(f"{path} is larger than any private key file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist") from None
    except OSError as e:
        raise ConfigError(f"cannot read key file {path}: {e.strerror}") from e
    password = None
    if args.password_source:
        password = resolve_secret(args.password_source, "--password-source").reveal().encode("utf-8")
    key = load_private_key(data, args.format, password=password, spec=args.spec)
    with open_store(args, store_argument(args.store)) as store:
        if not isinstance(store, ImportingKeyStore):
            raise AlgorithmNotSupported(f"the store {store.uri} does not import keys")
        signer = store.import_key(args.name, key, args.algorithm)
        data_out = {"ok": True, "uri": signer.uri, "key_id": signer.key_id, "spec": signer.public_key.spec.value,
                    "algorithm": signer.algorithm.value}
        print_result(args, data_out, f"imported {args.name}: {signer.public_key.spec.value} {signer.algorithm.value}\n"
                                     f"  uri    {signer.uri}\n  key_id {signer.key_id}")
    return 0
