"""The HTTP side of the Vault / OpenBao Transit back end: one connection, one error translation.

Two clients share one configuration (address, token, namespace, TLS, timeouts, retries):

* an ``hvac.Client`` for the management calls (read, list, create, rotate, delete), on a
  lean ``requests.Session``: ``trust_env=False`` (requests otherwise re-reads proxy and
  netrc settings from the environment on every call), keep-alive, a bounded pool;
* a ``urllib3.PoolManager`` for the sign call, the one hot path. Measured against OpenBao
  2.7.2 on loopback (docs/vault.md): hvac's ``sign_data`` costs about 350-460 us of client
  CPU per signature, requests alone about 325 us, urllib3 about 180 us; client CPU is
  what caps throughput under the GIL with 8 threads.

Timeouts and retries: ``timeout`` is a total deadline per call, across every attempt
(a stopped server costs one ``timeout``, not one per retry). Within it, failures are retried
with a 50 ms backoff that doubles: connection failures for every call (nothing reached the
server); 5xx answers and broken or timed-out reads only for calls that are safe to repeat
(reads, list, delete, and sign, which changes nothing). Creating and rotating are never
repeated after the server may have seen them. 4xx answers are never retried. The retry
loop is written here, not left to urllib3's ``Retry``, because urllib3 counts and times
each attempt on its own and has no deadline.

Every failure from either client goes through `VaultConnection.translate`, the one
place SDK, HTTP and socket errors become `signers.errors`. The token is only ever a
request header: it is not in any message, repr or log line written here.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
)
from signers.sdk import require
from signers.secrets import Secret

__all__ = ["TLSOptions", "VaultConnection"]

log = logging.getLogger("keyplane.vault")

T = TypeVar("T")

_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_SAFE_METHODS = frozenset({"GET", "HEAD", "LIST", "DELETE", "OPTIONS"})  # repeatable management calls
_CONNECT_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 10.0  # seconds, the whole call including retries
DEFAULT_KEYGEN_TIMEOUT = 60.0  # creating / rotating / importing: the server generates an RSA-4096 key on its CPU
_KEYGEN_PATH = re.compile(r"/v1/.+/keys/[^/]+(?:/import|/rotate)?$")
_BACKOFF_MAX = 2.0


@dataclass(frozen=True)
class TLSOptions:
    """Trust and client-certificate settings, applied identically to both clients."""

    ca_cert: str | None = None  # PEM bundle; None: certifi's bundle (what requests uses by default)
    client_cert: str | None = None
    client_key: str | None = None


class VaultConnection:
    """One server connection: an hvac client for management, a urllib3 pool for signing."""

    def __init__(
        self,
        addr: str,
        token: Secret,
        *,
        namespace: str | None = None,
        tls: TLSOptions | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.05,
        keygen_timeout: float | None = None,
    ) -> None:
        hvac = require("hvac", "vault", "hashivault")
        requests = require("requests", "vault", "hashivault")
        urllib3 = require("urllib3", "vault", "hashivault")
        self.addr = addr.rstrip("/")
        self.namespace = namespace
        self.timeout = timeout
        self.outages = 0  # failed round trips (unreachable, 5xx); signers re-check their key after one
        self._policy = _RetryPolicy(timeout, min(_CONNECT_TIMEOUT, timeout), retries, backoff)
        keygen = keygen_timeout if keygen_timeout is not None else timeout
        self.keygen_timeout = keygen
        keygen_policy = _RetryPolicy(keygen, min(_CONNECT_TIMEOUT, keygen), retries, backoff)
        tls = tls or TLSOptions()
        ca = tls.ca_cert or _default_ca_bundle()

        cert = (tls.client_cert, tls.client_key) if tls.client_cert else None
        session = requests.Session()
        session.trust_env = False
        # On the session itself: hvac prefers a session's verify (True by default) over its own argument.
        session.verify = ca if ca else True
        session.cert = cert
        session.mount(self.addr + "/", _deadline_adapter(requests, self._policy, keygen_policy))
        self.hvac = hvac.Client(
            url=self.addr, token=token.reveal(), verify=ca if ca else True, cert=cert,
            timeout=timeout, session=session, namespace=namespace,
        )

        pool_tls: dict[str, Any] = {}
        if self.addr.startswith("https:"):
            pool_tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca, "cert_file": tls.client_cert,
                        "key_file": tls.client_key}
        self._urllib3 = urllib3
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=16, block=False, retries=False, **pool_tls)
        self._headers = {"X-Vault-Token": token.reveal(), "X-Vault-Request": "true",
                         "Content-Type": "application/json"}
        if namespace:
            self._headers["X-Vault-Namespace"] = namespace

    # -- calls -------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one hvac call; any failure is translated (``what`` names it in the message)."""
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # every SDK failure is translated here, none leak
            self.translate(e, what)

    def post_json(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        """POST ``/v1/<path>`` on the lean pool (the sign path); the response's JSON object.

        Sign is side-effect free, so every failure is retried, within the call's deadline.
        """
        url = f"{self.addr}/v1/{path}"
        data = json.dumps(body).encode()
        attempts = self._policy.attempts()
        while True:
            timeout = next(attempts)
            try:
                response = self._pool.request(
                    "POST", url, body=data, headers=self._headers, retries=False,
                    timeout=self._urllib3.Timeout(connect=timeout.connect, read=timeout.read))
            except Exception as e:  # socket / TLS errors: retried while time remains, then translated
                if _is_transport_error(e) and not _is_tls_verification_failure(e) and timeout.retry_after():
                    continue
                self.translate(e, what)
            if response.status in _RETRY_STATUSES and timeout.retry_after():
                continue
            break
        status = response.status
        try:
            payload = json.loads(response.data) if response.data else {}
        except ValueError:
            payload = {}
        if 200 <= status < 300 and isinstance(payload, dict):
            return payload
        hvac = require("hvac", "vault", "hashivault")
        errors = payload.get("errors") if isinstance(payload, dict) else None
        text = response.data.decode("utf-8", "replace")[:500]
        error = hvac.exceptions.VaultError.from_status(
            status, None if errors else text, errors=errors, method="post", url=url, text=text, json=payload)
        self.translate(error, what)

    def close(self) -> None:
        self._pool.clear()
        self.hvac.adapter.close()

    # -- the one error translation ------------------------------------------------------

    def translate(self, error: BaseException, what: str) -> NoReturn:
        """Raise the `signers.errors` equivalent of an hvac / requests / urllib3 failure, chained ``from`` it.

        Anything that is not an SDK, HTTP or socket failure is re-raised as it is: a bug must
        not pass for an outage.
        """
        if isinstance(error, KeyplaneError):
            raise error
        translated = self.translation(error, what)
        if translated is None:
            raise error
        raise translated from error

    def translation(self, error: BaseException, what: str) -> KeyplaneError | None:
        """The one table of this back end: the keyplane error for an hvac / requests / urllib3 failure, or None."""
        hvac = require("hvac", "vault", "hashivault")
        exc = hvac.exceptions
        where = f"{what} at {self.addr}"
        if isinstance(error, exc.VaultError):
            detail = _server_errors(error)
            if isinstance(error, exc.Forbidden):
                if self._token_rejected(detail):
                    return AuthenticationFailed(f"{where}: the token was rejected ({detail})")
                return PermissionDenied(f"{where}: the token's policy does not allow this ({detail})")
            if isinstance(error, exc.Unauthorized):
                return AuthenticationFailed(f"{where}: not authenticated ({detail})")
            if "no handler for route" in detail:
                return ConfigError(f"{where}: nothing is mounted at that path; check ?mount= ({detail})")
            if isinstance(error, exc.InvalidPath):
                return KeyNotFound(f"{where}: not found ({detail or 'no such path'})")
            if isinstance(error, exc.InvalidRequest):
                lowered = detail.lower()
                if "not found" in lowered or "no existing key" in lowered:
                    return KeyNotFound(f"{where}: {detail}")
                if "unknown key type" in lowered or ("key type" in lowered and "support" in lowered):
                    return AlgorithmNotSupported(f"{where}: the server answered: {detail}")
                if "already exists" in lowered:
                    return KeyExists(f"{where}: {detail}")
                return ConfigError(f"{where}: the server refused the request: {detail}")
            if isinstance(error, exc.ParamValidationError):
                return ConfigError(f"{where}: {detail}")
            # 429, 5xx (after retries), sealed, unexpected statuses: the service, not the caller.
            self.outages += 1
            if "higher than the latest key version" in detail:  # Transit answers 500 for a missing version
                return KeyNotFound(f"{where}: {detail}")
            return BackendUnavailable(f"{where}: the server failed: {detail}", error)
        if _is_tls_verification_failure(error):
            return ConfigError(
                f"{where}: TLS certificate verification failed; give the server's CA with ?ca-cert=PATH "
                "(or VAULT_CACERT / BAO_CACERT)"
            )
        if _is_transport_error(error):
            self.outages += 1
            return BackendUnavailable(f"{where}: cannot reach the server ({type(error).__name__})", error)
        return None  # not an SDK, HTTP or socket failure

    def item_error(self, detail: str, what: str) -> KeyplaneError:
        """The typed error for one failed item of a batch (Transit's per-item ``error`` text)."""
        hvac = require("hvac", "vault", "hashivault")
        error = self.translation(hvac.exceptions.InvalidRequest(detail, errors=[detail]), what)
        return error if error is not None else ConfigError(f"{what} at {self.addr}: {detail}")

    def _token_rejected(self, detail: str) -> bool:
        """Is a 403 a bad token (AuthenticationFailed) rather than a missing policy grant?

        Vault and OpenBao answer 403 "permission denied" for both. Some versions add
        "invalid token"; otherwise ask the server: every valid token may look itself
        up (the default policy grants ``auth/token/lookup-self``), so a 403 there too
        means the token itself is bad. A token created without the default policy is
        reported as rejected as well; docs/vault.md says so.
        """
        if "invalid token" in detail.lower() or "bad token" in detail.lower():
            return True
        try:
            self.hvac.auth.token.lookup_self()
        except Exception as e:  # only the probe's own verdict matters
            hvac = require("hvac", "vault", "hashivault")
            return isinstance(e, (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized))
        return False

    def __repr__(self) -> str:
        return f"VaultConnection(addr={self.addr!r}, namespace={self.namespace!r})"


class _Attempt:
    """One attempt's timeouts, and whether another attempt fits in the call's deadline."""

    def __init__(self, policy: _RetryPolicy, deadline: float, number: int) -> None:
        self._policy = policy
        self._deadline = deadline
        self.number = number
        remaining = max(deadline - time.monotonic(), 0.001)
        self.connect = min(policy.connect, remaining)
        self.read = remaining

    def retry_after(self) -> bool:
        """Back off and return True when another attempt is allowed and fits; False to give up now."""
        if self.number >= self._policy.retries:
            return False
        pause = min(self._policy.backoff * 2**self.number, _BACKOFF_MAX)
        if time.monotonic() + pause >= self._deadline:
            return False
        time.sleep(pause)
        return True


@dataclass(frozen=True)
class _RetryPolicy:
    """A total deadline per call, split into attempts (see the module docstring)."""

    total: float
    connect: float
    retries: int
    backoff: float

    def attempts(self) -> Iterator[_Attempt]:
        deadline = time.monotonic() + self.total
        number = 0
        while True:
            yield _Attempt(self, deadline, number)
            number += 1


def _deadline_adapter(requests: Any, policy: _RetryPolicy, keygen_policy: _RetryPolicy) -> Any:
    """A requests HTTPAdapter that retries within `policy`'s deadline (urllib3 itself never retries)."""

    class DeadlineAdapter(requests.adapters.HTTPAdapter):
        def __init__(self) -> None:
            super().__init__(pool_connections=1, pool_maxsize=16, max_retries=0)

        def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
                 cert: Any = None, proxies: Any = None) -> Any:
            safe = request.method in _SAFE_METHODS
            keygen = request.method == "POST" and _KEYGEN_PATH.search(urllib.parse.urlsplit(request.url).path)
            attempts = (keygen_policy if keygen else policy).attempts()
            while True:
                attempt = next(attempts)
                try:
                    response = super().send(request, stream=stream, timeout=(attempt.connect, attempt.read),
                                            verify=verify, cert=cert, proxies=proxies)
                except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                    if (safe or _never_reached_server(e)) and not _is_tls_verification_failure(e) \
                            and attempt.retry_after():
                        continue
                    raise
                if safe and response.status_code in _RETRY_STATUSES and attempt.retry_after():
                    response.close()
                    continue
                return response

    return DeadlineAdapter()


def _never_reached_server(error: BaseException) -> bool:
    """Did the request fail before a connection existed (so repeating it cannot repeat a side effect)?"""
    urllib3 = require("urllib3", "vault", "hashivault")
    return any(isinstance(e, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))
               for e in _chain(error))


def _server_errors(error: Any) -> str:
    errors = getattr(error, "errors", None)
    if errors:
        return "; ".join(" ".join(str(e).split()) for e in errors)[:300]
    text = getattr(error, "args", ("",))[0] or ""
    return " ".join(str(text).split())[:300]


def _default_ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:  # pragma: no cover - requests depends on certifi
        return None
    return str(certifi.where())


def _chain(error: BaseException) -> list[BaseException]:
    """The error and everything it wraps (urllib3's MaxRetryError.reason, __cause__, __context__, args)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [error]
    while todo:
        item = todo.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        linked = [getattr(item, "reason", None), item.__cause__, item.__context__, *item.args]
        todo.extend(e for e in linked if isinstance(e, BaseException))
    return seen


def _is_tls_verification_failure(error: BaseException) -> bool:
    import ssl

    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(error))


def _is_transport_error(error: BaseException) -> bool:
    requests = require("requests", "vault", "hashivault")
    urllib3 = require("urllib3", "vault", "hashivault")
    return isinstance(error, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError))

