"""The KeyManagementService RPCs on the in-memory state, with the real service's rules."""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization

from signers.local_keys import generate_private_key

from .model import (
    ALGORITHMS,
    HASHES,
    ID,
    KEY,
    KEY_RING,
    MAX_DATA,
    VERSION,
    Abort,
    Alg,
    Code,
    Format,
    Key,
    Purpose,
    State,
    Version,
    crc32c,
    kms_v1,
    now,
    paged,
    sign_payload,
    state_filter,
)

T = TypeVar("T")


class Kms:
    """The service state and the RPC implementations (one lock: the emulator is for tests, not speed)."""

    def __init__(self, token: str | None, projects: Iterable[str] | None, pending_reads: int) -> None:
        self.token = token
        self.projects = frozenset(projects) if projects is not None else None
        self.pending_reads = pending_reads
        self.key_rings: dict[str, Any] = {}
        self.keys: dict[str, Key] = {}
        self.lock = threading.Lock()
        self.corrupt_next: str | None = None
        self.failures: list[Any] = []  # status codes to answer the next calls with, in order
        self.calls: dict[str, int] = {}

    # -- checks ------------------------------------------------------------------------------

    def authorize(self, method: str, metadata: Iterable[tuple[str, Any]], resource: str) -> None:
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise Abort(failure, f"injected {failure.name} (test hook)")
        if self.token is not None:
            sent = [v for k, v in metadata if k == "authorization"]
            expected = f"Bearer {self.token}"
            if not sent or not hmac.compare_digest(str(sent[0]).encode(), expected.encode()):
                raise Abort(Code.UNAUTHENTICATED, "Request had invalid authentication credentials.")
        project = resource.split("/")[1] if resource.startswith("projects/") and resource.count("/") >= 1 else ""
        if self.projects is not None and project not in self.projects:
            raise Abort(Code.PERMISSION_DENIED, f"Permission denied on resource project {project}.")

    def _take_corruption(self, *kinds: str) -> str | None:
        with self.lock:
            if self.corrupt_next in kinds:
                kind, self.corrupt_next = self.corrupt_next, None
                return kind
        return None

    def _key_ring(self, name: str) -> Any:
        _parsed(KEY_RING, "key ring", name)
        return _found(self.key_rings.get(name), "KeyRing", name)

    def _key(self, name: str) -> Key:
        self._key_ring(_parsed(KEY, "crypto key", name).group(1))
        return _found(self.keys.get(name), "CryptoKey", name)

    def _version(self, name: str) -> Version:
        m = _parsed(VERSION, "crypto key version", name)
        return _found(self._key(m.group(1)).versions.get(int(m.group(2))), "CryptoKeyVersion", name)

    def _enabled(self, name: str) -> Version:
        version = self._version(name)
        state = version.current_state()
        if state != State.ENABLED:
            raise Abort(Code.FAILED_PRECONDITION, f"{name} is not enabled, current state is: {State(state).name}.")
        return version

    # -- key rings -------------------------------------------------------------------------------

    def CreateKeyRing(self, req: Any) -> Any:
        if not ID.match(req.key_ring_id):
            raise Abort(Code.INVALID_ARGUMENT, "key_ring_id must match [a-zA-Z0-9_-]{1,63}")
        name = f"{req.parent}/keyRings/{req.key_ring_id}"
        if not KEY_RING.match(name):
            raise Abort(Code.INVALID_ARGUMENT, f"invalid parent {req.parent!r}")
        with self.lock:
            if name in self.key_rings:
                raise Abort(Code.ALREADY_EXISTS, f"KeyRing {name} already exists.")
            self.key_rings[name] = kms_v1.KeyRing(name=name, create_time=now())
            return self.key_rings[name]

    def GetKeyRing(self, req: Any) -> Any:
        with self.lock:
            return self._key_ring(req.name)

    # -- crypto keys -----------------------------------------------------------------------------

    def CreateCryptoKey(self, req: Any) -> Any:
        if not ID.match(req.crypto_key_id):
            raise Abort(Code.INVALID_ARGUMENT, "crypto_key_id must match [a-zA-Z0-9_-]{1,63}")
        template = req.crypto_key.version_template
        if req.crypto_key.purpose != Purpose.ASYMMETRIC_SIGN:
            raise Abort(Code.INVALID_ARGUMENT, "this emulator only implements ASYMMETRIC_SIGN keys")
        algorithm = Alg(template.algorithm).name
        if algorithm not in ALGORITHMS:
            raise Abort(Code.INVALID_ARGUMENT, f"algorithm {algorithm} is not valid for purpose ASYMMETRIC_SIGN")
        name = f"{req.parent}/cryptoKeys/{req.crypto_key_id}"
        with self.lock:
            self._key_ring(req.parent)
            if name in self.keys:
                raise Abort(Code.ALREADY_EXISTS, f"CryptoKey {name} already exists.")
            proto = kms_v1.CryptoKey(
                name=name, purpose=Purpose.ASYMMETRIC_SIGN, create_time=now(), labels=dict(req.crypto_key.labels),
                version_template=kms_v1.CryptoKeyVersionTemplate(
                    algorithm=template.algorithm, protection_level=kms_v1.ProtectionLevel.SOFTWARE),
                destroy_scheduled_duration=timedelta(days=30),
            )
            key = self.keys[name] = Key(proto)
        if not req.skip_initial_version_creation:
            self._new_version(key, algorithm)
        return proto

    def GetCryptoKey(self, req: Any) -> Any:
        with self.lock:
            return self._key(req.name).proto

    def ListCryptoKeys(self, req: Any) -> Any:
        with self.lock:
            self._key_ring(req.parent)
            keys = [k.proto for n, k in sorted(self.keys.items()) if n.startswith(req.parent + "/cryptoKeys/")]
        page, token = paged(keys, req.page_size, req.page_token)
        return kms_v1.ListCryptoKeysResponse(crypto_keys=page, next_page_token=token, total_size=len(keys))

    # -- versions --------------------------------------------------------------------------------

    def _new_version(self, key: Key, algorithm: str) -> Version:
        private = generate_private_key(ALGORITHMS[algorithm].spec)  # outside the lock: RSA takes a while
        with self.lock:
            number = max(key.versions, default=0) + 1
            version = Version(f"{key.name}/cryptoKeyVersions/{number}", algorithm, private, now(),
                               reads_until_enabled=self.pending_reads)
            key.versions[number] = version
            return version

    def CreateCryptoKeyVersion(self, req: Any) -> Any:
        with self.lock:
            key = self._key(req.parent)
        version = self._new_version(key, Alg(key.proto.version_template.algorithm).name)
        with self.lock:
            return version.to_proto()

    def GetCryptoKeyVersion(self, req: Any) -> Any:
        with self.lock:
            return self._version(req.name).to_proto()

    def ListCryptoKeyVersions(self, req: Any) -> Any:
        wanted = state_filter(req.filter)
        with self.lock:
            key = self._key(req.parent)
            versions = [v.to_proto() for _, v in sorted(key.versions.items())]
        versions = [v for v in versions if wanted is None or v.state == wanted]
        page, token = paged(versions, req.page_size, req.page_token)
        return kms_v1.ListCryptoKeyVersionsResponse(crypto_key_versions=page, next_page_token=token,
                                                    total_size=len(versions))

    def UpdateCryptoKeyVersion(self, req: Any) -> Any:
        """Only ``state`` is updatable here, and only ENABLED <-> DISABLED, as in the real service."""
        paths = list(req.update_mask.paths)
        if paths != ["state"]:
            raise Abort(Code.INVALID_ARGUMENT, f"update_mask must be ['state'] here, not {paths}")
        wanted = req.crypto_key_version.state
        if wanted not in (State.ENABLED, State.DISABLED):
            raise Abort(Code.INVALID_ARGUMENT, f"state can only be set to ENABLED or DISABLED, not {State(wanted).name}")
        with self.lock:
            version = self._version(req.crypto_key_version.name)
            current = version.current_state()
            if current not in (State.ENABLED, State.DISABLED):
                raise Abort(Code.FAILED_PRECONDITION,
                            f"{version.name} cannot be updated in state {State(current).name}.")
            version.state = wanted
            return version.to_proto()

    def DestroyCryptoKeyVersion(self, req: Any) -> Any:
        with self.lock:
            version = self._version(req.name)
            if version.current_state() not in (State.ENABLED, State.DISABLED):
                raise Abort(Code.FAILED_PRECONDITION,
                             f"{req.name} cannot be destroyed in state {State(version.state).name}.")
            version.state = State.DESTROY_SCHEDULED
            version.destroy_time = now() + timedelta(days=30)
            return version.to_proto()

    # -- public keys and signing -----------------------------------------------------------------

    def GetPublicKey(self, req: Any) -> Any:
        with self.lock:
            version = self._enabled(req.name)
        info = ALGORITHMS[version.algorithm]
        public = version.key.public_key()
        fmt = Format(req.public_key_format)
        pq = info.spec.family.name == "MLDSA"
        if pq and fmt != Format.NIST_PQC:
            raise Abort(Code.INVALID_ARGUMENT, "public_key_format NIST_PQC is required for post-quantum keys")
        if not pq and fmt == Format.NIST_PQC:
            raise Abort(Code.INVALID_ARGUMENT, "public_key_format NIST_PQC is only valid for post-quantum keys")
        answer = kms_v1.PublicKey(name=version.name, algorithm=Alg[version.algorithm],
                                  protection_level=kms_v1.ProtectionLevel.SOFTWARE)
        if fmt in (Format.PUBLIC_KEY_FORMAT_UNSPECIFIED, Format.PEM):
            pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            answer.pem, answer.pem_crc32c = pem.decode("ascii"), crc32c(pem)
            data = pem
        elif fmt == Format.DER:
            data = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        elif fmt == Format.NIST_PQC:
            data = public.public_bytes_raw()  # type: ignore[union-attr]
        else:
            raise Abort(Code.INVALID_ARGUMENT, f"public_key_format {fmt.name} is not valid for this key")
        if fmt != Format.PUBLIC_KEY_FORMAT_UNSPECIFIED:
            answer.public_key_format = fmt
            answer.public_key = kms_v1.ChecksummedData(data=data, crc32c_checksum=crc32c(data))
        kind = self._take_corruption("public_key_crc32c", "crc32c")
        if kind:
            answer.pem_crc32c = (answer.pem_crc32c or 0) ^ 1
            if answer.public_key.data:
                answer.public_key.crc32c_checksum = answer.public_key.crc32c_checksum ^ 1
        return answer

    def AsymmetricSign(self, req: Any) -> Any:
        with self.lock:
            version = self._enabled(req.name)
        info = ALGORITHMS[version.algorithm]
        has_digest = kms_v1.AsymmetricSignRequest.pb(req).HasField("digest")
        if info.input == "data":
            if has_digest:
                raise Abort(Code.INVALID_ARGUMENT, f"{version.algorithm} signs data, not a digest")
            payload = bytes(req.data)
            if len(payload) > MAX_DATA:
                raise Abort(Code.INVALID_ARGUMENT, f"data is larger than {MAX_DATA} bytes")
            sent_crc, verified = req.data_crc32c, "data"
        else:
            if req.data:
                raise Abort(Code.INVALID_ARGUMENT, f"{version.algorithm} signs a digest, not data")
            field_name = "external_mu" if info.input == "mu" else info.hash
            payload = bytes(getattr(req.digest, field_name or ""))
            wanted = 64 if info.input == "mu" else HASHES[info.hash or ""].digest_size
            if len(payload) != wanted:
                raise Abort(Code.INVALID_ARGUMENT,
                             f"{version.algorithm} needs digest.{field_name} of {wanted} bytes")
            sent_crc, verified = req.digest_crc32c, "digest"
        if self._take_corruption("request") and payload:  # as if a request byte flipped on the wire
            payload = bytes([payload[0] ^ 1]) + payload[1:]
        if sent_crc is not None and sent_crc != crc32c(payload):
            raise Abort(Code.INVALID_ARGUMENT, f"The checksum in field {verified}_crc32c did not match the "
                                                 "data computed by the server.")
        signature = sign_payload(version.key, info, payload)
        answer = kms_v1.AsymmetricSignResponse(
            signature=signature, signature_crc32c=crc32c(signature), name=version.name,
            protection_level=kms_v1.ProtectionLevel.SOFTWARE,
        )
        setattr(answer, f"verified_{verified}_crc32c", sent_crc is not None)
        kind = self._take_corruption("crc32c", "signature_crc32c", "verified_crc32c", "name", "signature")
        if kind in ("crc32c", "signature_crc32c"):
            answer.signature_crc32c = answer.signature_crc32c ^ 1
        elif kind == "verified_crc32c":
            setattr(answer, f"verified_{verified}_crc32c", False)
        elif kind == "name":
            answer.name = version.name.rsplit("/", 1)[0] + "/cryptoKeyVersions/999"
        elif kind == "signature":  # damaged in transit after the checksum was computed
            answer.signature = bytes([signature[0] ^ 1]) + signature[1:]
        return answer


def _parsed(pattern: re.Pattern[str], what: str, name: str) -> re.Match[str]:
    """`name` matched by `pattern`, else INVALID_ARGUMENT in Cloud KMS's words (``invalid <what> name``)."""
    m = pattern.match(name)
    if not m:
        raise Abort(Code.INVALID_ARGUMENT, f"invalid {what} name {name!r}")
    return m


def _found(item: T | None, kind: str, name: str) -> T:
    """`item`, else NOT_FOUND in Cloud KMS's words (``<Kind> <name> not found.``)."""
    if item is None:
        raise Abort(Code.NOT_FOUND, f"{kind} {name} not found.")
    return item
