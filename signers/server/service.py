"""`Service`: the library objects `keyplane serve` runs on, built once from a `ServerConfig`.

Nothing here is HTTP: the issuer Signer (timed for /metrics, audited so every signature is a
record of the audit chain), the published JWKS (current key plus the rotated-out ones), the
state stores by URI, the agent registry, the gate, the rejection events with the auto-revoke
policy, the webhooks, and optionally the CA and a status list. The HTTP handlers call the
library with these objects; a test or another front end can do the same.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .. import registry as key_registry
from ..agents.autorevoke import AUTO_REVOKE, AutoRevoke
from ..agents.events import RejectionEvent, RejectionEvents
from ..agents.gate import Gate
from ..agents.lifecycle import AgentHistory
from ..agents.policy import GatePolicy
from ..agents.possession import ChallengeBook
from ..agents.trust import TrustInputs, TrustScore, compute_trust
from ..algorithms import SignatureAlgorithm
from ..errors import ConfigError, KeyplaneError
from ..keys import PublicKey
from ..signer import Signer, has_own_async, key_in_memory
from ..stores import open_state
from ..stores.status_issuer import StatusListIssuer
from ..tokens.audit import AuditedSigner, verify_chain
from ..tokens.jwk import JWKS
from ..tokens.jws_sign import sign_jwt
from ..tokens.revocation_list import issue_revocation_list
from ..x509 import CertificateAuthority, load_certificates
from .config import ServerConfig
from .metrics import Metrics
from .registry import AgentRegistry
from .webhooks import WebhookDispatcher

__all__ = ["INLINE_SIGN_LIMIT", "OPERATION_TYP", "Service", "TimedSigner", "inline_signing"]

OPERATION_TYP = "keyplane-operation+jwt"  # the signed record of a write that signs nothing else
_PROBE = b"keyplane readiness probe: not a token"
_READY_CACHE = 2.0
_TRUST_CACHED = 4096  # distinct trust inputs held (stage x code attested x counts): a handful in practice
# An in-memory key whose signature measures under this is signed on the event loop (see `inline_signing`)
INLINE_SIGN_LIMIT = 0.0002
_INLINE_SAMPLES = 5


class TimedSigner:
    """A Signer that reports each call's latency to `metrics` (operation ``sign``).

    With `inline`, `sign_async` signs on the calling thread (the event loop): for a key in
    this process's memory whose signature is shorter than a hop to a worker thread and back
    (`inline_signing` decides). It is then its own async path (`own_async`), so an audited
    signature is made on the loop and only its durable append goes to the I/O pool, one
    hop per batch of appends rather than one per request.
    """

    def __init__(self, signer: Signer, metrics: Metrics, *, inline: bool = False) -> None:
        self.signer = signer
        self.metrics = metrics
        self.key_id: str = signer.key_id
        self.uri: str = signer.uri
        self.algorithm: SignatureAlgorithm = signer.algorithm
        self.public_key: PublicKey = signer.public_key
        self.inline = inline
        # it forwards sign_async: its own is the wrapped one's, or the inline signature
        self.own_async = inline or has_own_async(signer)

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.metrics.observe("keyplane_backend_seconds", time.perf_counter() - started, operation="sign",
                                 outcome=outcome)

    def sign(self, message: bytes) -> bytes:
        with self._timed():
            return self.signer.sign(message)

    async def sign_async(self, message: bytes) -> bytes:
        """The wrapped signer's own `sign_async` (native async or keyplane's pool), timed like `sign`; inline: `sign`."""
        with self._timed():
            if self.inline:
                return self.signer.sign(message)
            signature: bytes = await self.signer.sign_async(message)
            return signature


def inline_signing(signer: Signer, limit: float = INLINE_SIGN_LIMIT) -> bool:
    """Whether the service signs with `signer` on its event loop: an in-memory key measured under `limit` s.

    On the two-core machine of bench_server.py, a signature on the I/O pool cost the
    request two thread wake-ups and the GIL handed back and forth (about 26 context
    switches a passport at 8 clients, 13 inline) where an Ed25519 or P-256 file key signs
    in 30 us. A slower algorithm (RSA: milliseconds) would stall every other request on the
    loop for that long, and a key behind an HSM session or a network call can wait for
    anything: both keep the pool. The median of a few signatures of the readiness probe is
    the measure; a key that fails to sign here keeps the pool (readiness reports why).
    """
    if not key_in_memory(signer) or has_own_async(signer):
        return False
    times = []
    try:
        for _ in range(_INLINE_SAMPLES):
            started = time.perf_counter()
            signer.sign(_PROBE)
            times.append(time.perf_counter() - started)
    except KeyplaneError:
        return False
    return sorted(times)[len(times) // 2] < limit


class Service:
    """Everything the handlers use; `close()` releases stores, keys and the webhook worker."""

    def __init__(self, config: ServerConfig, *, webhook_client: Any = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self._closables: list[Any] = []
        keyplane = config.keyplane
        self.raw_signer = key_registry.open(config.key, config=keyplane)
        self._closables.append(self.raw_signer)
        self.signer = TimedSigner(self.raw_signer, self.metrics, inline=inline_signing(self.raw_signer))
        previous = [key_registry.open(uri, config=keyplane) for uri in config.previous_keys]
        self._closables.extend(previous)
        self.jwks = JWKS.of(self.raw_signer, *previous)
        self.state = open_state(config.state)
        self._closables.append(self.state)
        self.revocations = self.state.revocations()
        self.audit = self.state.audit_log(config.audit_log)
        self.issuer = AuditedSigner(self.signer, self.audit, checkpoint_every=100)
        self.registry = AgentRegistry(config.agents, JWKS.of(self.raw_signer))
        self._closables.append(self.registry)  # a URI registry holds a connection pool
        self.events = RejectionEvents()
        self.webhooks = WebhookDispatcher(config.webhooks, self.signer, config.issuer,
                                          queue_size=config.webhook_queue, client=webhook_client,
                                          on_result=self._webhook_result)
        self.events.subscribe(self._on_rejected)
        self.autorevoke = (AutoRevoke.from_config(self.revocations, config.autorevoke).attach(self.events)
                           if config.autorevoke is not None else None)
        self.challenges = self._challenge_book()
        self.gate = Gate(config.gate or GatePolicy(), self.jwks, revocations=self.revocations,
                         challenges=self.challenges, histories=self.registry.history, events=self.events,
                         audit=self.audit, decision_signer=self.signer, spend_ledger=self.state.spend_ledger())
        self.attested = _attested_builds(self.gate.policy)  # code hashes the policy names: attested builds
        self.recent: list[dict[str, Any]] = []  # the dashboard's recent decisions and rejections
        self._recent_lock = threading.Lock()
        self.ca = self._authority()
        self.status_lists = self._status_list()
        self._ready: tuple[float, str | None] = (0.0, "not checked")
        self._trust: dict[TrustInputs, tuple[int, TrustScore]] = {}

    def _challenge_book(self) -> ChallengeBook:
        """Proof-of-possession challenges any replica can check, when the state store is shared.

        With PostgreSQL or Redis state, several replicas answer behind one name: a challenge is
        then a JWT signed by the issuer key (any replica with that key verifies it) and its
        answer is used up in the store's replay cache (once across the fleet). SQLite state
        serves one host: the challenges are held in this process, as before.
        """
        try:
            shared = self.state.replay_cache()
        except ConfigError:
            return ChallengeBook(self.config.issuer)
        return ChallengeBook(self.config.issuer, signer=self.signer, replay_cache=shared)

    def _authority(self) -> CertificateAuthority | None:
        ca = self.config.ca
        if ca is None:
            return None
        try:
            pem = ca.certificate.read_bytes()
        except OSError as e:
            raise ConfigError(f"[server.ca] certificate {ca.certificate}: {e.strerror}") from e
        certificates = load_certificates(pem)
        signer = key_registry.open(ca.key, config=self.config.keyplane)
        self._closables.append(signer)
        return CertificateAuthority(signer, certificates[0], chain=certificates[1:], revocations=self.revocations,
                                    leaf_validity=datetime.timedelta(days=ca.leaf_days))

    def _status_list(self) -> StatusListIssuer | None:
        settings = self.config.status_list
        if settings is None:
            return None
        return StatusListIssuer(self.signer, self.state, uri=f"{self.config.issuer.rstrip('/')}/statuslists/1",
                                size=settings.size, bits=settings.bits, ttl=settings.ttl)

    # -- what a passport says about its agent ----------------------------------------------------

    def trust_of(self, history: AgentHistory) -> TrustScore:
        """The agent's trust score now; computed once a second per distinct inputs.

        A score names the second it was computed in and a digest of its inputs (RFC 8785 of
        them), so within one second the same inputs give the identical score: reusing it
        changes nothing a verifier sees and saves the canonical JSON and hash per request.
        """
        inputs = TrustInputs.collect(history.stage, history.code_hash, attested_builds=self.attested)
        second = int(time.time())
        held = self._trust.get(inputs)
        if held is not None and held[0] == second:
            return held[1]
        trust = compute_trust(inputs, now=second)
        if len(self._trust) >= _TRUST_CACHED:
            self._trust.clear()
        self._trust[inputs] = (second, trust)
        return trust

    # -- the status list: passports and action tokens carry an entry -------------------------------

    def status_claim(self) -> dict[str, Any] | None:
        """A fresh ``status`` claim (``{"status_list": {"idx", "uri"}}``), or None without a status list."""
        return self.status_lists.allocate() if self.status_lists is not None else None

    def passport_statuses(self, *, sub: str | None = None, jti: str | None = None) -> list[int]:
        """The status list indices of the passports issued to `sub` (or with `jti`).

        Read from the audit chain: every issuance's signature record carries the passport's
        ``sub``, ``jti`` and ``status_idx`` in its context, so the chain (shared by replicas
        on PostgreSQL) is the ledger of what was handed out, and no second store is needed.
        A revocation reads the whole chain once; it is rare, issuance is not.
        """
        found: list[int] = []
        for record in self.audit.records():
            context = record.context
            index = context.get("status_idx")
            if context.get("op") != "issue-passport" or not isinstance(index, int) or isinstance(index, bool):
                continue
            if (sub is not None and context.get("sub") == sub) or (jti is not None and context.get("jti") == jti):
                found.append(index)
        return found

    # -- what the public endpoints publish -------------------------------------------------------

    def jwks_document(self) -> bytes:
        return self.jwks.to_json(indent=None).encode()

    def revocation_list(self) -> str:
        """A freshly signed revocation list (``revocation-list+jwt``)."""
        return issue_revocation_list(self.signer, self.revocations, issuer=self.config.issuer,
                                     ttl=self.config.revocation_list_ttl)

    def crl_der(self) -> bytes:
        if self.ca is None:
            raise ConfigError("this service has no CA ([server.ca])")
        return self.ca.crl().public_bytes(Encoding.DER)

    def ca_certificates(self) -> list[x509.Certificate]:
        if self.ca is None:
            raise ConfigError("this service has no CA ([server.ca])")
        return [self.ca.certificate, *self.ca.parents]

    def ready(self) -> str | None:
        """None when the issuer key answers a signature (checked at most every 2 s), else why not."""
        checked, problem = self._ready
        if time.monotonic() - checked < _READY_CACHE:
            return problem
        try:
            signature = self.signer.sign(_PROBE)
            self.raw_signer.public_key.verify(signature, _PROBE, self.raw_signer.algorithm)
            problem = None
        except KeyplaneError as e:
            problem = f"{type(e).__name__}: the issuer key does not answer"
        self._ready = (time.monotonic(), problem)
        return problem

    def audit_status(self) -> dict[str, Any]:
        result = verify_chain(self.audit, self.jwks)
        signed = True
        if not result.ok and result.checkpoints == 0 and result.first_bad == result.records + 1:
            result, signed = verify_chain(self.audit), False  # no checkpoint yet: the hash chain alone
        return {"ok": result.ok, "signed": signed, "records": result.records, "head": result.head,
                "checkpoints_verified": result.checkpoints_verified, "unchecked": result.unchecked,
                "reason": result.reason}

    # -- writes that sign nothing else get a signed record ---------------------------------------

    def record(self, operation: str, details: Mapping[str, Any]) -> str:
        """Sign (through the audited signer, so it is in the chain) a record of `operation`."""
        issued = int(time.time())
        claims = {"iss": self.config.issuer, "iat": issued, "exp": issued + 3600, "jti": str(uuid.uuid4()),
                  "op": operation, **details}
        return sign_jwt(self.issuer, claims, typ=OPERATION_TYP)

    # -- events -> webhooks, metrics, dashboard --------------------------------------------------

    def _on_rejected(self, event: RejectionEvent) -> None:
        self.metrics.inc("keyplane_rejections_total", what=event.what, reason=event.error)
        data = event.to_dict()
        if event.what == AUTO_REVOKE:
            self.webhooks.enqueue("agent.revoked", {"agent": event.who, "reason": event.why, "by": "auto-revoke"})
        elif event.what == "gate":
            self.webhooks.enqueue("gate.denied", data)
        else:
            self.webhooks.enqueue("token.rejected", data)
        self.remember({"type": "rejection", **data})

    def remember(self, entry: dict[str, Any]) -> None:
        with self._recent_lock:
            self.recent.append(entry)
            del self.recent[:-200]

    def _webhook_result(self, hook: str, result: str) -> None:
        self.metrics.inc("keyplane_webhooks_total", hook=hook, result=result)

    def close(self, grace: float = 5.0) -> int:
        """Drain webhooks (returns how many were dropped), stop events, close stores and keys."""
        dropped = self.webhooks.close(grace)
        with contextlib.suppress(KeyplaneError):  # the back end is down: the next start's records chain on
            self.issuer.checkpoint()  # the chain's end, vouched for by the issuer key
        self.events.close()
        for item in reversed(self._closables):
            with contextlib.suppress(Exception):
                item.close()
        return dropped


def _attested_builds(policy: GatePolicy) -> frozenset[str]:
    hashes = set(policy.defaults.code_hashes or ())
    for server in policy.servers.values():
        hashes.update(server.rule.code_hashes or ())
        for rule in server.tools.values():
            hashes.update(rule.code_hashes or ())
    return frozenset(hashes)
