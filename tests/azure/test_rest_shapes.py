"""The emulator's answers against the documented Key Vault keys REST shapes, operation by operation.

The shapes are those of the Key Vault REST reference (api-version 7.x / 2025-07-01:
KeyBundle, JsonWebKey, KeyAttributes, KeyItem, KeyListResult, DeletedKeyBundle,
KeyOperationResult, KeyVerifyResult, KeyVaultError) as azure-keyvault-keys' generated models
name them: every field the emulator sends must be a documented one, every required one must
be there, and every binary field must be unpadded base64url. Requests go through the real
SDK pipeline (`KeyClient.send_request`, so challenge auth is the SDK's own), except the
unauthenticated ones, which need a bare HTTPS client to see the 401 the SDK answers itself.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
import requests

from conformance.emulators.azure_keyvault import Handle

API = "2025-07-01"
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")  # unpadded base64url
VERSION = r"[0-9a-f]{32}"
RECOVERY_LEVELS = {"Purgeable", "Recoverable+Purgeable", "Recoverable", "Recoverable+ProtectedSubscription",
                   "CustomizedRecoverable+Purgeable", "CustomizedRecoverable",
                   "CustomizedRecoverable+ProtectedSubscription"}

# name -> (required fields, optional fields), from the REST reference.
SHAPES: dict[str, tuple[set[str], set[str]]] = {
    "KeyBundle": ({"key", "attributes"}, {"tags", "managed", "release_policy"}),
    "DeletedKeyBundle": ({"key", "attributes", "recoveryId", "deletedDate", "scheduledPurgeDate"},
                         {"tags", "managed", "release_policy"}),
    "JsonWebKey(EC)": ({"kid", "kty", "key_ops", "crv", "x", "y"}, set()),
    "JsonWebKey(RSA)": ({"kid", "kty", "key_ops", "n", "e"}, set()),
    "KeyAttributes": ({"enabled", "created", "updated", "recoveryLevel"},
                      {"nbf", "exp", "recoverableDays", "exportable", "hsmPlatform", "attestation"}),
    "KeyItem": ({"kid", "attributes"}, {"tags", "managed"}),
    "DeletedKeyItem": ({"kid", "attributes", "recoveryId", "deletedDate", "scheduledPurgeDate"}, {"tags", "managed"}),
    "KeyListResult": ({"value"}, {"nextLink"}),
    "KeyOperationResult": ({"kid", "value"}, {"iv", "tag", "aad"}),
    "KeyVerifyResult": ({"value"}, set()),
    "KeyVaultError": ({"error"}, set()),
    "KeyVaultError.error": ({"code", "message"}, {"innererror"}),
}


def shape(name: str, payload: Any) -> None:
    assert isinstance(payload, dict), f"{name} is not a JSON object"
    required, optional = SHAPES[name]
    missing = required - payload.keys()
    extra = payload.keys() - required - optional
    assert not missing, f"{name} lacks {sorted(missing)}"
    assert not extra, f"{name} has undocumented {sorted(extra)}"


def b64url(value: Any, length: int | None = None) -> bytes:
    assert isinstance(value, str) and B64URL.match(value), f"{value!r} is not unpadded base64url"
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if length is not None:
        assert len(raw) == length
    return raw


def attributes(payload: Any) -> None:
    shape("KeyAttributes", payload)
    assert isinstance(payload["enabled"], bool)
    for stamp in ("created", "updated", "nbf", "exp"):
        if stamp in payload:
            assert isinstance(payload[stamp], int) and payload[stamp] > 1_600_000_000  # unix seconds, UTC
    assert payload["recoveryLevel"] in RECOVERY_LEVELS
    if "recoverableDays" in payload:
        assert 7 <= payload["recoverableDays"] <= 90


def key_bundle(payload: Any, base: str, name: str, kind: str = "KeyBundle") -> str:
    """Checks a (Deleted)KeyBundle; returns the key version from its kid."""
    shape(kind, payload)
    jwk = payload["key"]
    kid = re.fullmatch(rf"{re.escape(base)}/keys/{re.escape(name)}/({VERSION})", jwk["kid"])
    assert kid, f"kid {jwk['kid']!r} is not https://VAULT/keys/NAME/VERSION"
    assert isinstance(jwk["key_ops"], list) and all(isinstance(op, str) for op in jwk["key_ops"])
    if jwk["kty"] in ("EC", "EC-HSM"):
        shape("JsonWebKey(EC)", jwk)
        size = {"P-256": 32, "P-384": 48, "P-521": 66, "P-256K": 32}[jwk["crv"]]
        b64url(jwk["x"], size)  # fixed-width coordinates
        b64url(jwk["y"], size)
    else:
        assert jwk["kty"] in ("RSA", "RSA-HSM")
        shape("JsonWebKey(RSA)", jwk)
        assert b64url(jwk["n"])[0] != 0  # minimal big-endian modulus
        assert jwk["e"] == "AQAB"
    attributes(payload["attributes"])
    return kid.group(1)


@pytest.fixture(scope="module")
def call(key_client: Any) -> Any:
    """(method, path, json) -> (status, payload): one request through the SDK's own pipeline."""
    from azure.core.rest import HttpRequest

    def send(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        separator = "&" if "?" in path else "?"
        response = key_client.send_request(HttpRequest(method, f"{path}{separator}api-version={API}", json=body))
        return response.status_code, (response.json() if response.content else None)

    return send


def test_create_get_and_versions(call: Any, azure_emulator: Handle, name: str) -> None:
    base = azure_emulator.url
    status, created = call("POST", f"/keys/{name}/create", {"kty": "EC", "crv": "P-256", "key_ops": ["sign", "verify"],
                                                             "tags": {"purpose": "test"}})
    assert status == 200
    version = key_bundle(created, base, name)
    assert created["key"]["key_ops"] == ["sign", "verify"] and created["tags"] == {"purpose": "test"}
    status, latest = call("GET", f"/keys/{name}/")  # the SDK's "latest version" form: an empty version segment
    assert status == 200 and key_bundle(latest, base, name) == version
    status, pinned = call("GET", f"/keys/{name}/{version}")
    assert status == 200 and pinned == latest
    status, rsa_key = call("POST", f"/keys/{name}-rsa/create", {"kty": "RSA", "key_size": 3072})
    assert status == 200
    key_bundle(rsa_key, base, f"{name}-rsa")
    assert len(b64url(rsa_key["key"]["n"])) == 384
    status, versions = call("GET", f"/keys/{name}/versions")
    assert status == 200
    shape("KeyListResult", versions)
    for item in versions["value"]:
        shape("KeyItem", item)
        assert re.fullmatch(rf"{re.escape(base)}/keys/{name}/{VERSION}", item["kid"])
        attributes(item["attributes"])


def test_list_keys_and_next_link(call: Any, azure_emulator: Handle, name: str) -> None:
    for i in range(3):
        assert call("POST", f"/keys/{name}-{i}/create", {"kty": "EC", "crv": "P-384"})[0] == 200
    status, page = call("GET", "/keys?maxresults=2")
    assert status == 200
    shape("KeyListResult", page)
    assert len(page["value"]) == 2
    assert page["nextLink"].startswith(f"{azure_emulator.url}/keys?") and "$skiptoken=" in page["nextLink"]
    for item in page["value"]:
        shape("KeyItem", item)
        assert re.fullmatch(rf"{re.escape(azure_emulator.url)}/keys/[0-9A-Za-z-]+", item["kid"])  # no version


@pytest.mark.parametrize(("kty", "param", "alg", "length"), [
    ("EC", {"crv": "P-256"}, "ES256", 64),
    ("EC", {"crv": "P-384"}, "ES384", 96),
    ("EC", {"crv": "P-256K"}, "ES256K", 64),
    ("RSA", {"key_size": 2048}, "PS256", 256),
    ("RSA", {"key_size": 2048}, "RS512", 256),
])
def test_sign_and_verify(call: Any, azure_emulator: Handle, name: str, kty: str, param: dict[str, Any], alg: str,
                         length: int) -> None:
    _, created = call("POST", f"/keys/{name}/create", {"kty": kty, **param})
    kid = created["key"]["kid"]
    version = kid.rsplit("/", 1)[1]
    digest_size = {"256": 32, "56K": 32, "384": 48, "512": 64}[alg[-3:]]
    digest = base64.urlsafe_b64encode(bytes(range(digest_size))).rstrip(b"=").decode()
    status, signed = call("POST", f"/keys/{name}/{version}/sign", {"alg": alg, "value": digest})
    assert status == 200
    shape("KeyOperationResult", signed)
    assert signed["kid"] == kid
    b64url(signed["value"], length)  # EC: raw r||s, fixed width
    status, verified = call("POST", f"/keys/{name}/{version}/verify", {"alg": alg, "digest": digest,
                                                                       "value": signed["value"]})
    assert status == 200
    shape("KeyVerifyResult", verified)
    assert verified["value"] is True
    flipped = bytearray(b64url(signed["value"]))
    flipped[-1] ^= 1
    bad = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
    assert call("POST", f"/keys/{name}/{version}/verify", {"alg": alg, "digest": digest, "value": bad})[1] == {
        "value": False
    }


def test_delete_deleted_purge(call: Any, azure_emulator: Handle, name: str) -> None:
    base = azure_emulator.url
    call("POST", f"/keys/{name}/create", {"kty": "RSA", "key_size": 2048})
    status, deleted = call("DELETE", f"/keys/{name}")
    assert status == 200
    key_bundle(deleted, base, name, "DeletedKeyBundle")
    assert deleted["recoveryId"] == f"{base}/deletedkeys/{name}"
    assert isinstance(deleted["deletedDate"], int) and deleted["scheduledPurgeDate"] > deleted["deletedDate"]
    status, again = call("GET", f"/deletedkeys/{name}")
    assert status == 200 and again == deleted
    status, listing = call("GET", "/deletedkeys")
    assert status == 200
    shape("KeyListResult", listing)
    for item in listing["value"]:
        shape("DeletedKeyItem", item)
    status, body = call("DELETE", f"/deletedkeys/{name}")
    assert (status, body) == (204, None)


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("GET", "/keys/no-such-key/", None, 404, "KeyNotFound"),
    ("GET", "/keys/no-such-key/0123456789abcdef0123456789abcdef", None, 404, "KeyNotFound"),
    ("DELETE", "/keys/no-such-key", None, 404, "KeyNotFound"),
    ("GET", "/deletedkeys/no-such-key", None, 404, "KeyNotFound"),
    ("POST", "/keys/bad_name/create", {"kty": "EC"}, 400, "BadParameter"),
    ("POST", "/keys/x/create", {"kty": "OKP", "crv": "Ed25519"}, 400, "BadParameter"),
])
def test_error_shape(call: Any, method: str, path: str, body: Any, status: int, code: str) -> None:
    got, payload = call(method, path, body)
    assert got == status
    shape("KeyVaultError", payload)
    shape("KeyVaultError.error", payload["error"])
    assert payload["error"]["code"] == code and payload["error"]["message"]


def test_sign_with_mismatched_algorithm_or_digest_is_400(call: Any, name: str) -> None:
    _, created = call("POST", f"/keys/{name}/create", {"kty": "EC", "crv": "P-256"})
    version = created["key"]["kid"].rsplit("/", 1)[1]
    short = base64.urlsafe_b64encode(b"\0" * 20).rstrip(b"=").decode()
    for alg, value in (("ES384", "A" * 64), ("ES256", short)):
        status, payload = call("POST", f"/keys/{name}/{version}/sign", {"alg": alg, "value": value})
        assert status == 400 and payload["error"]["code"] == "BadParameter"


def test_unauthenticated_request_gets_the_bearer_challenge(azure_emulator: Handle) -> None:
    url = f"{azure_emulator.url}/keys?api-version={API}"
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        response = requests.get(url, headers=headers, verify=azure_emulator.ca_pem_path, timeout=10)
        assert response.status_code == 401
        assert re.fullmatch(
            r'Bearer authorization="https://login\.microsoftonline\.com/[0-9a-f-]{36}", resource="https://vault\.azure\.net"',
            response.headers["WWW-Authenticate"],
        )
        shape("KeyVaultError", response.json())
        assert "wrong-token" not in response.text
    ok = requests.get(url, headers={"Authorization": f"Bearer {azure_emulator.token}"},
                      verify=azure_emulator.ca_pem_path, timeout=10)
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("application/json")


def test_missing_api_version_is_400(azure_emulator: Handle) -> None:
    response = requests.get(f"{azure_emulator.url}/keys", headers={"Authorization": f"Bearer {azure_emulator.token}"},
                            verify=azure_emulator.ca_pem_path, timeout=10)
    assert response.status_code == 400
    shape("KeyVaultError", response.json())


def test_throttled_answer_carries_retry_after(faults: Handle) -> None:
    faults.fail_next(429, count=1, retry_after=2)
    response = requests.get(f"{faults.url}/keys?api-version={API}",
                            headers={"Authorization": f"Bearer {faults.token}"}, verify=faults.ca_pem_path, timeout=10)
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    shape("KeyVaultError", response.json())
