"""A second process: obtains a passport over HTTP, verifies it with only a JWKSClient, then again offline.

Usage: python offline_verifier.py BASE_URL AGENT CALLER_TOKEN AGENT_JWK_JSON
Prints ``verified <sub> <kid>``, waits for a line on stdin (the test stops the service meanwhile),
then prints ``verified-offline <sub>`` (or ``refused <error>``) and exits.
"""

from __future__ import annotations

import json
import sys

import httpx

from signers.clients import JWKSClient
from signers.errors import KeyplaneError
from signers.passport import verify_passport


def main() -> int:
    base, agent, token, jwk = sys.argv[1:5]
    with httpx.Client(trust_env=False, timeout=20) as client:
        answer = client.post(base + "/v1/passports", json={"agent": agent, "agent_key": json.loads(jwk)},
                             headers={"authorization": f"Bearer {token}"})
    answer.raise_for_status()
    passport_token = answer.json()["token"]
    keys = JWKSClient(base + "/.well-known/jwks.json")  # the only thing this process trusts
    passport = verify_passport(passport_token, keys, issuer=base)
    print(f"verified {passport.sub} {passport.issuer_kid}", flush=True)
    sys.stdin.readline()
    try:
        again = verify_passport(passport_token, keys, issuer=base)
    except KeyplaneError as e:
        print(f"refused {type(e).__name__}: {e}", flush=True)
        return 1
    print(f"verified-offline {again.sub} fetches={keys.document.fetches}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
