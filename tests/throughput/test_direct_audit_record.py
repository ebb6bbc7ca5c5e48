"""An audit record written in one pass is `_new_record` + `stored_json`, byte for byte.

`audit_log._direct_record` writes the record's RFC 8785 body (whose SHA-256 is the
record_hash) and its stored form from the fields, with one JSON encoding of the context;
`_new_record` and `stored_json` are the general path. Here the two give the same hash, the
same record and the same stored text, for JSONL (UTF-8) and SQLite (ASCII) storage, over
awkward strings, nested contexts, a null message hash and sealed checkpoints; and fields
the direct writer must not handle are declined (None), so the general path decides. A
member out of order, an escape that differs or a context walked at the wrong depth fails here.
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from signers.audit import verify_chain
from signers.tokens.audit import JsonlAuditLog, SQLiteAuditLog
from signers.tokens.audit_commit import stored_json
from signers.tokens.audit_log import GENESIS, _direct_record, _new_record

_BASE: dict[str, typing.Any] = {"ts": "2026-12-01T00:00:00.000000Z", "kind": "signature", "key_id": "k" * 43,
                                "alg": "ES256", "message_sha256": "0" * 64,
                                "context": {"caller": "issuer", "op": "issue-passport"}}


def _deep(levels: int) -> dict[str, typing.Any]:
    value: dict[str, typing.Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"n": value}
    return value


_AWKWARD = ['quo"te', "back\\slash", "ctl\x00\x1f\x7f", "tab\tnl\n", "ünïcødé", "emoji \U0001f511", "\u2028", "</x>"]
_CASES: dict[str, dict[str, typing.Any]] = {
    "plain": _BASE,
    "null message hash": {**_BASE, "message_sha256": None},
    "empty context": {**_BASE, "context": {}},
    "nested context": {**_BASE, "context": {"z": [1, True, None, {"b": "x", "a": [-(2**53) + 1, 2**53 - 1]}], "a": {}}},
    "context 30 deep": {**_BASE, "context": _deep(30)},
    "context 31 deep": {**_BASE, "context": _deep(31)},
    "extra field ignored": {**_BASE, "extra": "x", "seq": 99, "prev_hash": "f" * 64},
    **{f"awkward {i}": {**_BASE, "kind": text, "key_id": text, "ts": text, "context": {"t": text, "k": [text]}}
       for i, text in enumerate(_AWKWARD)},
}


def _seal(payload: typing.Mapping[str, typing.Any]) -> str:
    return f"sig.{payload['log']}.{payload['seq']}.{payload['head']}"


@pytest.mark.parametrize("sealed", [False, True], ids=["record", "checkpoint"])
@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["jsonl", "sqlite"])
@pytest.mark.parametrize("case", list(_CASES))
def test_the_direct_record_is_the_general_one(case: str, ensure_ascii: bool, sealed: bool) -> None:
    fields = _CASES[case]
    seal = _seal if sealed else None
    general = _new_record(fields, 7, "a" * 64, "b" * 64, seal)
    text = stored_json(general.to_dict(), ensure_ascii=ensure_ascii)
    direct = _direct_record(fields, 7, "a" * 64, "b" * 64, seal, ensure_ascii)
    escaped = ensure_ascii and text != stored_json(general.to_dict(), ensure_ascii=False)
    if escaped or case == "context 31 deep":
        assert direct is None  # SQLite's escaped storage of a non-ASCII / DEL record; record_json's depth bound
        return
    assert direct is not None
    record, direct_text = direct
    assert record == general
    assert record.computed_hash() == record.record_hash
    assert direct_text == text


@pytest.mark.parametrize("fields", [
    {**_BASE, "ts": 5}, {**_BASE, "message_sha256": b"x"}, {**_BASE, "context": {"f": 1.5}},
    {**_BASE, "context": {"ü": 1}}, {**_BASE, "context": [1]}, {**_BASE, "context": {"big": 2**53}},
    {**_BASE, "kind": "lone \ud800"}, {k: v for k, v in _BASE.items() if k != "alg"},
], ids=["ts int", "message bytes", "float in context", "non-ASCII key", "context list", "unsafe int",
        "lone surrogate", "missing alg"])
def test_what_the_direct_writer_declines(fields: dict[str, typing.Any]) -> None:
    assert _direct_record(fields, 1, GENESIS, None, None, False) is None


def test_a_seal_is_called_once_even_when_its_signature_is_stored_the_general_way() -> None:
    calls: list[typing.Any] = []

    def seal(payload: typing.Mapping[str, typing.Any]) -> str:
        calls.append(payload)
        return "sïg"  # non-ASCII: SQLite stores it escaped, by stored_json

    direct = _direct_record(_BASE, 1, GENESIS, None, seal, True)
    assert direct is not None and len(calls) == 1
    record, text = direct
    assert text == stored_json(record.to_dict(), ensure_ascii=True)


@pytest.mark.parametrize("name", ["audit.jsonl", "audit.db"])
def test_logs_written_directly_verify(tmp_path: Path, name: str) -> None:
    log = JsonlAuditLog(tmp_path / name) if name.endswith(".jsonl") else SQLiteAuditLog(tmp_path / name)
    for case in _CASES.values():
        log.append({**case, "kind": "signature"})  # awkward strings elsewhere; a kind the verifier knows
    log.append(_BASE, _seal)
    log.append({**_BASE, "context": {"f": 0.5}})  # a general-path record in the same chain
    stored = [text for _, text in log.raw_records()]
    assert len(stored) == len(_CASES) + 2
    records = list(log.records())
    assert all(r.computed_hash() == r.record_hash for r in records)
    assert [r.prev_hash for r in records[1:]] == [r.record_hash for r in records[:-1]]
    log.close()
    assert verify_chain(tmp_path / name).ok
