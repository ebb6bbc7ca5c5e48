"""``keyplane emulator aws|azure|gcp --port N``: run an emulator in the foreground for users.

Each emulator module exposes ``serve_forever(host: str, port: int, **options) -> None``
that prints how to connect and blocks until interrupted; it is imported only when run.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

_EMULATORS = {
    "aws": "conformance.emulators.aws_kms",  # moto's server with AWS's documented Sign (needs moto[server])
    "azure": "conformance.emulators.azure_keyvault",
    "gcp": "conformance.emulators.gcp_kms",
}


def register(subparsers: Any) -> None:
    emulator = subparsers.add_parser("emulator", help="run a local AWS KMS, Azure Key Vault or Google Cloud KMS emulator")
    emulator.add_argument("service", choices=sorted(_EMULATORS))
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=0, help="port (default: a free one, printed at start)")
    emulator.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(_EMULATORS[args.service])
    module.serve_forever(args.host, args.port)
    return 0
