"""signers.clients against a real `keyplane serve`: caching, 304s, unknown kids, restarts, rotation.

The clients take a controllable clock, so "300 s later" is a number, not a sleep.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from signers.clients import (
    AsyncCRLClient,
    AsyncJWKSClient,
    AsyncRevocationListClient,
    CRLClient,
    JWKSClient,
    RevocationListClient,
)
from signers.errors import BackendUnavailable, TokenInvalid, TokenRevoked
from signers.jose import sign_jwt, verify_jwt
from signers.passport import verify_passport
from signers.x509 import CertificateAuthority, create_csr, to_pem

from .conftest import CODE, Deployment, _key_uri
from .harness import ServiceProcess, make_file_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _jwks_url(base: str) -> str:
    return base + "/.well-known/jwks.json"


def _issue(client: Any, agent: str, agent_signer: Any) -> str:
    answer = client.post("/v1/passports", json={"agent": agent, "agent_key": agent_signer.public_key.to_jwk()})
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def test_jwks_client_caches_honours_max_age_and_revalidates_with_304(deployment: Deployment) -> None:
    clock = Clock()
    keys = JWKSClient(_jwks_url(deployment.url), ttl=1000, min_interval=1, clock=clock)
    assert len(keys) == 2 and keys.document.fetches == 1
    assert keys.document.fresh_for == 300  # the server's max-age wins over a longer ttl
    clock.now += 299
    assert len(keys) == 2 and keys.document.fetches == 1  # still fresh: no request
    clock.now += 2
    assert len(keys) == 2 and keys.document.fetches == 2 and keys.document.not_modified == 1
    keys.close()


def test_a_flood_of_unknown_kids_costs_one_request_per_interval(deployment: Deployment, agent_signer: Any) -> None:
    clock = Clock()
    keys = JWKSClient(_jwks_url(deployment.url), ttl=300, min_interval=60, clock=clock)
    for _ in range(50):
        forged = sign_jwt(agent_signer, {"sub": "x", "exp": 2**31}, typ="JWT")
        with pytest.raises(TokenInvalid, match="not in the trusted key set"):
            verify_jwt(forged, keys, typ="JWT")
    assert keys.document.fetches == 1  # the set was fetched within the interval: no refresh at all, not 50
    clock.now += 61
    for _ in range(50):
        with pytest.raises(TokenInvalid):
            verify_jwt(sign_jwt(agent_signer, {"sub": "x", "exp": 2**31}, typ="JWT"), keys, typ="JWT")
    assert keys.document.fetches == 2  # one forced refresh in the next interval
    keys.close()


def test_revocation_list_and_crl_clients_follow_the_service(deployment: Deployment, agent_signer: Any) -> None:
    clock = Clock()
    keys = JWKSClient(_jwks_url(deployment.url))
    revocations = RevocationListClient(deployment.url + "/revocations.jwt", keys, issuer=deployment.url, ttl=30,
                                       min_interval=0, clock=clock)
    jti = str(uuid.uuid4())
    assert not revocations.is_revoked(jti)
    with deployment.client("revoker") as client:
        assert client.post("/v1/revocations", json={"kind": "jti", "id": jti}).status_code == 201
    assert not revocations.is_revoked(jti)  # still inside the client's ttl: the cached list answers
    clock.now += 31
    assert revocations.is_revoked(jti)
    number = revocations.document.current().number

    with deployment.client("operator") as client:
        pem = client.post("/v1/certificates", json={"csr": to_pem(create_csr(agent_signer, "CN=crl-client")).decode()})
    certificate = x509.load_pem_x509_certificate(pem.json()["certificate"].encode())
    crls = CRLClient(deployment.url + "/ca/crl", deployment.ca_certificate, min_interval=0)
    assert not crls.is_revoked(certificate)
    with deployment.client("revoker") as client:
        client.post("/v1/revocations", json={"kind": "x509", "id": format(certificate.serial_number, "x")})
    crls.refresh(force=True)
    assert crls.is_revoked(certificate)
    assert number is not None
    for client in (keys, revocations, crls):
        client.close()


def test_a_crl_from_another_ca_is_never_trusted(deployment: Deployment, agent_signer: Any) -> None:
    other = x509.load_pem_x509_certificate(to_pem(deployment.ca_certificate))
    crls = CRLClient(deployment.url + "/ca/crl", other, min_interval=0)
    assert crls.crl() is not None  # same CA: trusted
    foreign = CertificateAuthority.create_root(agent_signer, "CN=someone else").certificate
    mismatched = CRLClient(deployment.url + "/ca/crl", foreign, min_interval=0)
    with pytest.raises(BackendUnavailable, match="another CA"):
        mismatched.crl()


def test_async_clients(deployment: Deployment, agent_signer: Any) -> None:
    with deployment.client("operator") as client:
        client.post("/v1/agents", json={"agent": "async-agent", "code_hash": CODE})
    with deployment.client("issuer") as client:
        token = _issue(client, "async-agent", agent_signer)

    async def main() -> None:
        keys = AsyncJWKSClient(_jwks_url(deployment.url))
        lists = AsyncRevocationListClient(deployment.url + "/revocations.jwt", await keys.keys(), issuer=deployment.url)
        crls = AsyncCRLClient(deployment.url + "/ca/crl", deployment.ca_certificate)
        passport = verify_passport(token, await keys.keys_for(token), revocations=await lists.current())
        assert passport.sub == "async-agent"
        assert keys.document.fetches == 1
        assert (await crls.current()).issuer == deployment.ca_certificate.subject
        for client in (keys, lists, crls):
            await client.aclose()

    asyncio.run(main())


def test_jwks_client_across_restart_and_key_rotation(tmp_path: Path, agent_signer: Any) -> None:
    store = make_file_key(tmp_path / "keys", "key-a")
    make_file_key(tmp_path / "keys", "key-b")
    keys_toml = (f'[stores.files]\nuri = "{store}"\n[keys.a]\nstore = "files"\nname = "key-a"\n'
                 f'[keys.b]\nstore = "files"\nname = "key-b"\n')
    service = ServiceProcess(tmp_path, keys_toml)
    service.write(key="a")
    service.start()
    clock = Clock()
    keys = JWKSClient(_jwks_url(service.url), ttl=300, min_interval=0, hard_expiry=3600, clock=clock)
    try:
        with service.client("operator") as client:
            assert client.post("/v1/agents", json={"agent": "rotating", "code_hash": CODE}).status_code == 201
        with service.client("issuer") as client:
            token_a = _issue(client, "rotating", agent_signer)
        assert verify_passport(token_a, keys).sub == "rotating"

        service.stop()  # the service is down: the cached set keeps answering
        assert verify_passport(token_a, keys).sub == "rotating"
        clock.now += 301  # stale: the refresh fails, the cached set serves until its hard expiry
        assert verify_passport(token_a, keys).sub == "rotating"
        assert keys.document.last_error is not None
        clock.now += 3600
        with pytest.raises(BackendUnavailable, match="hard expiry"):
            verify_passport(token_a, keys)

        service.write(key="b", previous=[_key_uri(store, "key-a")])  # rotate: B signs, A still published
        service.start()
        with service.client("issuer") as client:
            token_b = _issue(client, "rotating", agent_signer)
        assert verify_passport(token_b, keys).sub == "rotating"  # recovered, then B found
        fetched = keys.document.fetches
        assert verify_passport(token_a, keys).sub == "rotating"  # the old key's tokens still verify
        assert keys.document.fetches == fetched

        service.stop()
        service.write(key="b")  # A dropped
        service.start()
        clock.now += 301
        with pytest.raises(TokenInvalid, match="not in the trusted key set"):
            verify_passport(token_a, keys)
        assert verify_passport(token_b, keys).sub == "rotating"
        revocations = RevocationListClient(service.url + "/revocations.jwt", keys, issuer=service.url, min_interval=0)
        assert verify_passport(token_b, keys, revocations=revocations).sub == "rotating"
        with service.client("revoker") as client:
            jti = verify_passport(token_b, keys).jti
            assert client.post("/v1/revocations", json={"kind": "jti", "id": jti}).status_code == 201
        revocations.refresh(force=True)
        service.stop()  # offline from here: the fetched keys and list answer
        with pytest.raises(TokenRevoked):
            verify_passport(token_b, keys, revocations=revocations)
    finally:
        service.stop()
        keys.close()
