"""Token Status List: the draft's own examples, a second implementation, and offline refusal.

Expected values below are the test vectors printed in draft-ietf-oauth-status-list
(sections "Compressed Byte Array", "Status List in JSON Format" and "Test vectors for
Status List encoding"); the second implementation is PyPI's `token-status-list`.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from pathlib import Path

import pytest
import token_status_list as other

import signers
from signers.algorithms import KeySpec
from signers.errors import ConfigError, TokenExpired, TokenInvalid, TokenRevoked
from signers.jose import JWKS, sign_jwt
from signers.passport import code_hash_of, issue_passport, verify_passport
from signers.status_list import (
    INVALID,
    MAX_LIST_BYTES,
    STATUS_LIST_TYP,
    SUSPENDED,
    StatusList,
    StatusListCache,
    check_status,
    issue_status_list,
    status_claim,
)

URI = "https://issuer.example/statuslists/1"
# draft: 16 entries, bits 1 -> bytes b9 a3 -> lst; 12 entries, bits 2 -> bytes c9 44 f9 -> lst
ONE_BIT = ([1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1], "eNrbuRgAAhcBXQ", bytes([0xB9, 0xA3]))
TWO_BIT = ([1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3], "eNo76fITAAPfAgc", bytes([0xC9, 0x44, 0xF9]))
# draft test vectors: 2^20 entries, these indices set
LONG_ONE_BIT = {0: 1, 1993: 1, 25460: 1, 159495: 1, 495669: 1, 554353: 1, 645645: 1, 723232: 1, 854545: 1,
                934534: 1, 1000345: 1}
LONG_ONE_BIT_LST = ("eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogEAAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAA"
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAAA7KpLAAAAAAAAAAAAAAAAAAAA"
                    "AJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAAACAZC8L2AEb")
LONG_TWO_BIT = {0: 1, 1993: 2, 25460: 1, 159495: 3, 495669: 1, 554353: 1, 645645: 2, 723232: 1, 854545: 1,
                934534: 2, 1000345: 3}
LONG_TWO_BIT_LST = ("eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGVIAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEB5"
                    "WwIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                    "AAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAAAAAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIA"
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9SwIAAAAAAAAAAAAAAAAAAACoYUoA"
                    "AAAAAAAAAAAAAEBqH81gAQw")


@pytest.mark.parametrize(("statuses", "lst", "raw"), [ONE_BIT, TWO_BIT], ids=["1-bit", "2-bit"])
def test_the_drafts_byte_array_examples(statuses: list[int], lst: str, raw: bytes) -> None:
    bits = 1 if lst == ONE_BIT[1] else 2
    ours = StatusList(len(statuses), bits)
    for i, value in enumerate(statuses):
        ours.set(i, value)
    encoded = ours.to_json()
    assert zlib.decompress(base64.urlsafe_b64decode(encoded["lst"] + "==")) == raw
    assert encoded == {"bits": bits, "lst": lst}  # the same bytes, compressed at level 9 as the draft does
    decoded = StatusList.from_json({"bits": bits, "lst": lst})
    assert [decoded.get(i) for i in range(len(statuses))] == statuses


@pytest.mark.parametrize(("bits", "expected", "lst"), [(1, LONG_ONE_BIT, LONG_ONE_BIT_LST),
                                                         (2, LONG_TWO_BIT, LONG_TWO_BIT_LST)], ids=["1-bit", "2-bit"])
def test_the_drafts_long_test_vectors(bits: int, expected: dict[int, int], lst: str) -> None:
    decoded = StatusList.from_json({"bits": bits, "lst": lst})
    assert decoded.size == 1 << 20
    assert {i: decoded.get(i) for i in expected} == expected
    assert sum(decoded.get(i) != 0 for i in range(decoded.size)) == len(expected)
    ours = StatusList(1 << 20, bits)
    for i, value in expected.items():
        ours.set(i, value)
    assert StatusList.from_json(ours.to_json()).get(1000345) == expected[1000345]


def test_a_second_implementation_reads_ours_and_we_read_its() -> None:
    ours = StatusList(4096, 2)
    for i in (0, 7, 1000, 4095):
        ours.set(i, SUSPENDED if i % 2 else INVALID)
    theirs = other.BitArray.from_b64(2, ours.to_json()["lst"])
    assert [theirs[i] for i in (0, 7, 1000, 4095, 5)] == [INVALID, SUSPENDED, INVALID, SUSPENDED, 0]
    made = other.BitArray.of_size(1, 64)
    made[3] = 1
    made[60] = 1
    back = StatusList.from_json({"bits": 1, "lst": made.to_b64()})
    assert [i for i in range(64) if back.get(i)] == [3, 60]


@pytest.mark.parametrize("bad", [
    {"bits": 3, "lst": "eNrbuRgAAhcBXQ"}, {"bits": 1}, {"bits": 1, "lst": "!!!"}, {"bits": 1, "lst": "eNrbuRgAAh"},
    {"bits": 1, "lst": base64.urlsafe_b64encode(zlib.compress(b"")).decode()}, "not an object",
])
def test_malformed_lists_are_token_invalid(bad: object) -> None:
    with pytest.raises(TokenInvalid):
        StatusList.from_json(bad)


def test_a_decompression_bomb_is_refused() -> None:
    bomb = base64.urlsafe_b64encode(zlib.compress(bytes(MAX_LIST_BYTES + 1024), 9)).decode()
    with pytest.raises(TokenInvalid, match="more than"):
        StatusList.from_json({"bits": 1, "lst": bomb})


def test_values_and_indices_are_checked() -> None:
    statuses = StatusList(8, 1)
    with pytest.raises(ConfigError):
        statuses.set(0, 2)  # does not fit in 1 bit
    with pytest.raises(TokenInvalid, match="out of range"):
        statuses.get(8)


@pytest.fixture
def issuer(file_store_uri: str) -> signers.Signer:
    with signers.open_store(file_store_uri) as store:
        return store.create_key("status-issuer", KeySpec.ED25519)


def _passport(issuer: signers.Signer, index: int) -> str:
    with signers.open_store(issuer.uri.rsplit("/", 1)[0] + "?" + issuer.uri.split("?", 1)[1]) as store:
        agent = store.create_key(f"agent-{index}", KeySpec.ED25519)
    return issue_passport(issuer, sub=f"agent:{index}", name="agent", agent_key=agent.public_key,
                          code_hash=code_hash_of(b"agent code"), stage="production", trust_score=80,
                          extra_claims={"status": status_claim(index, URI)})


def test_offline_verifier_refuses_a_revoked_passport(issuer: signers.Signer, tmp_path: Path) -> None:
    """Must show: only the JWKS and a fetched status list, and the revoked passport is refused."""
    statuses = StatusList(1024, 1)
    published = tmp_path / "statuslist.jwt"
    published.write_text(issue_status_list(issuer, statuses, uri=URI, ttl=1, now=time.time() - 5))
    JWKS.of(issuer).write(tmp_path / "jwks.json")
    token = _passport(issuer, 42)

    jwks = JWKS.load(tmp_path / "jwks.json")  # the verifier's whole world: two files
    lists = StatusListCache(jwks, lambda uri: published.read_text())
    passport = verify_passport(token, jwks)
    assert check_status(passport.claims, lists) == 0

    statuses.set(42, INVALID)  # the issuer revokes and republishes
    published.write_text(issue_status_list(issuer, statuses, uri=URI, ttl=1))
    lists = StatusListCache(jwks, lambda uri: published.read_text())
    with pytest.raises(TokenRevoked, match="INVALID"):
        check_status(verify_passport(token, jwks).claims, lists)


def test_status_list_tokens_are_checked_as_the_draft_says(issuer: signers.Signer, file_store_uri: str) -> None:
    jwks = JWKS.of(issuer)
    good = issue_status_list(issuer, StatusList(8), uri=URI)
    assert json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))["typ"] == STATUS_LIST_TYP
    lists = StatusListCache(jwks, lambda uri: good)
    assert lists.get(URI).statuses.size == 8
    with pytest.raises(TokenInvalid, match="subject"):  # sub is not the token's uri
        StatusListCache(jwks, lambda uri: good).get("https://issuer.example/statuslists/2")
    expired = issue_status_list(issuer, StatusList(8), uri=URI, lifetime=1, now=time.time() - 100)
    with pytest.raises(TokenExpired):
        StatusListCache(jwks, lambda uri: expired).get(URI)
    with signers.open_store(file_store_uri) as store:
        stranger = store.create_key("stranger", KeySpec.ED25519)
    unknown = issue_status_list(stranger, StatusList(8), uri=URI)
    with pytest.raises(TokenInvalid):
        StatusListCache(jwks, lambda uri: unknown).get(URI)
    plain_jwt = sign_jwt(issuer, {"sub": URI, "iat": int(time.time()), "exp": int(time.time()) + 60,
                                  "status_list": StatusList(8).to_json()})
    with pytest.raises(TokenInvalid):  # typ must be statuslist+jwt
        StatusListCache(jwks, lambda uri: plain_jwt).get(URI)


def test_an_older_list_is_refused_as_a_replay(issuer: signers.Signer) -> None:
    jwks = JWKS.of(issuer)
    newer = issue_status_list(issuer, StatusList(8), uri=URI, now=time.time())
    older = issue_status_list(issuer, StatusList(8), uri=URI, now=time.time() - 600)
    lists = StatusListCache(jwks, lambda uri: newer)
    lists.add(newer, URI)
    with pytest.raises(TokenInvalid, match="replayed"):
        lists.add(older, URI)


def test_a_token_without_a_status_claim_is_refused(issuer: signers.Signer) -> None:
    lists = StatusListCache(JWKS.of(issuer), lambda uri: "")
    for claims in ({}, {"status": {}}, {"status": {"status_list": {"idx": -1, "uri": URI}}},
                   {"status": {"status_list": {"idx": True, "uri": URI}}}):
        with pytest.raises(TokenInvalid):
            check_status(claims, lists)


def test_a_failed_fetch_with_nothing_held_is_a_refusal(issuer: signers.Signer) -> None:
    def down(uri: str) -> str:
        raise OSError("connection refused")

    with pytest.raises(TokenInvalid, match="fetching it failed"):
        StatusListCache(JWKS.of(issuer), down).get(URI)
