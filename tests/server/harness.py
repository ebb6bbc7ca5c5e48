"""Run `keyplane serve` as a real process on a free 127.0.0.1 port, and a webhook receiver.

`ServiceProcess` writes a keyplane.toml, starts ``python -m signers.cli serve --config ...``
and waits (polling /healthz against a deadline) until it answers; `stop()` sends SIGTERM
(graceful shutdown) and waits for the exit. `Receiver` is a threaded HTTP server that
fails the first `fail_first` deliveries with 500 and records every body; tests wait on its
condition variable, never on a sleep.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from backends.file import FileKeyStore
from signers import KeySpec

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 30.0
PASSWORD_ENV = "KEYPLANE_SERVER_TEST_PASSWORD"
TOKENS = {
    "admin": "admin-token-0123456789abcdef",
    "issuer": "issuer-token-0123456789abcdef",
    "verifier": "verifier-token-0123456789abcdef",
    "revoker": "revoker-token-0123456789abcdef",
    "operator": "operator-token-0123456789abcdef",
    "gatekeeper": "gatekeeper-token-0123456789abc",
    "retired": "retired-token-0123456789abcdef",
}
SCOPES = {
    "issuer": ["passports:issue", "actions:issue"],
    "verifier": ["verify"],
    "revoker": ["revoke"],
    "operator": ["agents:register", "agents:advance", "agents:read", "receipts", "certificates:issue"],
    "gatekeeper": ["gate"],
    "retired": ["verify"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token_env() -> dict[str, str]:
    env = {f"KP_TOKEN_{name.upper()}": token for name, token in TOKENS.items()}
    env[PASSWORD_ENV] = "server test password"
    return env


def make_file_key(directory: Path, name: str, spec: KeySpec = KeySpec.ED25519) -> str:
    """Create a key in a file store under `directory`; returns the store URI."""
    os.environ[PASSWORD_ENV] = "server test password"
    uri = f"file:{directory}?password-source=env:{PASSWORD_ENV}"
    with FileKeyStore.from_uri(uri) as store:
        store.create_key(name, spec)
    return uri


def callers_toml() -> str:
    lines = [""]
    for name, scopes in SCOPES.items():
        lines += [f"[server.callers.{name}]", f'token_source = "env:KP_TOKEN_{name.upper()}"',
                  f"scopes = {scopes!r}".replace("'", '"'), ""]
    return "\n".join(lines)


class ServiceProcess:
    """One `keyplane serve` process; restartable on the same port and state."""

    def __init__(self, directory: Path, keys_toml: str, *, server_toml: str = "", extra_toml: str = "",
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = directory / "keyplane.toml"
        self.log_path = directory / "serve.log"
        self.env = {**os.environ, **token_env(), **(env or {})}
        # this checkout's `signers`, not whichever one the venv's editable install points at
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), self.env.get("PYTHONPATH")]))
        self.keys_toml = keys_toml
        self.server_toml = server_toml
        self.extra_toml = extra_toml
        self.process: subprocess.Popen[bytes] | None = None
        self.write()

    def write(self, key: str = "issuer", previous: list[str] | None = None) -> None:
        head = "\n".join([
            "[server]", f'issuer = "{self.url}"', f'key = "{key}"', f'listen = "127.0.0.1:{self.port}"',
            f'state = "sqlite:///{self.directory}/state.db"', f'agents = "{self.directory}/agents"',
            f"previous_keys = {previous or []!r}".replace("'", '"'), 'admin_token_source = "env:KP_TOKEN_ADMIN"',
            self.server_toml, callers_toml(),
        ])
        self.config.write_text(self.keys_toml + "\n" + head + "\n" + self.extra_toml + "\n", encoding="utf-8")

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "signers.cli", "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.directory)
        deadline = time.monotonic() + START_DEADLINE
        with httpx.Client(trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"keyplane serve exited {self.process.returncode}:\n{self.log()}")
                try:
                    if client.get(self.url + "/healthz", timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)  # polling against a deadline (the process start), not synchronisation
        self.stop()
        raise RuntimeError(f"keyplane serve did not answer within {START_DEADLINE} s:\n{self.log()}")

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def client(self, caller: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {TOKENS[caller]}"} if caller else {}
        return httpx.Client(base_url=self.url, headers=headers, trust_env=False, timeout=20)


class Receiver:
    """A webhook receiver on 127.0.0.1 that fails the first `fail_first` deliveries."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts = 0
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.condition:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                    if not failing:
                        receiver.bodies.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.condition.notify_all()
                self.send_response(500 if failing else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: predicate(self), timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
