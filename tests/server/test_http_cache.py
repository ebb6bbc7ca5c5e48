"""The clients' caching rules against a scripted HTTP server on 127.0.0.1 (hostile answers included)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from signers.clients import JWKSClient
from signers.clients.http_cache import CachePolicy, max_age_of
from signers.errors import BackendUnavailable, ConfigError
from signers.jose import JWKS


class Script:
    """What the server answers next: status, headers, body."""

    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body = b""
        self.requests: list[dict[str, str]] = []


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.requests.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(script.status)
            for name, value in script.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks", script
    finally:
        server.shutdown()
        server.server_close()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("header", "age"), [
    ("public, max-age=300", 300.0), ("max-age=0", 0.0), ('max-age="60"', 60.0), ("no-store", 0.0),
    ("private, no-cache, max-age=600", 0.0), ("public", None), (None, None), ("max-age=abc", None),
    ("s-maxage=10", None),
])
def test_max_age_parsing(header: str | None, age: float | None) -> None:
    assert max_age_of(header) == age


def test_policy_refuses_a_hard_expiry_shorter_than_the_ttl() -> None:
    with pytest.raises(ConfigError, match="hard_expiry"):
        CachePolicy(ttl=300, hard_expiry=10)
    with pytest.raises(ConfigError):
        CachePolicy(ttl=float("nan"))


def test_a_bad_document_never_replaces_the_good_one(scripted: tuple[str, Script], agent_signer: Any) -> None:
    url, script = scripted
    good = JWKS.of(agent_signer).to_json().encode()
    script.body, script.headers = good, {"etag": '"v1"', "cache-control": "max-age=100"}
    clock = Clock()
    keys = JWKSClient(url, ttl=100, min_interval=1, hard_expiry=1000, clock=clock)
    assert agent_signer.key_id in keys
    for status, body in ((200, b"{not json"), (200, b'{"keys": []}'), (500, b""), (200, b'{"keys": [{"kty": "EC"}]}')):
        script.status, script.body = status, body
        clock.now += 101
        assert agent_signer.key_id in keys  # still the good set
        assert keys.document.last_error is not None
    assert script.requests[-1]["if-none-match"] == '"v1"'
    clock.now += 1000
    with pytest.raises(BackendUnavailable, match="hard expiry"):
        len(keys)
    script.status, script.body = 200, good
    clock.now += 2  # a down server is asked again once per min_interval
    assert agent_signer.key_id in keys  # the server is back: recovered


def test_an_oversized_document_is_refused(scripted: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> None:
    url, script = scripted
    monkeypatch.setattr("signers.clients.transport.MAX_DOCUMENT", 1000)
    script.body = b'{"keys": [' + b" " * 5000 + b"]}"
    keys = JWKSClient(url)
    with pytest.raises(BackendUnavailable, match="larger than the document limit"):
        len(keys)


def test_only_http_urls_are_followed() -> None:
    with pytest.raises(ConfigError, match="http"):
        JWKSClient("file:///etc/passwd")
