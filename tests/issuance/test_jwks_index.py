"""Key sets that cannot be turned against the verifier (throughput issue, item 3).

A kid-less token is tried against at most `max_kidless_keys` keys (default 1); a JWKS
given as a dict is cached, but a dict changed in place is never answered from the cache.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from signers.errors import ConfigError, TokenInvalid
from signers.jose import JWKS, as_jwks, sign_jwt, verify_jwt
from signers.keys import b64url_encode
from signers.signature_format import ecdsa_der_to_raw


def kidless(signer: Any, claims: dict[str, Any]) -> str:
    header = b64url_encode(json.dumps({"alg": "ES256"}).encode())
    body = b64url_encode(json.dumps(claims).encode())
    signature = ecdsa_der_to_raw(signer.sign(f"{header}.{body}".encode()), 32)
    return f"{header}.{body}.{b64url_encode(signature)}"


def test_kidless_token_is_never_tried_against_the_whole_set(keys: dict[str, Any]) -> None:
    claims = {"exp": int(time.time()) + 60}
    token = kidless(keys["p256"], claims)
    pair = JWKS.of(keys["other-agent"], keys["p256"])  # two P-256 keys: two candidates
    with pytest.raises(TokenInvalid, match="at most 1 are tried"):
        verify_jwt(token, pair)
    assert verify_jwt(token, pair, max_kidless_keys=2).kid == keys["p256"].key_id
    assert verify_jwt(token, JWKS.of(keys["ed25519"], keys["p256"])).claims == claims  # one candidate
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigError):
            verify_jwt(token, pair, max_kidless_keys=bad)


def test_a_dict_jwks_changed_in_place_is_not_served_from_the_cache(keys: dict[str, Any]) -> None:
    token = sign_jwt(keys["p256"], {"exp": int(time.time()) + 60})
    document = JWKS.of(keys["p256"], keys["ed25519"]).to_dict()
    assert as_jwks(document) is as_jwks(document)  # parsed once
    assert verify_jwt(token, document).kid == keys["p256"].key_id
    document["keys"] = [k for k in document["keys"] if k["kid"] != keys["p256"].key_id]  # the key is withdrawn
    with pytest.raises(TokenInvalid, match="not in the trusted key set"):
        verify_jwt(token, document)
    document["keys"][0]["kid"] = "renamed"
    assert "renamed" in as_jwks(document)


def test_json_text_and_thumbprint_lookup(keys: dict[str, Any]) -> None:
    text = JWKS.of(keys["p256"]).to_json()
    token = sign_jwt(keys["p256"], {"exp": int(time.time()) + 60})
    assert verify_jwt(token, text).kid == keys["p256"].key_id
    renamed = JWKS([j for j in (JWKS.of(keys["p256"]).get(keys["p256"].key_id),) if j is not None])
    assert renamed.by_thumbprint(keys["p256"].public_key.key_id)[0].kid == keys["p256"].key_id
    with pytest.raises(ConfigError):
        as_jwks("not json")
