"""The keys API's REST operations on one vault: routing, permissions, JSON shapes, signing."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from .model import (
    CURVES,
    EC_OPS,
    HASHES,
    KNOWN_OPS,
    NAME,
    PAGE_SIZE,
    RECOVERABLE_DAYS,
    RSA_OPS,
    RSA_SIZES,
    Deleted,
    Fail,
    KeyVersion,
    Vault,
    b64url,
    int_bytes,
    unb64url,
)

if TYPE_CHECKING:  # the server imports this module
    from .server import Server

# -- the REST operations -----------------------------------------------------------------


def route(
    server: Server, method: str, seg: list[str], query: dict[str, str], body: bytes, perms: frozenset[str]
) -> tuple[int, Any]:
    """(status, JSON payload) for one authenticated request; Fail for every error answer."""
    vault = server.vault
    ops = _Ops(server.base_url, vault, perms, query)
    request = _json(body) if body else {}
    n = len(seg)
    if n == 1 and seg[0] == "keys" and method == "GET":
        return 200, ops.list_keys()
    if n == 1 and seg[0] == "deletedkeys" and method == "GET":
        return 200, ops.list_deleted()
    if n >= 2 and seg[0] == "keys":
        name = seg[1]
        if n == 2 and method == "GET":
            return 200, ops.get(name, None)
        if n == 2 and method == "DELETE":
            return 200, ops.delete(name)
        if n == 2 and method == "PUT":
            return 200, ops.import_key(name, request)
        if n in (2, 3) and method == "PATCH":
            return 200, ops.update(name, seg[2] if n == 3 else None, request)
        if n == 3 and seg[2] == "create" and method == "POST":
            return 200, ops.create(name, request)
        if n == 3 and seg[2] == "rotate" and method == "POST":
            return 200, ops.rotate(name)
        if n == 3 and seg[2] == "versions" and method == "GET":
            return 200, ops.list_versions(name)
        if n == 3 and method == "GET":
            return 200, ops.get(name, seg[2] or None)
        if n == 4 and seg[3] == "sign" and method == "POST":
            return 200, ops.sign(name, seg[2], request)
        if n == 4 and seg[3] == "verify" and method == "POST":
            return 200, ops.verify(name, seg[2], request)
    if n == 2 and seg[0] == "deletedkeys":
        if method == "GET":
            return 200, ops.get_deleted(seg[1])
        if method == "DELETE":
            ops.purge(seg[1])
            return 204, None
    if n == 3 and seg[0] == "deletedkeys" and seg[2] == "recover" and method == "POST":
        return 200, ops.recover(seg[1])
    raise Fail(400, "BadParameter", f"The operation {method} /{'/'.join(seg)} is not supported by this emulator.")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise Fail(400, "BadParameter", "The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise Fail(400, "BadParameter", "The request body must be a JSON object.")
    return value


class _Ops:
    """The operations of the keys API on one vault, each checking its Key Vault permission."""

    def __init__(self, base_url: str, vault: Vault, perms: frozenset[str], query: dict[str, str]) -> None:
        self.base = base_url
        self.vault = vault
        self.perms = perms
        self.query = query

    def _need(self, permission: str) -> None:
        if permission not in self.perms:
            raise Fail(
                403,
                "Forbidden",
                f"The user, group or application does not have keys {permission} permission on key vault "
                f"'{self.base}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
            )

    # -- reading -------------------------------------------------------------------------

    def _versions(self, name: str) -> list[KeyVersion]:
        versions = self.vault.keys.get(name)
        if not versions:
            raise Fail(404, "KeyNotFound", f"A key with (name/id) {name} was not found in this key vault. If you "
                        "recently deleted this key you may be able to recover it using the correct recovery command. "
                        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")
        return versions

    def _version(self, name: str, version: str | None) -> KeyVersion:
        versions = self._versions(name)
        if not version:
            return versions[-1]
        for v in versions:
            if v.version == version:
                return v
        raise Fail(404, "KeyNotFound", f"A key with (name/id) {name}/{version} was not found in this key vault. "
                    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")

    def get(self, name: str, version: str | None) -> dict[str, Any]:
        self._need("get")
        with self.vault.lock:
            key = self._version(name, version)
            if not key.enabled:  # as the service answers: a disabled version's key is not handed out
                raise Fail(403, "Forbidden", "Operation get is not allowed on a disabled key.")
            return self._bundle(key)

    def list_keys(self) -> dict[str, Any]:
        self._need("list")
        with self.vault.lock:
            items = [self._item(versions[-1], versioned=False) for _, versions in sorted(self.vault.keys.items())]
        return self._page(items, "keys")

    def list_versions(self, name: str) -> dict[str, Any]:
        self._need("list")
        with self.vault.lock:
            items = [self._item(v, versioned=True) for v in self._versions(name)]
        return self._page(items, f"keys/{name}/versions")

    def list_deleted(self) -> dict[str, Any]:
        self._need("list")
        with self.vault.lock:
            items = [
                {**self._item(d.versions[-1], versioned=False), **self._deletion(name, d)}
                for name, d in sorted(self.vault.deleted.items())
            ]
        return self._page(items, "deletedkeys")

    def _page(self, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
        """One page of a list, with Key Vault's `nextLink` (an absolute URL with `$skiptoken`) when more remain."""
        try:
            size = min(int(self.query.get("maxresults") or PAGE_SIZE), PAGE_SIZE)
            start = int(self.query.get("$skiptoken") or 0)
        except ValueError:
            raise Fail(400, "BadParameter", "maxresults and $skiptoken must be integers.") from None
        if size < 1:
            raise Fail(400, "BadParameter", "maxresults must be between 1 and 25.")
        page = items[start : start + size]
        more = start + size < len(items)
        next_link = (
            f"{self.base}/{path}?api-version={self.query['api-version']}&$skiptoken={start + size}&maxresults={size}"
            if more
            else None
        )
        return {"value": page, "nextLink": next_link}

    # -- writing -------------------------------------------------------------------------

    def create(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        self._need("create")
        return self._create(name, request)

    def _create(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        if not NAME.match(name):
            raise Fail(400, "BadParameter", "The key name must be 1-127 characters of 0-9, a-z, A-Z and '-'.")
        kty = request.get("kty")
        if self.vault.managed_hsm and kty in ("EC", "RSA"):
            raise Fail(400, "BadParameter", f"Key type {kty} is not supported by Managed HSM; use {kty}-HSM.")
        if kty in ("EC", "EC-HSM"):
            crv = request.get("crv") or "P-256"
            if crv not in CURVES:
                raise Fail(400, "BadParameter", f"The curve name {crv} is not supported.")
            private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ec.generate_private_key(CURVES[crv][0])
            default_ops = EC_OPS
        elif kty in ("RSA", "RSA-HSM"):
            size = request.get("key_size") or 2048
            exponent = request.get("public_exponent") or 65537
            if size not in RSA_SIZES or exponent not in (3, 65537):
                raise Fail(400, "BadParameter", f"RSA key size {size} / exponent {exponent} is not supported.")
            private_key = rsa.generate_private_key(public_exponent=exponent, key_size=size)
            default_ops = RSA_OPS
        else:
            raise Fail(400, "BadParameter", f"The key type {kty!r} is not supported for sign/verify keys.")
        key_ops = request.get("key_ops") or list(default_ops)
        if not isinstance(key_ops, list) or not set(key_ops) <= KNOWN_OPS:
            raise Fail(400, "BadParameter", "key_ops contains an unknown operation.")
        attributes = request.get("attributes") or {}
        tags = request.get("tags")
        version = KeyVersion(
            name=name,
            version=uuid.uuid4().hex,
            kty=kty,
            private_key=private_key,
            key_ops=list(key_ops),
            enabled=attributes.get("enabled", True) is not False,
            not_before=attributes.get("nbf"),
            expires=attributes.get("exp"),
            tags=dict(tags) if isinstance(tags, dict) else None,
        )
        with self.vault.lock:
            if name in self.vault.deleted:
                raise Fail(409, "Conflict", f"Key {name} is currently in a deleted but recoverable state, and its "
                            "name cannot be reused; in this state, the key can only be recovered or purged.")
            self.vault.keys.setdefault(name, []).append(version)  # an existing name gets a new version
            return self._bundle(version)

    def import_key(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """PUT /keys/{name}: a new version holding the private JWK given (EC crv/x/y/d or RSA n/e/d/p/q/dp/dq/qi)."""
        self._need("import")
        if not NAME.match(name):
            raise Fail(400, "BadParameter", "The key name must be 1-127 characters of 0-9, a-z, A-Z and '-'.")
        jwk = request.get("key")
        if not isinstance(jwk, dict):
            raise Fail(400, "BadParameter", "Property 'key' is required.")
        kty = str(jwk.get("kty", "")).removesuffix("-HSM")
        private_key = _private_from_jwk(kty, jwk)
        hsm = request.get("hsm") is True or self.vault.managed_hsm
        key_ops = jwk.get("key_ops") or list(EC_OPS if kty == "EC" else RSA_OPS)
        if not isinstance(key_ops, list) or not set(key_ops) <= KNOWN_OPS:
            raise Fail(400, "BadParameter", "key_ops contains an unknown operation.")
        attributes = request.get("attributes") or {}
        tags = request.get("tags")
        version = KeyVersion(
            name=name, version=uuid.uuid4().hex, kty=f"{kty}-HSM" if hsm else kty, private_key=private_key,
            key_ops=list(key_ops), enabled=attributes.get("enabled", True) is not False,
            not_before=attributes.get("nbf"), expires=attributes.get("exp"),
            tags=dict(tags) if isinstance(tags, dict) else None,
        )
        with self.vault.lock:
            if name in self.vault.deleted:
                raise Fail(409, "Conflict", f"Key {name} is currently in a deleted but recoverable state, and its "
                           "name cannot be reused; in this state, the key can only be recovered or purged.")
            self.vault.keys.setdefault(name, []).append(version)
            return self._bundle(version)

    def update(self, name: str, version: str | None, request: dict[str, Any]) -> dict[str, Any]:
        """PATCH /keys/{name}/{version}: attributes (enabled, nbf, exp), tags and key_ops of one version."""
        self._need("update")
        attributes = request.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise Fail(400, "BadParameter", "Property 'attributes' must be an object.")
        with self.vault.lock:
            key = self._version(name, version)
            if "enabled" in attributes:
                if not isinstance(attributes["enabled"], bool):
                    raise Fail(400, "BadParameter", "Property 'attributes.enabled' must be a boolean.")
                key.enabled = attributes["enabled"]
            if "nbf" in attributes:
                key.not_before = attributes["nbf"]
            if "exp" in attributes:
                key.expires = attributes["exp"]
            if isinstance(request.get("tags"), dict):
                key.tags = dict(request["tags"])
            if isinstance(request.get("key_ops"), list):
                if not set(request["key_ops"]) <= KNOWN_OPS:
                    raise Fail(400, "BadParameter", "key_ops contains an unknown operation.")
                key.key_ops = list(request["key_ops"])
            return self._bundle(key)

    def rotate(self, name: str) -> dict[str, Any]:
        """A new version with the current version's type, size/curve, operations and tags."""
        self._need("rotate")
        with self.vault.lock:
            current = self._version(name, None)
        request: dict[str, Any] = {"kty": current.kty, "key_ops": current.key_ops, "tags": current.tags}
        if current.curve:
            request["crv"] = current.curve
        else:
            request["key_size"] = current.private_key.key_size
        return self._create(name, request)  # rotation needs keys/rotate, not keys/create

    def delete(self, name: str) -> dict[str, Any]:
        self._need("delete")
        with self.vault.lock:
            versions = self._versions(name)
            record = Deleted(versions, int(time.time()))
            del self.vault.keys[name]
            self.vault.deleted[name] = record
            return {**self._bundle(versions[-1]), **self._deletion(name, record)}

    def get_deleted(self, name: str) -> dict[str, Any]:
        self._need("get")
        with self.vault.lock:
            record = self._deleted(name)
            return {**self._bundle(record.versions[-1]), **self._deletion(name, record)}

    def purge(self, name: str) -> None:
        self._need("purge")
        with self.vault.lock:
            self._deleted(name)
            del self.vault.deleted[name]

    def recover(self, name: str) -> dict[str, Any]:
        self._need("recover")
        with self.vault.lock:
            record = self._deleted(name)
            if name in self.vault.keys:
                raise Fail(409, "Conflict", f"Key {name} already exists.")
            del self.vault.deleted[name]
            self.vault.keys[name] = record.versions
            return self._bundle(record.versions[-1])

    def _deleted(self, name: str) -> Deleted:
        record = self.vault.deleted.get(name)
        if record is None:
            raise Fail(404, "KeyNotFound", f"Deleted Key not found: {name}")
        return record

    # -- cryptography --------------------------------------------------------------------

    def _usable(self, name: str, version: str, operation: str) -> KeyVersion:
        self._need(operation)
        with self.vault.lock:
            key = self._version(name, version)
        if operation not in key.key_ops:
            raise Fail(403, "Forbidden", f"Operation {operation} is not permitted on this key.")
        if not key.enabled:
            raise Fail(403, "Forbidden", f"Operation {operation} is not allowed on a disabled key.")
        now = time.time()
        if (key.not_before and now < key.not_before) or (key.expires and now >= key.expires):
            raise Fail(403, "Forbidden", f"Operation {operation} is not allowed outside the key's validity period.")
        return key

    def sign(self, name: str, version: str, request: dict[str, Any]) -> dict[str, Any]:
        key = self._usable(name, version, "sign")
        alg = request.get("alg")
        digest = unb64url(request.get("value"))
        h = _check_alg(key, alg, digest)
        private = key.private_key
        if isinstance(private, ec.EllipticCurvePrivateKey):
            der = private.sign(digest, ec.ECDSA(utils.Prehashed(h)))
            r, s = utils.decode_dss_signature(der)
            size = CURVES[key.curve or ""][2]
            signature = int_bytes(r, size) + int_bytes(s, size)  # Key Vault returns raw r||s (JWS form)
        else:
            signature = private.sign(digest, _rsa_padding(str(alg), h), utils.Prehashed(h))
        return {"kid": self._kid(key), "value": b64url(signature)}

    def verify(self, name: str, version: str, request: dict[str, Any]) -> dict[str, Any]:
        key = self._usable(name, version, "verify")
        alg = request.get("alg")
        digest = unb64url(request.get("digest"))
        signature = unb64url(request.get("value"))
        h = _check_alg(key, alg, digest)
        public = key.private_key.public_key()
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                half = len(signature) // 2
                der = utils.encode_dss_signature(
                    int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
                )
                public.verify(der, digest, ec.ECDSA(utils.Prehashed(h)))
            else:
                public.verify(signature, digest, _rsa_padding(str(alg), h), utils.Prehashed(h))
        except (InvalidSignature, ValueError):
            return {"value": False}
        return {"value": True}

    # -- JSON shapes ---------------------------------------------------------------------

    def _kid(self, key: KeyVersion, versioned: bool = True) -> str:
        return f"{self.base}/keys/{key.name}/{key.version}" if versioned else f"{self.base}/keys/{key.name}"

    def _attributes(self, key: KeyVersion) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": key.enabled}
        if key.not_before is not None:
            attributes["nbf"] = key.not_before
        if key.expires is not None:
            attributes["exp"] = key.expires
        attributes.update(
            created=key.created,
            updated=key.created,
            recoveryLevel="Recoverable+Purgeable",
            recoverableDays=RECOVERABLE_DAYS,
            exportable=False,
        )
        if key.kty.endswith("-HSM"):
            attributes["hsmPlatform"] = "2" if self.vault.managed_hsm else "1"
        return attributes

    def _bundle(self, key: KeyVersion) -> dict[str, Any]:
        """A KeyBundle: the public JWK (kid, kty, key_ops, n/e or crv/x/y) and attributes."""
        jwk: dict[str, Any] = {"kid": self._kid(key), "kty": key.kty, "key_ops": list(key.key_ops)}
        public = key.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            size = CURVES[key.curve or ""][2]
            jwk.update(crv=key.curve, x=b64url(int_bytes(numbers.x, size)), y=b64url(int_bytes(numbers.y, size)))
        else:
            rsa_numbers = public.public_numbers()
            jwk.update(n=b64url(int_bytes(rsa_numbers.n)), e=b64url(int_bytes(rsa_numbers.e)))
        bundle: dict[str, Any] = {"key": jwk, "attributes": self._attributes(key)}
        if key.tags:
            bundle["tags"] = dict(key.tags)
        return bundle

    def _item(self, key: KeyVersion, versioned: bool) -> dict[str, Any]:
        """A KeyItem of a list: kid (without version for `list keys`), attributes, tags."""
        item: dict[str, Any] = {"kid": self._kid(key, versioned), "attributes": self._attributes(key)}
        if key.tags:
            item["tags"] = dict(key.tags)
        return item

    def _deletion(self, name: str, record: Deleted) -> dict[str, Any]:
        return {
            "recoveryId": f"{self.base}/deletedkeys/{name}",
            "deletedDate": record.deleted_date,
            "scheduledPurgeDate": record.deleted_date + RECOVERABLE_DAYS * 86400,
        }


def _private_from_jwk(kty: str, jwk: dict[str, Any]) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """The private key an import request's JWK holds; 400 BadParameter for anything inconsistent."""
    def number(name: str) -> int:
        return int.from_bytes(unb64url(jwk.get(name)), "big")

    try:
        if kty == "EC":
            crv = jwk.get("crv")
            if crv not in CURVES:
                raise Fail(400, "BadParameter", f"The curve name {crv} is not supported.")
            public = ec.EllipticCurvePublicNumbers(number("x"), number("y"), CURVES[crv][0])
            return ec.EllipticCurvePrivateNumbers(number("d"), public).private_key()
        if kty == "RSA":
            public_rsa = rsa.RSAPublicNumbers(number("e"), number("n"))
            if public_rsa.n.bit_length() not in RSA_SIZES:
                raise Fail(400, "BadParameter", "RSA key size is not supported.")
            return rsa.RSAPrivateNumbers(number("p"), number("q"), number("d"), number("dp"), number("dq"),
                                         number("qi"), public_rsa).private_key()
    except ValueError:
        raise Fail(400, "BadParameter", "The key material is not a valid private key.") from None
    raise Fail(400, "BadParameter", f"The key type {kty!r} cannot be imported as a sign/verify key.")


def _check_alg(key: KeyVersion, alg: Any, digest: bytes) -> hashes.HashAlgorithm:
    """The hash an algorithm implies, after checking it fits the key and the digest length (as Key Vault does)."""
    if not isinstance(alg, str):
        raise Fail(400, "BadParameter", "Property 'alg' is required.")
    if key.curve is not None:
        if alg != CURVES[key.curve][1]:
            raise Fail(400, "BadParameter", f"Algorithm {alg} is not valid for a key with curve {key.curve}.")
    elif not re.fullmatch(r"(PS|RS)(256|384|512)", alg):
        raise Fail(400, "BadParameter", f"Algorithm {alg} is not valid for an RSA key.")
    hash_algorithm = HASHES[alg[2:]]()
    if len(digest) != hash_algorithm.digest_size:
        raise Fail(400, "BadParameter", f"Invalid length of the digest: {len(digest)} bytes for {alg}.")
    return hash_algorithm


def _rsa_padding(alg: str, h: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if alg.startswith("PS"):  # PSS with salt length = hash length, as Key Vault signs
        return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    return padding.PKCS1v15()

