"""Agent-to-agent messages: signed by the sender, verified by the peer, once.

`sign_message(agent_signer, passport, to=peer, body=...)` is a JWT (``typ:
agent-message+jwt``) from the sender (``sub``, from its passport) to one peer (``aud``),
with the body (any JSON value), its RFC 8785 digest, a short lifetime and a ``jti``;
``passport_jti`` ties it to the passport the sender presents.

The peer verifies (`MessageVerifier.verify`) against either

- the sender's passport (verified with the issuer's keys, revocation included): the message
  must be signed by the passport's ``cnf`` key; or
- the sender's certificate chain plus CRL (`signers.x509.verify_chain`): the message must be
  signed by the leaf's key and the sender must be named in the leaf (CN or a URI SAN);

and checks audience (the peer itself), freshness (``iat`` within `max_age`) and replay (a
``jti`` seen before within its lifetime is refused with `TokenReplayed`).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..clock import DEFAULT_LEEWAY, duration, epoch, from_epoch
from ..errors import InvalidSignature, TokenError, TokenInvalid, TokenReplayed
from ..jose import KeySource, parse_jws, sign_jwt, verify_jwt
from ..keys import PublicKey
from ..revocation import RevocationCheck
from ..x509 import verify_chain
from .canonical import digest
from .errors import PolicyError
from .events import RejectionEvents, report_to
from .passports import verify_agent_passport

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = ["MESSAGE_TYP", "AgentMessage", "MessageVerifier", "sign_message"]

MESSAGE_TYP = "agent-message+jwt"
_MAX_SEEN = 100_000


@dataclass(frozen=True)
class AgentMessage:
    """A verified message: from whom, to whom, what, and when."""

    sender: str
    to: str
    body: Any
    jti: str
    issued_at: datetime
    claims: dict[str, Any]


def sign_message(
    agent_signer: Signer,
    passport: str,
    *,
    to: str,
    body: Any,
    ttl: float = 60,
    now: datetime | float | None = None,
) -> str:
    """A message from the passport's agent to `to`, signed with the agent's own key."""
    if not isinstance(to, str) or not to:
        raise PolicyError("a message needs a peer (to=...)")
    try:
        claims = parse_jws(passport).claims()  # the sender's own passport: only its sub and jti are copied
    except TokenError as e:
        raise PolicyError(f"sign_message needs the sender's passport token: {e}") from e
    sender, passport_jti = claims.get("sub"), claims.get("jti")
    if not isinstance(sender, str) or not isinstance(passport_jti, str):
        raise PolicyError("the passport given has no sub / jti")
    issued = int(epoch(now))
    return sign_jwt(agent_signer, {
        "iss": sender, "sub": sender, "aud": to, "iat": issued,
        "exp": issued + max(1, int(duration(ttl, "ttl", allow_zero=False))), "jti": str(uuid.uuid4()),
        "passport_jti": passport_jti, "body": body, "body_digest": digest(body),
    }, typ=MESSAGE_TYP)


class MessageVerifier:
    """The peer's side: its own name (the audience), freshness and a replay cache."""

    def __init__(
        self,
        me: str,
        *,
        max_age: float = 120,
        leeway: float = DEFAULT_LEEWAY,
        events: RejectionEvents | None = None,
    ) -> None:
        if not isinstance(me, str) or not me:
            raise PolicyError("a message verifier needs its own name (the audience)")
        self.me = me
        self.max_age = duration(max_age, "max_age", allow_zero=False)
        self.leeway = leeway
        self.events = events
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(
        self,
        message: str,
        *,
        passport: str | None = None,
        issuer_keys: KeySource | None = None,
        revocations: RevocationCheck | None = None,
        certificate: x509.Certificate | None = None,
        intermediates: Sequence[x509.Certificate] = (),
        roots: Sequence[x509.Certificate] = (),
        crl: x509.CertificateRevocationList | None = None,
        now: datetime | float | None = None,
    ) -> AgentMessage:
        """Verify `message` from a sender known by its passport or by its certificate; TokenError if refused."""
        if (passport is None) == (certificate is None):
            raise PolicyError("verify a message against exactly one of passport= or certificate=")
        who: str | None = None
        try:
            if passport is not None:
                if issuer_keys is None:
                    raise PolicyError("a passport is verified with the issuer's keys (issuer_keys=)")
                agent = verify_agent_passport(passport, issuer_keys, revocations=revocations, now=now)
                key, who, bound = agent.passport.agent_key, agent.sub, agent.passport.jti
            else:
                assert certificate is not None
                key, who, bound = self._certificate_key(certificate, intermediates, roots, crl, now), None, None
            result = self._check(message, key, who, bound, now)
            if certificate is not None:
                _named_in(certificate, result.sender)
            self._remember(result, now)
        except TokenError as e:
            report_to(self.events, "message", e, token=message, who=who, authenticated=who is not None,
                      context={"to": self.me})
            raise
        return result

    def _certificate_key(self, certificate: x509.Certificate, intermediates: Sequence[x509.Certificate],
                         roots: Sequence[x509.Certificate], crl: x509.CertificateRevocationList | None,
                         now: datetime | float | None) -> PublicKey:
        when = from_epoch(epoch(now))
        try:
            verify_chain(certificate, intermediates, roots, at=when, crl=crl, require_crl=crl is not None)
        except InvalidSignature as e:  # CertificateError: untrusted, expired or revoked
            raise TokenInvalid(f"sender certificate refused: {e}") from e
        return PublicKey(certificate.public_key())  # type: ignore[arg-type]

    def _check(self, message: str, key: PublicKey, sender: str | None, bound: str | None,
               now: datetime | float | None) -> AgentMessage:
        verified = verify_jwt(message, key, typ=MESSAGE_TYP, audience=self.me, subject=sender,
                              require=("sub", "aud", "iat", "exp", "jti", "body", "body_digest"),
                              leeway=self.leeway, now=now)
        c = verified.claims
        if not isinstance(c["sub"], str) or not isinstance(c["jti"], str):
            raise TokenInvalid("message sub and jti must be strings")
        if bound is not None and c.get("passport_jti") != bound:
            raise TokenInvalid("message was sent under another passport")
        if c["body_digest"] != digest(c["body"]):
            raise TokenInvalid("message body does not match its digest")
        issued = float(c["iat"])
        if epoch(now) - issued > self.max_age + self.leeway:
            raise TokenInvalid(f"message is older than {self.max_age:g} s (stale)")
        when = from_epoch(issued)
        if when is None:
            raise TokenInvalid("message iat out of range")
        return AgentMessage(c["sub"], self.me, c["body"], c["jti"], when, c)

    def _remember(self, message: AgentMessage, now: datetime | float | None) -> None:
        current = epoch(now)
        key = f"{message.sender}\0{message.jti}"
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < current:
                self._seen.popitem(last=False)
            if key in self._seen:
                raise TokenReplayed(f"message {message.jti[:40]!r} from {message.sender[:80]!r} was already received")
            self._seen[key] = message.issued_at.timestamp() + self.max_age + 2 * self.leeway
            while len(self._seen) > _MAX_SEEN:
                self._seen.popitem(last=False)


def _named_in(certificate: x509.Certificate, sender: str) -> None:
    names = [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.extend(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        pass
    if sender not in names:
        raise TokenInvalid(f"sender {sender[:80]!r} is not named in its certificate")

