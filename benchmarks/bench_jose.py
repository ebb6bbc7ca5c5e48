"""JWT verification against key sets of 1 / 10 / 100 / 1000 keys, with and without ``kid``.

A token without ``kid`` used to be tried against every key of the set (1000 keys: ~600x
the kid path), and a JWKS given as a dict was re-parsed on every call: an attacker chose
the slow path. Now a set is indexed once (kid, thumbprint), a dict / JSON set is cached by
content, and a kid-less token is tried against at most `max_kidless_keys` keys (default 1,
so with more than one candidate it is refused at once).

Prints one table; ratios are against a raw `cryptography` ECDSA verify measured in the
same run. Run: python benchmarks/bench_jose.py [seconds-per-cell]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from signers import PublicKey, SignatureAlgorithm, TokenInvalid
from signers.jose import JWKS, sign_jwt, verify_jwt
from signers.keys import b64url_encode
from signers.signature_format import ecdsa_der_to_raw

SIZES = (1, 10, 100, 1000)


class LocalSigner:
    """The smallest Signer: a local P-256 key (the benchmark measures verification only)."""

    algorithm = SignatureAlgorithm.ES256

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = PublicKey(self._key.public_key())
        self.key_id = self.public_key.key_id
        self.uri = "local:bench"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


def per_call_us(fn: Callable[[], Any], seconds: float) -> float:
    fn()  # warm up: the first call against a dict parses it (later calls hit the cache)
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls * 1e6


def refused(fn: Callable[[], Any]) -> Callable[[], None]:
    def call() -> None:
        with contextlib.suppress(TokenInvalid):
            fn()
    return call


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.3
    signer = LocalSigner()
    claims = {"sub": "bench", "exp": int(time.time()) + 3600}
    token = sign_jwt(signer, claims)
    header, payload, _signature = token.split(".")
    kidless_header = b64url_encode(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    kidless_input = f"{kidless_header}.{payload}".encode()
    # The same claims under a header without kid: what an attacker sends to pick the slow path.
    kidless = f"{kidless_header}.{payload}.{b64url_encode(ecdsa_der_to_raw(signer.sign(kidless_input), 32))}"
    raw_message = f"{header}.{payload}".encode()
    raw_der = signer.sign(raw_message)
    raw_key = signer.public_key.key
    raw = per_call_us(lambda: raw_key.verify(raw_der, raw_message, ec.ECDSA(hashes.SHA256())), seconds)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"raw cryptography ECDSA P-256 verify: {raw:.1f} us (load average {load:.2f})\n")
    print(f"{'keys':>5} | {'kid':>9} | {'dict, kid':>9} | {'no kid (default limit 1)':>25} | {'no kid, opt-in all':>18}")
    print("-" * 80)
    for size in SIZES:
        others = [PublicKey(ec.generate_private_key(ec.SECP256R1()).public_key()) for _ in range(size - 1)]
        jwks = JWKS.of(*others, signer)
        as_dict = jwks.to_dict()
        kid = per_call_us(lambda: verify_jwt(token, jwks), seconds)  # noqa: B023
        dict_kid = per_call_us(lambda: verify_jwt(token, as_dict), seconds)  # noqa: B023
        default = per_call_us(refused(lambda: verify_jwt(kidless, jwks)), seconds)  # noqa: B023
        opt_in = per_call_us(lambda: verify_jwt(kidless, jwks, max_kidless_keys=size), seconds)  # noqa: B023
        print(f"{size:>5} | {kid:>6.0f} us | {dict_kid:>6.0f} us | {default:>9.0f} us ({default / kid:>4.2f}x kid) "
              f"| {opt_in:>8.0f} us ({opt_in / kid:>5.1f}x)")
    print(f"\nkid path vs raw verify at 1 key: see the first row ({raw:.0f} us raw).")


if __name__ == "__main__":
    main()
