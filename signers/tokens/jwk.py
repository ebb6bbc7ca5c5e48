"""JWK and JWKS: the public keys a verifier trusts, strictly imported (RFC 7517/7518, RFC 9964).

A key set is indexed once, by ``kid`` and by thumbprint (what `PublicKey.key_id` is), so a
lookup costs the same for one key or a thousand (`key_sources.as_jwks` caches parsed
documents). Keys of registered extension algorithms (composite ML-DSA: see
`jose_algorithms.register_jose_algorithm`) are kept beside the classical ones, parsed by
their algorithm's strict parser, in `JWKS.extension_keys` / `JWKS.extension_jwks`.

Import is strict where RFC 7518 is: EC coordinates have the full field size, RSA ``n`` has
no leading zero byte and ``e`` is minimal, AKP (ML-DSA) keys carry their case-sensitive
``alg``. Lenient parsers let one key be spelled many ways, which breaks thumbprints and
key pinning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from ..algorithms import KeySpec, SignatureAlgorithm
from ..errors import AlgorithmNotSupported, ConfigError
from ..json_text import json_object
from ..keys import PublicKey, b64url_decode
from ..signature_format import curve_size
from .jose_algorithms import JOSE_NAMES, algorithm_from_jose, jose_extension

if TYPE_CHECKING:
    from ..signer import Signer

__all__ = [
    "JOSE_NAMES",
    "JWK",
    "JWKS",
    "KeySource",
    "algorithm_from_jose",
    "public_key_from_jwk",
]

# AKP `alg` values (RFC 9964) are case-sensitive: "ml-dsa-65" is not ML-DSA-65.
_AKP_ALGS = {"ML-DSA-44": KeySpec.ML_DSA_44, "ML-DSA-65": KeySpec.ML_DSA_65, "ML-DSA-87": KeySpec.ML_DSA_87}
_EC_CURVES = {"P-256": KeySpec.P256, "P-384": KeySpec.P384, "secp256k1": KeySpec.SECP256K1}

KeySource = Union["PublicKey", "JWK", "JWKS", "Signer", Mapping[str, Any], Iterable[Any]]


def _member(data: Mapping[str, Any], name: str, kty: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"{kty} JWK member {name!r} is missing or not a string")
    try:
        return b64url_decode(value)
    except ValueError as e:
        raise ConfigError(f"{kty} JWK member {name!r} is not base64url") from e


def public_key_from_jwk(data: Mapping[str, Any] | str) -> PublicKey:
    """A public key from a JWK, refusing every non-canonical spelling RFC 7518 rules out.

    Raises ConfigError for malformed or private JWKs, short or padded EC coordinates, an
    RSA ``n`` with a leading zero byte or a non-minimal ``e``, an AKP key without ``alg``;
    AlgorithmNotSupported for key types, curves and AKP algorithms we do not implement.
    """
    data = json_object(data, "JWK")
    kty = data.get("kty")
    if kty == "EC":
        spec = _EC_CURVES.get(str(data.get("crv")))
        if spec is not None:
            size = curve_size(spec)
            for name in ("x", "y"):
                if len(_member(data, name, "EC")) != size:
                    raise ConfigError(f"EC JWK {name!r} must be exactly {size} bytes for {data['crv']} (RFC 7518 6.2.1)")
    elif kty == "RSA":
        modulus, exponent = _member(data, "n", "RSA"), _member(data, "e", "RSA")
        if not modulus or modulus[0] == 0:
            raise ConfigError("RSA JWK 'n' must not have a leading zero byte (RFC 7518 6.3.1.1)")
        if not exponent or exponent[0] == 0:
            raise ConfigError("RSA JWK 'e' must be the minimal big-endian encoding (RFC 7518 6.3.1.2)")
    elif kty == "AKP":
        alg = data.get("alg")
        if not isinstance(alg, str) or not alg:
            raise ConfigError("AKP JWK has no 'alg': RFC 9964 requires it (it says which ML-DSA parameter set)")
        if alg not in _AKP_ALGS:
            raise AlgorithmNotSupported(f"AKP JWK alg {alg[:40]!r} is not supported (alg values are case-sensitive)")
    elif kty == "OKP" and data.get("crv") == "Ed25519" and len(_member(data, "x", "OKP")) != 32:
        raise ConfigError("Ed25519 JWK 'x' must be exactly 32 bytes (RFC 8037)")
    return PublicKey.from_jwk(data)


@dataclass(frozen=True)
class JWK:
    """One public key of a key set: the key, its ``kid``, and the ``alg`` it is pinned to (if any).

    `alg_name` is the ``alg`` string written on export when two names mean one algorithm
    (``Ed25519``, RFC 9864, instead of ``EdDSA``): a JWKS for Ed25519-labelled tokens must
    say Ed25519 or strict verifiers (joserfc) refuse the match.
    """

    public_key: PublicKey
    kid: str
    alg: SignatureAlgorithm | None = None
    use: str | None = None
    alg_name: str | None = field(default=None, compare=False)  # a spelling: EdDSA and Ed25519 are one key

    @classmethod
    def of(cls, item: PublicKey | Signer | JWK, *, kid: str | None = None, alg: str | None = None) -> JWK:
        """A JWK for a PublicKey (no alg pin), a Signer (pinned to its algorithm) or a JWK.

        `alg` names the algorithm to pin and write (``"Ed25519"`` or ``"EdDSA"`` for an
        Ed25519 key). Raises ConfigError for anything else, or an alg the key cannot use.
        """
        if isinstance(item, JWK):
            base = item if kid is None else JWK(item.public_key, kid, item.alg, item.use, item.alg_name)
        elif isinstance(item, PublicKey):
            base = cls(item, kid or item.key_id)
        else:
            public_key, algorithm = getattr(item, "public_key", None), getattr(item, "algorithm", None)
            if not (isinstance(public_key, PublicKey) and isinstance(algorithm, SignatureAlgorithm)):
                raise ConfigError(f"not a key: {type(item).__name__} (give a PublicKey, Signer, JWK or JWKS)")
            base = cls(public_key, kid or public_key.key_id, algorithm)
        if alg is None:
            return base
        pinned = JOSE_NAMES.get(alg)
        if pinned is None or base.public_key.spec not in pinned.specs or base.alg not in (None, pinned):
            raise ConfigError(f"alg {alg[:40]!r} does not fit key {base.kid[:60]!r}")
        return JWK(base.public_key, base.kid, pinned, base.use, alg)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JWK:
        """From a public JWK object, strictly (see `public_key_from_jwk`).

        Raises ConfigError for private members, malformed members, an ``alg`` that does
        not fit the key, or a bad ``kid`` / ``use``; AlgorithmNotSupported for key types
        we do not implement.
        """
        public_key = public_key_from_jwk(data)
        alg: SignatureAlgorithm | None = None
        alg_name: str | None = None
        if "alg" in data:
            alg_name = data["alg"] if isinstance(data["alg"], str) else None
            alg = JOSE_NAMES.get(alg_name or "")
            if alg is None or public_key.spec not in alg.specs:
                raise ConfigError(f"JWK alg {str(data['alg'])[:40]!r} does not fit its {public_key.spec.value} key")
        kid = data.get("kid", public_key.key_id)
        use = data.get("use")
        if not isinstance(kid, str) or not kid or (use is not None and not isinstance(use, str)):
            raise ConfigError("JWK kid must be a non-empty string and use a string")
        return cls(public_key, kid, alg, use, alg_name)

    def allows(self, alg: SignatureAlgorithm) -> bool:
        """True when a token signed with `alg` may be checked with this key."""
        if self.public_key.spec not in alg.specs:
            return False
        return self.alg is None or self.alg is alg

    def to_dict(self) -> dict[str, str]:
        """The public JWK (with ``kid``, ``alg`` when pinned, ``use`` when set)."""
        jwk = self.public_key.to_jwk(kid=False, alg=self.alg)
        if self.alg_name is not None:
            jwk["alg"] = self.alg_name
        if self.use is not None:
            jwk["use"] = self.use
        jwk["kid"] = self.kid
        return jwk


class JWKS:
    """An immutable JSON Web Key Set, indexed by ``kid`` and by key thumbprint."""

    __slots__ = ("_by_thumbprint", "_extensions", "_keys")

    def __init__(self, keys: Iterable[JWK] = (), extension_keys: Iterable[Mapping[str, Any]] = ()) -> None:
        """`extension_keys`: public JWKs of registered extension algorithms (kept as given, parsed strictly).

        Raises ConfigError when two different keys share a kid, or for an extension JWK
        whose ``alg`` is not registered or that its algorithm's parser refuses.
        """
        by_kid: dict[str, JWK] = {}
        by_thumbprint: dict[str, list[JWK]] = {}
        for jwk in keys:
            if jwk.kid in by_kid:
                if by_kid[jwk.kid] != jwk:
                    raise ConfigError(f"two different keys share kid {jwk.kid[:80]!r}")
                continue
            by_kid[jwk.kid] = jwk
            by_thumbprint.setdefault(jwk.public_key.key_id, []).append(jwk)
        self._keys = by_kid
        self._by_thumbprint = by_thumbprint
        self._extensions = _extension_entries(extension_keys, by_kid)

    @property
    def extension_keys(self) -> tuple[dict[str, Any], ...]:
        """The public JWKs of registered extension algorithms (composite ML-DSA ...), as given."""
        return tuple(dict(document) for document, _ in self._extensions)

    @property
    def extension_jwks(self) -> tuple[Any, ...]:
        """Those keys as their algorithm's parser made them (the dicts when it registered none)."""
        return tuple(parsed for _, parsed in self._extensions)

    @classmethod
    def of(cls, *items: PublicKey | Signer | JWK | JWKS, alg: str | None = None) -> JWKS:
        """A key set from Signers (pinned to their algorithm), PublicKeys, JWKs and other sets.

        `alg` pins and names the algorithm of every key given directly (``"Ed25519"`` for
        RFC 9864 tokens). Raises ConfigError for items that are not keys or an alg that
        does not fit one of them.
        """
        keys: list[JWK] = []
        extension_keys: list[Mapping[str, Any]] = []
        for item in items:
            keys.extend(item if isinstance(item, JWKS) else [JWK.of(item, alg=alg)])
            extension_keys.extend(item.extension_keys if isinstance(item, JWKS) else ())
        return cls(keys, extension_keys)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str | bytes) -> JWKS:
        """From ``{"keys": [...]}`` (or its JSON text).

        Keys a signature verifier cannot use are skipped: symmetric (``oct``) keys,
        encryption keys (``use: enc``) and key types we do not implement. Keys whose
        ``alg`` is a registered extension algorithm are kept in `extension_keys`. A
        malformed key of a type we do implement is a ConfigError, not a silent skip.
        """
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except (ValueError, RecursionError) as e:
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
            if jose_extension(entry.get("alg")) is not None:
                extension_keys.append(entry)
                continue
            try:
                keys.append(JWK.from_dict(entry))
            except AlgorithmNotSupported:
                continue
        return cls(keys, extension_keys)

    @classmethod
    def load(cls, path: str | Path) -> JWKS:
        """Read a JWKS file; ConfigError when it cannot be read or is not a JWKS."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read JWKS file {path}: {e}") from e
        return cls.from_dict(text)

    def get(self, kid: str) -> JWK | None:
        """The key with this kid, or None."""
        return self._keys.get(kid)

    def by_thumbprint(self, key_id: str) -> list[JWK]:
        """The keys whose public key has this thumbprint (`PublicKey.key_id`), whatever their kid."""
        return list(self._by_thumbprint.get(key_id, ()))

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        """``{"keys": [...]}`` (public keys only); raises nothing."""
        return {"keys": [*(jwk.to_dict() for jwk in self._keys.values()), *self.extension_keys]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def write(self, path: str | Path) -> None:
        """Write the set as JSON (public keys only, so no special file mode); ConfigError if it cannot."""
        try:
            Path(path).write_text(self.to_json() + "\n", encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write JWKS file {path}: {e.strerror}") from e

    def __iter__(self) -> Iterator[JWK]:
        """The classical keys (extension keys: `extension_jwks`)."""
        return iter(self._keys.values())

    def __len__(self) -> int:
        """How many classical keys (as `__iter__`)."""
        return len(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __repr__(self) -> str:
        extensions = [getattr(parsed, "kid", document.get("kid")) for document, parsed in self._extensions]
        return f"JWKS({list(self._keys)!r}" + (f", extension_keys={extensions!r})" if extensions else ")")


def _extension_entries(
    documents: Iterable[Mapping[str, Any]], classical: Mapping[str, JWK]
) -> tuple[tuple[dict[str, Any], Any], ...]:
    """(document, parsed key) for each extension JWK, deduplicated; ConfigError as `JWKS.__init__` says."""
    entries: dict[str, tuple[dict[str, Any], Any]] = {}
    for given in documents:
        document = dict(given)
        extension = jose_extension(document.get("alg"))
        if extension is None:
            raise ConfigError(f"JWK alg {str(document.get('alg'))[:40]!r} is not a registered JOSE algorithm")
        parsed = extension.parse_key(document) if extension.parse_key is not None else document
        kid = getattr(parsed, "kid", document.get("kid"))
        if not isinstance(kid, str) or not kid:
            raise ConfigError("extension JWK kid must be a non-empty string")
        if kid in classical or (kid in entries and entries[kid][1] != parsed):
            raise ConfigError(f"two different keys share kid {kid[:80]!r}")
        entries.setdefault(kid, (document, parsed))
    return tuple(entries.values())
