"""Compact JWS and JWT signed by any Signer, JWK / JWKS export, and pinned verification.

Signing goes through `Signer.sign`, so the key can sit in any back end; the only
JOSE-specific step is the signature encoding (ECDSA as fixed-width r||s instead of
DER). Verification goes through `PublicKey.verify`, the project's one verifier.

Verification never lets the token choose how it is checked:

- ``alg`` must name an asymmetric algorithm we implement; ``none`` and HMAC are refused;
- the key comes from the caller's key set (``kid`` must be in it when the token has one),
  and the token's ``alg`` must be one that key's spec (and the JWK's own ``alg``) allows;
- ``crit`` headers we do not understand and unencoded payloads (``b64: false``) are refused;
- embedded keys (``jwk``, ``jku``, ``x5u``, ``x5c``) are ignored: they never select a key.

Every refusal is a `TokenError`: `TokenInvalid` (malformed, tampered, wrong key or
algorithm), `TokenExpired` (``exp`` passed or ``nbf`` not reached) or `TokenRevoked`.
Tokens interoperate with PyJWT and joserfc for the classical algorithms; ML-DSA uses
``alg`` ``ML-DSA-44/65/87`` and JWK ``kty`` ``AKP`` (draft-ietf-cose-dilithium).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .algorithms import KeyFamily, SignatureAlgorithm
from .errors import AlgorithmNotSupported, ConfigError, InvalidSignature, TokenExpired, TokenInvalid, TokenRevoked
from .keys import PublicKey, b64url_decode, b64url_encode
from .signature_format import curve_size, ecdsa_der_to_raw, ecdsa_raw_to_der

if TYPE_CHECKING:
    from .revocation import RevocationCheck
    from .signer import Signer

__all__ = [
    "DEFAULT_LEEWAY",
    "JWK",
    "JWKS",
    "KeySource",
    "UnverifiedJWS",
    "VerifiedJWS",
    "VerifiedJWT",
    "algorithm_from_jose",
    "as_jwks",
    "canonical_json",
    "check_claims",
    "check_not_revoked",
    "epoch",
    "parse_jws",
    "register_jose_algorithm",
    "sign_jws",
    "sign_jwt",
    "verify_jws",
    "verify_jwt",
]

# Seconds of clock skew tolerated on exp / nbf / iat: an offline verifier's clock is
# rarely exactly the issuer's, and nbf = iat = "now" must not fail one second later.
DEFAULT_LEEWAY = 30.0
# Largest compact token we parse; ML-DSA-87 passports are ~12 KB. Revocation lists pass more.
DEFAULT_MAX_SIZE = 256 * 1024

# Header names RFC 7515/7519 define; `crit` must not list them (RFC 7515 4.1.11).
_REGISTERED_HEADERS = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc", "zip"}
)

# Every `alg` value we accept, to the algorithm it means. RFC 9864 "Ed25519" and the
# older "EdDSA" both mean Ed25519 (we never accept EdDSA for an Ed448 key: we have none).
_BY_JOSE_NAME: dict[str, SignatureAlgorithm] = {a.jose_name: a for a in SignatureAlgorithm}
_BY_JOSE_NAME["Ed25519"] = SignatureAlgorithm.ED25519

KeySource = Union["PublicKey", "JWK", "JWKS", "Signer", Mapping[str, Any], Iterable[Any]]


def algorithm_from_jose(name: object) -> SignatureAlgorithm:
    """The algorithm an ``alg`` header means, or TokenInvalid saying why it is refused."""
    if not isinstance(name, str):
        raise TokenInvalid("header 'alg' is missing or not a string")
    if name.lower() == "none":
        raise TokenInvalid("algorithm 'none' is refused: unsigned tokens are never accepted")
    if name.upper().startswith("HS"):  # HS256/384/512 and any variant: a public key is never a MAC key
        raise TokenInvalid(f"HMAC algorithm {name} is refused: only public-key signatures are accepted")
    alg = _BY_JOSE_NAME.get(name)
    if alg is None:
        raise TokenInvalid(f"unsupported algorithm {name[:40]!r}")
    return alg


# -- algorithms outside SignatureAlgorithm (hook) ----------------------------------------
# Composite ML-DSA (signers.composite.jose) registers its JOSE names here. `sign_jws`
# accepts a signer whose algorithm carries a registered name; `verify_jws` hands a token
# with that ``alg`` and the caller's key source to the registered verifier, which returns
# (key with ``.kid``, algorithm) or raises TokenInvalid; `JWKS.from_dict` keeps JWKs whose
# ``alg`` is registered (`JWKS.extension_keys`) instead of skipping them. A registered
# name never shadows a built-in one, and none / HMAC names are refused.

ExtensionVerifier = Callable[["UnverifiedJWS", Any], tuple[Any, Any]]
_EXTENSIONS: dict[str, ExtensionVerifier] = {}


def register_jose_algorithm(name: str, verifier: ExtensionVerifier) -> None:
    """Let `sign_jws` / `verify_jws` handle ``alg`` `name` with `verifier`; ConfigError for a reserved name."""
    if name in _BY_JOSE_NAME or name.lower() == "none" or name.upper().startswith("HS"):
        raise ConfigError(f"JOSE algorithm name {name!r} is reserved")
    _EXTENSIONS[name] = verifier


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON (sorted keys, no whitespace, UTF-8, no NaN) for hashing.

    Identical to RFC 8785 (JCS) for strings, integers, booleans, null, lists and objects;
    floats use Python's shortest repr, which can differ from JCS for exponents, so hash
    amounts as integers or strings when another implementation must reproduce the hash.
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"value is not canonical-JSON serialisable: {e}") from e


# -- keys and key sets -------------------------------------------------------------------


@dataclass(frozen=True)
class JWK:
    """One public key of a key set: the key, its ``kid``, and the ``alg`` it is pinned to (if any)."""

    public_key: PublicKey
    kid: str
    alg: SignatureAlgorithm | None = None
    use: str | None = None

    @classmethod
    def of(cls, item: PublicKey | Signer | JWK, *, kid: str | None = None) -> JWK:
        """A JWK for a PublicKey (no alg pin), a Signer (pinned to its algorithm) or a JWK."""
        if isinstance(item, JWK):
            return item if kid is None else JWK(item.public_key, kid, item.alg, item.use)
        if isinstance(item, PublicKey):
            return cls(item, kid or item.key_id)
        public_key, algorithm = getattr(item, "public_key", None), getattr(item, "algorithm", None)
        if isinstance(public_key, PublicKey) and isinstance(algorithm, SignatureAlgorithm):
            return cls(public_key, kid or public_key.key_id, algorithm)
        raise ConfigError(f"not a key: {type(item).__name__} (give a PublicKey, Signer, JWK or JWKS)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JWK:
        """From a public JWK object; private members are refused (ConfigError)."""
        public_key = PublicKey.from_jwk(data)
        alg: SignatureAlgorithm | None = None
        if "alg" in data:
            alg = _BY_JOSE_NAME.get(str(data["alg"]))
            if alg is None or public_key.spec not in alg.specs:
                raise ConfigError(f"JWK alg {data['alg']!r} does not fit its {public_key.spec.value} key")
        kid = data.get("kid", public_key.key_id)
        use = data.get("use")
        if not isinstance(kid, str) or not kid or (use is not None and not isinstance(use, str)):
            raise ConfigError("JWK kid must be a non-empty string and use a string")
        return cls(public_key, kid, alg, use)

    def allows(self, alg: SignatureAlgorithm) -> bool:
        """True when a token signed with `alg` may be checked with this key."""
        if self.public_key.spec not in alg.specs:
            return False
        return self.alg is None or self.alg is alg

    def to_dict(self) -> dict[str, str]:
        jwk = self.public_key.to_jwk(kid=False, alg=self.alg)
        if self.use is not None:
            jwk["use"] = self.use
        jwk["kid"] = self.kid
        return jwk


class JWKS:
    """An immutable JSON Web Key Set: the keys a verifier trusts, looked up by ``kid``."""

    __slots__ = ("_keys", "extension_keys")

    def __init__(self, keys: Iterable[JWK] = (), extension_keys: Iterable[Mapping[str, Any]] = ()) -> None:
        # Public JWKs of registered extension algorithms (see register_jose_algorithm), as given.
        self.extension_keys: tuple[dict[str, Any], ...] = tuple(dict(k) for k in extension_keys)
        by_kid: dict[str, JWK] = {}
        for jwk in keys:
            if jwk.kid in by_kid and by_kid[jwk.kid] != jwk:
                raise ConfigError(f"two different keys share kid {jwk.kid!r}")
            by_kid[jwk.kid] = jwk
        self._keys = by_kid

    @classmethod
    def of(cls, *items: PublicKey | Signer | JWK | JWKS) -> JWKS:
        """A key set from Signers (pinned to their algorithm), PublicKeys, JWKs and other sets."""
        keys: list[JWK] = []
        extension_keys: list[Mapping[str, Any]] = []
        for item in items:
            keys.extend(item if isinstance(item, JWKS) else [JWK.of(item)])
            extension_keys.extend(item.extension_keys if isinstance(item, JWKS) else ())
        return cls(keys, extension_keys)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str | bytes) -> JWKS:
        """From ``{"keys": [...]}`` (or its JSON text).

        Keys a signature verifier cannot use are skipped: symmetric (``oct``) keys,
        encryption keys (``use: enc``) and key types we do not implement. A malformed
        key of a type we do implement is a ConfigError, not a silent skip.
        """
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as e:
                raise ConfigError("JWKS is not JSON") from e
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise ConfigError('JWKS must be a JSON object with a "keys" list')
        keys: list[JWK] = []
        extension_keys: list[Mapping[str, Any]] = []
        for entry in data["keys"]:
            if not isinstance(entry, Mapping):
                raise ConfigError("JWKS entry is not a JSON object")
            if entry.get("kty") == "oct" or entry.get("use") == "enc":
                continue
            if entry.get("alg") in _EXTENSIONS:
                extension_keys.append(entry)
                continue
            try:
                keys.append(JWK.from_dict(entry))
            except AlgorithmNotSupported:
                continue
        return cls(keys, extension_keys)

    @classmethod
    def load(cls, path: str | Path) -> JWKS:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read JWKS file {path}: {e}") from e
        return cls.from_dict(text)

    def get(self, kid: str) -> JWK | None:
        return self._keys.get(kid)

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [*(jwk.to_dict() for jwk in self._keys.values()), *self.extension_keys]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def write(self, path: str | Path) -> None:
        """Write the set as JSON (public keys only, so no special file mode)."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    def __iter__(self) -> Iterator[JWK]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __repr__(self) -> str:
        return f"JWKS({list(self._keys)!r})"


def as_jwks(keys: KeySource) -> JWKS:
    """Whatever the caller trusts, as a JWKS: a PublicKey, Signer, JWK, JWKS, JWKS/JWK dict, or a list of them."""
    if isinstance(keys, JWKS):
        return keys
    if isinstance(keys, PublicKey | JWK):
        return JWKS([JWK.of(keys)])
    if isinstance(keys, Mapping):
        if "keys" in keys:
            return JWKS.from_dict(keys)
        return JWKS([JWK.from_dict(keys)])
    if hasattr(keys, "public_key") and hasattr(keys, "algorithm"):
        return JWKS([JWK.of(keys)])  # type: ignore[arg-type]
    if isinstance(keys, Iterable) and not isinstance(keys, str | bytes):
        return JWKS.of(*(as_jwks(k) for k in keys))
    raise ConfigError(f"not a key source: {type(keys).__name__}")


# -- signing -----------------------------------------------------------------------------


def sign_jws(
    signer: Signer,
    payload: bytes,
    *,
    typ: str | None = None,
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """A compact JWS of `payload` signed by `signer`; ``kid`` is the signer's key_id.

    `alg` overrides the written name only where two names mean the same algorithm:
    ``"Ed25519"`` (RFC 9864) instead of the default ``"EdDSA"`` for an Ed25519 signer.
    """
    name = alg or signer.algorithm.jose_name
    if name in _EXTENSIONS:
        if signer.algorithm.jose_name != name:
            raise ConfigError(f"alg {name!r} is not a name for the signer's algorithm {signer.algorithm.value}")
    elif _BY_JOSE_NAME.get(name) is not signer.algorithm:
        raise ConfigError(f"alg {name!r} is not a name for the signer's algorithm {signer.algorithm.value}")
    protected: dict[str, Any] = {"alg": name}
    if typ is not None:
        protected["typ"] = typ
    protected["kid"] = signer.key_id
    for key, value in (header or {}).items():
        if key in ("alg", "kid", "b64", "crit"):
            raise ConfigError(f"header {key!r} is set by keyplane and cannot be overridden")
        protected[key] = value
    signing_input = f"{_b64json(protected)}.{b64url_encode(payload)}"
    signature = signer.sign(signing_input.encode("ascii"))
    if signer.algorithm.family is KeyFamily.EC:
        signature = ecdsa_der_to_raw(signature, curve_size(signer.public_key.spec))
    return f"{signing_input}.{b64url_encode(signature)}"


def sign_jwt(
    signer: Signer,
    claims: Mapping[str, Any],
    *,
    typ: str | None = "JWT",
    header: Mapping[str, Any] | None = None,
    alg: str | None = None,
) -> str:
    """A compact JWT with `claims` (a JSON object) signed by `signer`. Claims are written as given."""
    try:
        payload = json.dumps(dict(claims), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"claims are not JSON serialisable: {e}") from e
    return sign_jws(signer, payload.encode("utf-8"), typ=typ, header=header, alg=alg)


def _b64json(value: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# -- parsing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UnverifiedJWS:
    """A parsed compact JWS whose signature has NOT been checked: inspect, never trust."""

    header: dict[str, Any]
    payload: bytes
    signature: bytes
    signing_input: bytes

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    def claims(self) -> dict[str, Any]:
        """The payload as a JSON object (TokenInvalid if it is not one)."""
        return _json_object(self.payload, "payload")


def parse_jws(token: str | bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> UnverifiedJWS:
    """Split and decode a compact JWS. Raises TokenInvalid, and nothing else, on any input."""
    try:
        return _parse(token, max_size)
    except TokenInvalid:
        raise
    except Exception as e:  # the parser's promise: garbage in, TokenInvalid out, never a crash
        raise TokenInvalid(f"malformed token ({type(e).__name__})") from e


def _parse(token: str | bytes, max_size: int) -> UnverifiedJWS:
    if isinstance(token, bytes | bytearray):
        try:
            token = bytes(token[: max_size + 3]).decode("ascii")  # no need to decode more than the limit (+CRLF)
        except UnicodeDecodeError:
            raise TokenInvalid("malformed token: not ASCII") from None
    if not isinstance(token, str):
        raise TokenInvalid(f"malformed token: expected text, got {type(token).__name__}")
    token = token.strip()
    if len(token) > max_size:
        raise TokenInvalid(f"token is {len(token)} characters, more than the {max_size} allowed")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid(f"malformed token: a compact JWS has 3 parts, this has {len(parts)}")
    header_b64, payload_b64, signature_b64 = parts
    header = _json_object(_b64_segment(header_b64, "header"), "header")
    payload = _b64_segment(payload_b64, "payload")
    signature = _b64_segment(signature_b64, "signature")
    if not signature:
        raise TokenInvalid("malformed token: empty signature")
    return UnverifiedJWS(header, payload, signature, f"{header_b64}.{payload_b64}".encode("ascii"))


def _b64_segment(segment: str, what: str) -> bytes:
    try:
        data = b64url_decode(segment)
    except ValueError:
        raise TokenInvalid(f"malformed token: {what} is not base64url") from None
    # Only the canonical encoding: otherwise spare low bits make one token spellable many ways.
    if b64url_encode(data) != segment:
        raise TokenInvalid(f"malformed token: {what} is not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise TokenInvalid(f"duplicate member {key[:40]!r}")  # parsers disagree on which wins
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise TokenInvalid(f"non-standard JSON constant {name}")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except TokenInvalid as e:
        raise TokenInvalid(f"malformed token: {what}: {e}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise TokenInvalid(f"malformed token: {what} is not JSON") from e
    if not isinstance(value, dict):
        raise TokenInvalid(f"malformed token: {what} is not a JSON object")
    return value


# -- verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedJWS:
    """A JWS whose signature verified with `key` under `algorithm`."""

    header: dict[str, Any]
    payload: bytes
    key: JWK
    algorithm: SignatureAlgorithm


@dataclass(frozen=True)
class VerifiedJWT:
    """A JWT whose signature and claims were checked."""

    header: dict[str, Any]
    claims: dict[str, Any]
    key: JWK
    algorithm: SignatureAlgorithm

    @property
    def kid(self) -> str:
        return self.key.kid


def verify_jws(
    token: str | bytes,
    keys: KeySource,
    *,
    algorithms: Iterable[SignatureAlgorithm | str] | None = None,
    typ: str | None = None,
    understood_crit: Iterable[str] = (),
    max_size: int = DEFAULT_MAX_SIZE,
) -> VerifiedJWS:
    """Check a compact JWS's header and signature against trusted `keys`.

    `algorithms` narrows what is accepted further; `typ`, when given, must match the
    header's ``typ`` (case-insensitive, ``application/`` prefix optional, RFC 7515 4.1.9).
    """
    jws = parse_jws(token, max_size=max_size)
    header = jws.header
    extension = _EXTENSIONS.get(header["alg"]) if isinstance(header.get("alg"), str) else None
    if extension is not None:
        if algorithms is not None and header["alg"] not in {str(a) for a in algorithms}:
            raise TokenInvalid(f"algorithm mismatch: {header['alg']} is not among the accepted algorithms")
        _check_header(header, typ, frozenset(understood_crit))
        key, algorithm = extension(jws, keys)
        return VerifiedJWS(header, jws.payload, key, algorithm)
    key_set = as_jwks(keys)
    alg = algorithm_from_jose(header.get("alg"))
    if algorithms is not None:
        allowed = {SignatureAlgorithm.parse(a) for a in algorithms}
        if alg not in allowed:
            raise TokenInvalid(f"algorithm mismatch: {header['alg']} is not among the accepted algorithms")
    _check_header(header, typ, frozenset(understood_crit))
    for jwk in _candidates(key_set, header, alg):
        if _signature_ok(jwk.public_key, alg, jws.signature, jws.signing_input):
            return VerifiedJWS(header, jws.payload, jwk, alg)
    raise TokenInvalid("signature does not verify: the token was altered or signed by another key")


def _check_header(header: dict[str, Any], typ: str | None, understood: frozenset[str]) -> None:
    if "b64" in header and header["b64"] is not True:
        raise TokenInvalid("unencoded payload (b64=false, RFC 7797) is refused")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) and c for c in crit):
            raise TokenInvalid("header 'crit' must be a non-empty list of names")
        for name in crit:
            if name in _REGISTERED_HEADERS or name not in header:
                raise TokenInvalid(f"header 'crit' lists {name[:40]!r}, which it must not")
            if name not in understood:
                raise TokenInvalid(f"critical header {name[:40]!r} is not understood")
    if "kid" in header and not isinstance(header["kid"], str):
        raise TokenInvalid("header 'kid' is not a string")
    if "typ" in header and not isinstance(header["typ"], str):
        raise TokenInvalid("header 'typ' is not a string")
    if typ is not None:
        found = header.get("typ")
        if not isinstance(found, str) or _media_type(found) != _media_type(typ):
            raise TokenInvalid(f"wrong token type: expected typ {typ!r}, got {found!r}")


def _media_type(typ: str) -> str:
    lowered = typ.lower()
    return lowered[len("application/") :] if lowered.startswith("application/") else lowered


def _candidates(key_set: JWKS, header: dict[str, Any], alg: SignatureAlgorithm) -> list[JWK]:
    kid = header.get("kid")
    if kid is not None:
        jwk = key_set.get(kid)
        if jwk is None:
            raise TokenInvalid(f"kid {kid[:80]!r} is not in the trusted key set")
        if not jwk.allows(alg):
            pinned = jwk.alg.jose_name if jwk.alg else jwk.public_key.spec.value
            raise TokenInvalid(f"algorithm mismatch: token alg {header['alg']} but key {kid[:80]!r} is {pinned}")
        return [jwk]
    matching = [jwk for jwk in key_set if jwk.allows(alg)]
    if not matching:
        raise TokenInvalid(f"algorithm mismatch: no trusted key accepts alg {header['alg']}")
    return matching


def _signature_ok(public_key: PublicKey, alg: SignatureAlgorithm, signature: bytes, message: bytes) -> bool:
    try:
        if alg.family is KeyFamily.EC:
            if len(signature) != 2 * curve_size(public_key.spec):
                return False
            signature = ecdsa_raw_to_der(signature)
        public_key.verify(signature, message, alg)
    except (InvalidSignature, AlgorithmNotSupported):
        return False
    return True


def verify_jwt(
    token: str | bytes,
    keys: KeySource,
    *,
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    subject: str | None = None,
    typ: str | None = None,
    require: Iterable[str] = ("exp",),
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
    revocations: RevocationCheck | None = None,
    algorithms: Iterable[SignatureAlgorithm | str] | None = None,
    understood_crit: Iterable[str] = (),
    max_size: int = DEFAULT_MAX_SIZE,
) -> VerifiedJWT:
    """Verify a JWT: header and signature (as `verify_jws`), then its claims.

    - ``exp`` / ``nbf`` with `leeway` seconds -> TokenExpired; ``iat`` in the future -> TokenInvalid;
    - `audience`: the token's ``aud`` (string or list) must contain one of these; a token
      that names an audience is refused when the caller names none (RFC 7519 4.1.3);
    - `issuer` / `subject`: ``iss`` / ``sub`` must match;
    - `require`: claims that must be present (``exp`` by default: tokens must expire);
    - `revocations`: the ``jti`` must be present and not revoked -> TokenRevoked.
    """
    verified = verify_jws(
        token, keys, algorithms=algorithms, typ=typ, understood_crit=understood_crit, max_size=max_size
    )
    claims = _json_object(verified.payload, "payload")
    check_claims(
        claims, audience=audience, issuer=issuer, subject=subject, require=require, leeway=leeway, now=now
    )
    if revocations is not None:
        check_not_revoked(claims, revocations)
    return VerifiedJWT(verified.header, claims, verified.key, verified.algorithm)


def check_claims(
    claims: Mapping[str, Any],
    *,
    audience: str | Iterable[str] | None = None,
    issuer: str | Iterable[str] | None = None,
    subject: str | None = None,
    require: Iterable[str] = ("exp",),
    leeway: float = DEFAULT_LEEWAY,
    now: datetime | float | None = None,
) -> None:
    """The registered-claim checks of `verify_jwt`, on already-verified claims."""
    for name in require:
        if name not in claims:
            raise TokenInvalid(f"required claim {name!r} is missing")
    current = epoch(now)
    exp, nbf, iat = (_numeric_date(claims, n) for n in ("exp", "nbf", "iat"))
    if exp is not None and current > exp + leeway:
        raise TokenExpired(f"token expired at {_iso(exp)} (now {_iso(current)})")
    if nbf is not None and current + leeway < nbf:
        raise TokenExpired(f"token not valid before {_iso(nbf)} (now {_iso(current)})")
    if iat is not None and iat > current + leeway:
        raise TokenInvalid(f"token issued in the future ({_iso(iat)})")
    if issuer is not None:
        accepted = {issuer} if isinstance(issuer, str) else set(issuer)
        if claims.get("iss") not in accepted:
            raise TokenInvalid(f"issuer mismatch: token iss is {_short(claims.get('iss'))}")
    if subject is not None and claims.get("sub") != subject:
        raise TokenInvalid(f"subject mismatch: token sub is {_short(claims.get('sub'))}")
    _check_audience(claims, audience)


def _check_audience(claims: Mapping[str, Any], audience: str | Iterable[str] | None) -> None:
    if "aud" not in claims:
        if audience is not None:
            raise TokenInvalid("audience mismatch: the token names no audience")
        return
    aud = claims["aud"]
    token_aud = [aud] if isinstance(aud, str) else aud
    if not isinstance(token_aud, list) or not all(isinstance(a, str) for a in token_aud):
        raise TokenInvalid("claim 'aud' must be a string or a list of strings")
    if audience is None:
        raise TokenInvalid("audience mismatch: the token is for an audience, but the verifier named none")
    wanted = {audience} if isinstance(audience, str) else set(audience)
    if not wanted.intersection(token_aud):
        raise TokenInvalid(f"audience mismatch: token aud is {_short(aud)}")


def check_not_revoked(claims: Mapping[str, Any], revocations: RevocationCheck) -> None:
    """TokenRevoked if the claims' ``jti`` is revoked; TokenInvalid if there is no ``jti`` to check."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise TokenInvalid("token has no jti, so its revocation cannot be checked")
    record = revocations.get(jti, kind="jti")
    if record is not None:
        raise TokenRevoked(f"token {jti[:80]!r} is revoked ({record.reason}, at {record.revoked_at.isoformat()})")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenInvalid(f"claim {name!r} is not a NumericDate")
    return float(value)


def epoch(now: datetime | float | None) -> float:
    """Seconds since the epoch for `now` (a timezone-aware datetime, a number, or the current time)."""
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ConfigError("give a timezone-aware datetime (e.g. datetime.now(timezone.utc))")
        return now.timestamp()
    return float(now)


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{seconds:.0f}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
