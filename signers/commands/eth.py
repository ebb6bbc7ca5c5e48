"""``keyplane eth address|sign-typed-data|x402-pay``: Ethereum with a key in any back end.

`signers.eth` and the token layer are imported inside the handlers (and the [eth] and
[x402] extras only when a signature or payment needs them), so ``keyplane --help`` stays
fast and works without them.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from typing import Any

from ..errors import ConfigError
from ..sdk import require
from .common import action, command_group, key_argument, open_key, print_result
from .io import read_input, read_text, read_token

__all__ = ["register"]


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "eth", "Ethereum addresses, EIP-712 signatures and x402 payments")

    address = action(sub, "address", "the Ethereum address of a secp256k1 key", _address)
    key_argument(address)

    typed = action(sub, "sign-typed-data", "sign EIP-712 typed data (JSON: types, primaryType, domain, message)",
                   _sign_typed_data)
    key_argument(typed)
    typed.add_argument("--in", dest="input", help="typed-data JSON file (default: standard input)")

    pay = action(sub, "x402-pay", "answer an HTTP 402 (x402 exact scheme): print the PAYMENT-SIGNATURE header",
                 _x402_pay)
    key_argument(pay)
    pay.add_argument("--required", required=True,
                     help="the server's PaymentRequired: a JSON file, or a file holding the base64 PAYMENT-REQUIRED header")
    pay.add_argument("--passport", help="the agent's passport (file): its wallet and spend_limit are enforced")
    pay.add_argument("--jwks", help="the passport issuer's JWKS file (required with --passport)")


def _signer(args: argparse.Namespace) -> Any:
    # lazy: signers.eth (10 ms, and the [eth] extra when it signs) loads only for `eth` commands
    from signers.eth import EthSigner

    return EthSigner(open_key(args, args.key))


def _json_file(path: str | None, what: str) -> Any:
    data = read_input(path)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{what} is not JSON: {type(e).__name__}") from e


def _address(args: argparse.Namespace) -> int:
    eth = _signer(args)
    print_result(args, {"ok": True, "address": eth.address, "key_id": eth.signer.key_id}, eth.address)
    return 0


def _sign_typed_data(args: argparse.Namespace) -> int:
    eth = _signer(args)
    typed = _json_file(args.input, "the typed data")
    signature = "0x" + eth.sign_typed_data(typed).hex()
    print_result(args, {"ok": True, "address": eth.address, "signature": signature}, signature)
    return 0


def _payment_required(path: str) -> Any:
    schemas = require("x402.schemas", "x402", "x402 payments")
    text = read_input(path).strip()
    try:
        data = json.loads(text) if text.startswith(b"{") else json.loads(base64.b64decode(text, validate=True))
        return schemas.PaymentRequired.model_validate(data)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ConfigError(f"--required is not a PaymentRequired (JSON or base64 header): {type(e).__name__}") from e


def _x402_pay(args: argparse.Namespace) -> int:
    # lazy: signers.eth and the token layer (rfc8785, sqlite3) load only for a payment
    from signers.eth.x402 import pay
    from signers.jose import JWKS
    from signers.passport import verify_passport

    claims = None
    if args.passport:
        if not args.jwks:
            raise ConfigError("--passport needs --jwks (the issuer's JWKS file) to verify it")
        token = read_token(args.passport, "passport")
        claims = verify_passport(token, JWKS.from_dict(read_text(args.jwks, "JWKS file"))).claims
    eth = _signer(args)
    payload = pay(eth, _payment_required(args.required), passport_claims=claims)
    header = base64.b64encode(payload.model_dump_json(by_alias=True, exclude_none=True).encode()).decode()
    print_result(args, {"ok": True, "address": eth.address, "header": "PAYMENT-SIGNATURE", "value": header}, header)
    return 0
