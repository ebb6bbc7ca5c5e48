"""The JSON log line: the same timestamp text as `datetime.isoformat`, and no token ever in it.

`JsonFormatter` reuses the text of the current second and skips the JWS pattern when a value
holds no ``ey``; these hold both shortcuts to the long way (tests/server/test_api.py checks a
real service's log for secrets).
"""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime

import pytest

from signers.server.logs import JsonFormatter, _timestamp, scrub

TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


def test_timestamps_are_isoformat_to_the_millisecond() -> None:
    chooser = random.Random(21)
    samples = [0.0, 0.0005, 0.9995, 0.9999995, 1.0000005, 1_800_000_000.4995, 4_102_444_799.9999996]
    samples += [chooser.uniform(0, 4.1e9) for _ in range(20_000)]
    samples += [chooser.randrange(4_100_000_000) + chooser.randrange(1_000_000) / 1e6 for _ in range(20_000)]
    for created in sorted(samples) + samples:  # in order (the cached second reused) and shuffled
        assert _timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"), created


@pytest.mark.parametrize("text", [TOKEN, f"path /x/{TOKEN}/y", f"a {TOKEN} b {TOKEN}"])
def test_a_token_is_cut_to_its_header_wherever_it_sits(text: str) -> None:
    cleaned = scrub(text)
    assert "c2lnbmF0dXJl" not in cleaned and "eyJzdWIi" not in cleaned and "<token eyJhbGciOiJFZERTQSJ9" in cleaned


def test_a_record_s_fields_are_scrubbed_and_the_line_is_json() -> None:
    record = logging.LogRecord("keyplane.server", logging.INFO, __file__, 1, f"verified {TOKEN}", None, None)
    record.fields = {"path": f"/v1/{TOKEN}", "status": 201, "ms": 1.5, "caller": "issuer"}
    line = json.loads(JsonFormatter().format(record))
    assert TOKEN not in json.dumps(line) and line["status"] == 201 and line["caller"] == "issuer"
    assert line["ts"] == datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
