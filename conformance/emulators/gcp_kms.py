"""A local Google Cloud KMS: the KeyManagementService gRPC API with real keys and signatures.

No Cloud KMS server runs outside Google, so the tests (and users without a cloud
project) point the real `google-cloud-kms` client at this one over a plaintext gRPC
channel on loopback. It implements what the gcpkms back end uses, with the real wire
messages (`google.cloud.kms_v1` types) and the real service's rules where a client could
notice them:

* resources: key rings, ASYMMETRIC_SIGN crypto keys, versions numbered from 1; a new
  version answers PENDING_GENERATION to its first read (as a real asymmetric version
  does for a moment), then ENABLED; destroying schedules destruction (30 days);
* AsymmetricSign: digest for ECDSA/RSA, data (at most 64 KiB) for Ed25519 and pure
  ML-DSA, ``digest.external_mu`` for the *_EXTERNAL_MU versions; request CRC32Cs checked
  (INVALID_ARGUMENT on mismatch) and echoed as ``verified_*_crc32c``; ``signature_crc32c``
  and ``name`` on every answer; GetPublicKey in PEM (classical) or NIST_PQC (ML-DSA, which
  has no PEM form in Cloud KMS) with CRC32Cs;
* statuses: NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION (version not enabled),
  INVALID_ARGUMENT, UNAUTHENTICATED (``authorization: Bearer`` missing or wrong when the
  emulator was started with a token) and PERMISSION_DENIED (a project outside ``projects``).

Keys live in memory only. Tests damage answers on purpose through the handle
(`EmulatorHandle.corrupt_next`) to prove the client checks integrity.
"""

from __future__ import annotations

import hmac
import re
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa, utils

from signers.algorithms import KeySpec
from signers.local_keys import PrivateKey, generate_private_key
from signers.sdk import require

grpc: Any = require("grpc", "gcp", "GCP KMS emulator")
google_crc32c: Any = require("google_crc32c", "gcp", "GCP KMS emulator")
kms_v1: Any = require("google.cloud.kms_v1", "gcp", "GCP KMS emulator")

__all__ = ["SERVICE", "EmulatorHandle", "serve_forever", "start"]

SERVICE = "google.cloud.kms.v1.KeyManagementService"
MAX_DATA = 64 * 1024  # AsymmetricSignRequest.data limit for SOFTWARE keys

_Alg = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
_State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
_Purpose = kms_v1.CryptoKey.CryptoKeyPurpose
_Format = kms_v1.PublicKey.PublicKeyFormat
_Code = grpc.StatusCode

_ID = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
_KEY_RING = re.compile(r"^projects/([^/]+)/locations/([^/]+)/keyRings/([^/]+)$")
_KEY = re.compile(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+)/cryptoKeys/([^/]+)$")
_VERSION = re.compile(r"^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)/cryptoKeyVersions/(\d+)$")


@dataclass(frozen=True)
class _AlgInfo:
    """How one Cloud KMS signing algorithm signs: key spec, and which request field it takes."""

    spec: KeySpec
    input: str  # "digest" (hash name in .hash), "data" (whole message) or "mu" (digest.external_mu)
    hash: str | None = None
    pss: bool = False


def _rsa(spec: KeySpec, hash_name: str, pss: bool) -> _AlgInfo:
    return _AlgInfo(spec, "digest", hash_name, pss)


ALGORITHMS: dict[str, _AlgInfo] = {
    "EC_SIGN_P256_SHA256": _AlgInfo(KeySpec.P256, "digest", "sha256"),
    "EC_SIGN_P384_SHA384": _AlgInfo(KeySpec.P384, "digest", "sha384"),
    "EC_SIGN_SECP256K1_SHA256": _AlgInfo(KeySpec.SECP256K1, "digest", "sha256"),
    "EC_SIGN_ED25519": _AlgInfo(KeySpec.ED25519, "data"),
    "RSA_SIGN_PSS_2048_SHA256": _rsa(KeySpec.RSA2048, "sha256", True),
    "RSA_SIGN_PSS_3072_SHA256": _rsa(KeySpec.RSA3072, "sha256", True),
    "RSA_SIGN_PSS_4096_SHA256": _rsa(KeySpec.RSA4096, "sha256", True),
    "RSA_SIGN_PSS_4096_SHA512": _rsa(KeySpec.RSA4096, "sha512", True),
    "RSA_SIGN_PKCS1_2048_SHA256": _rsa(KeySpec.RSA2048, "sha256", False),
    "RSA_SIGN_PKCS1_3072_SHA256": _rsa(KeySpec.RSA3072, "sha256", False),
    "RSA_SIGN_PKCS1_4096_SHA256": _rsa(KeySpec.RSA4096, "sha256", False),
    "RSA_SIGN_PKCS1_4096_SHA512": _rsa(KeySpec.RSA4096, "sha512", False),
    "PQ_SIGN_ML_DSA_44": _AlgInfo(KeySpec.ML_DSA_44, "data"),
    "PQ_SIGN_ML_DSA_65": _AlgInfo(KeySpec.ML_DSA_65, "data"),
    "PQ_SIGN_ML_DSA_87": _AlgInfo(KeySpec.ML_DSA_87, "data"),
    "PQ_SIGN_ML_DSA_44_EXTERNAL_MU": _AlgInfo(KeySpec.ML_DSA_44, "mu"),
    "PQ_SIGN_ML_DSA_65_EXTERNAL_MU": _AlgInfo(KeySpec.ML_DSA_65, "mu"),
    "PQ_SIGN_ML_DSA_87_EXTERNAL_MU": _AlgInfo(KeySpec.ML_DSA_87, "mu"),
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384,
                                                   "sha512": hashes.SHA512}


class _Abort(Exception):
    """A gRPC status to answer with; raised anywhere below a handler."""

    def __init__(self, code: Any, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(bytes(data)))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Version:
    name: str
    algorithm: str
    key: PrivateKey
    created: datetime
    state: Any = _State.PENDING_GENERATION
    reads_until_enabled: int = 1  # a real asymmetric version is PENDING_GENERATION for a moment
    destroy_time: datetime | None = None

    def current_state(self) -> Any:
        if self.state == _State.PENDING_GENERATION:
            if self.reads_until_enabled <= 0:
                self.state = _State.ENABLED
            else:
                self.reads_until_enabled -= 1
        return self.state

    def to_proto(self) -> Any:
        return kms_v1.CryptoKeyVersion(
            name=self.name, state=self.current_state(), algorithm=_Alg[self.algorithm],
            protection_level=kms_v1.ProtectionLevel.SOFTWARE, create_time=self.created,
            generate_time=self.created, destroy_time=self.destroy_time,
        )


@dataclass
class _Key:
    proto: Any  # kms_v1.CryptoKey
    versions: dict[int, _Version] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.proto.name)


class _Kms:
    """The service state and the RPC implementations (one lock: the emulator is for tests, not speed)."""

    def __init__(self, token: str | None, projects: Iterable[str] | None, pending_reads: int) -> None:
        self.token = token
        self.projects = frozenset(projects) if projects is not None else None
        self.pending_reads = pending_reads
        self.key_rings: dict[str, Any] = {}
        self.keys: dict[str, _Key] = {}
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
            raise _Abort(failure, f"injected {failure.name} (test hook)")
        if self.token is not None:
            sent = [v for k, v in metadata if k == "authorization"]
            expected = f"Bearer {self.token}"
            if not sent or not hmac.compare_digest(str(sent[0]).encode(), expected.encode()):
                raise _Abort(_Code.UNAUTHENTICATED, "Request had invalid authentication credentials.")
        project = resource.split("/")[1] if resource.startswith("projects/") and resource.count("/") >= 1 else ""
        if self.projects is not None and project not in self.projects:
            raise _Abort(_Code.PERMISSION_DENIED, f"Permission denied on resource project {project}.")

    def _take_corruption(self, *kinds: str) -> str | None:
        with self.lock:
            if self.corrupt_next in kinds:
                kind, self.corrupt_next = self.corrupt_next, None
                return kind
        return None

    def _key_ring(self, name: str) -> Any:
        if not _KEY_RING.match(name):
            raise _Abort(_Code.INVALID_ARGUMENT, f"invalid key ring name {name!r}")
        if name not in self.key_rings:
            raise _Abort(_Code.NOT_FOUND, f"KeyRing {name} not found.")
        return self.key_rings[name]

    def _key(self, name: str) -> _Key:
        m = _KEY.match(name)
        if not m:
            raise _Abort(_Code.INVALID_ARGUMENT, f"invalid crypto key name {name!r}")
        self._key_ring(m.group(1))
        if name not in self.keys:
            raise _Abort(_Code.NOT_FOUND, f"CryptoKey {name} not found.")
        return self.keys[name]

    def _version(self, name: str) -> _Version:
        m = _VERSION.match(name)
        if not m:
            raise _Abort(_Code.INVALID_ARGUMENT, f"invalid crypto key version name {name!r}")
        key = self._key(m.group(1))
        version = key.versions.get(int(m.group(2)))
        if version is None:
            raise _Abort(_Code.NOT_FOUND, f"CryptoKeyVersion {name} not found.")
        return version

    def _enabled(self, name: str) -> _Version:
        version = self._version(name)
        state = version.current_state()
        if state != _State.ENABLED:
            raise _Abort(_Code.FAILED_PRECONDITION, f"{name} is not enabled, current state is: {_State(state).name}.")
        return version

    # -- key rings -------------------------------------------------------------------------------

    def CreateKeyRing(self, req: Any) -> Any:
        if not _ID.match(req.key_ring_id):
            raise _Abort(_Code.INVALID_ARGUMENT, "key_ring_id must match [a-zA-Z0-9_-]{1,63}")
        name = f"{req.parent}/keyRings/{req.key_ring_id}"
        if not _KEY_RING.match(name):
            raise _Abort(_Code.INVALID_ARGUMENT, f"invalid parent {req.parent!r}")
        with self.lock:
            if name in self.key_rings:
                raise _Abort(_Code.ALREADY_EXISTS, f"KeyRing {name} already exists.")
            self.key_rings[name] = kms_v1.KeyRing(name=name, create_time=_now())
            return self.key_rings[name]

    def GetKeyRing(self, req: Any) -> Any:
        with self.lock:
            return self._key_ring(req.name)

    # -- crypto keys -----------------------------------------------------------------------------

    def CreateCryptoKey(self, req: Any) -> Any:
        if not _ID.match(req.crypto_key_id):
            raise _Abort(_Code.INVALID_ARGUMENT, "crypto_key_id must match [a-zA-Z0-9_-]{1,63}")
        template = req.crypto_key.version_template
        if req.crypto_key.purpose != _Purpose.ASYMMETRIC_SIGN:
            raise _Abort(_Code.INVALID_ARGUMENT, "this emulator only implements ASYMMETRIC_SIGN keys")
        algorithm = _Alg(template.algorithm).name
        if algorithm not in ALGORITHMS:
            raise _Abort(_Code.INVALID_ARGUMENT, f"algorithm {algorithm} is not valid for purpose ASYMMETRIC_SIGN")
        name = f"{req.parent}/cryptoKeys/{req.crypto_key_id}"
        with self.lock:
            self._key_ring(req.parent)
            if name in self.keys:
                raise _Abort(_Code.ALREADY_EXISTS, f"CryptoKey {name} already exists.")
            proto = kms_v1.CryptoKey(
                name=name, purpose=_Purpose.ASYMMETRIC_SIGN, create_time=_now(), labels=dict(req.crypto_key.labels),
                version_template=kms_v1.CryptoKeyVersionTemplate(
                    algorithm=template.algorithm, protection_level=kms_v1.ProtectionLevel.SOFTWARE),
                destroy_scheduled_duration=timedelta(days=30),
            )
            key = self.keys[name] = _Key(proto)
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
        page, token = _page(keys, req.page_size, req.page_token)
        return kms_v1.ListCryptoKeysResponse(crypto_keys=page, next_page_token=token, total_size=len(keys))

    # -- versions --------------------------------------------------------------------------------

    def _new_version(self, key: _Key, algorithm: str) -> _Version:
        private = generate_private_key(ALGORITHMS[algorithm].spec)  # outside the lock: RSA takes a while
        with self.lock:
            number = max(key.versions, default=0) + 1
            version = _Version(f"{key.name}/cryptoKeyVersions/{number}", algorithm, private, _now(),
                               reads_until_enabled=self.pending_reads)
            key.versions[number] = version
            return version

    def CreateCryptoKeyVersion(self, req: Any) -> Any:
        with self.lock:
            key = self._key(req.parent)
        version = self._new_version(key, _Alg(key.proto.version_template.algorithm).name)
        with self.lock:
            return version.to_proto()

    def GetCryptoKeyVersion(self, req: Any) -> Any:
        with self.lock:
            return self._version(req.name).to_proto()

    def ListCryptoKeyVersions(self, req: Any) -> Any:
        wanted = _state_filter(req.filter)
        with self.lock:
            key = self._key(req.parent)
            versions = [v.to_proto() for _, v in sorted(key.versions.items())]
        versions = [v for v in versions if wanted is None or v.state == wanted]
        page, token = _page(versions, req.page_size, req.page_token)
        return kms_v1.ListCryptoKeyVersionsResponse(crypto_key_versions=page, next_page_token=token,
                                                    total_size=len(versions))

    def DestroyCryptoKeyVersion(self, req: Any) -> Any:
        with self.lock:
            version = self._version(req.name)
            if version.current_state() not in (_State.ENABLED, _State.DISABLED):
                raise _Abort(_Code.FAILED_PRECONDITION,
                             f"{req.name} cannot be destroyed in state {_State(version.state).name}.")
            version.state = _State.DESTROY_SCHEDULED
            version.destroy_time = _now() + timedelta(days=30)
            return version.to_proto()

    # -- public keys and signing -----------------------------------------------------------------

    def GetPublicKey(self, req: Any) -> Any:
        with self.lock:
            version = self._enabled(req.name)
        info = ALGORITHMS[version.algorithm]
        public = version.key.public_key()
        fmt = _Format(req.public_key_format)
        pq = info.spec.family.name == "MLDSA"
        if pq and fmt != _Format.NIST_PQC:
            raise _Abort(_Code.INVALID_ARGUMENT, "public_key_format NIST_PQC is required for post-quantum keys")
        if not pq and fmt == _Format.NIST_PQC:
            raise _Abort(_Code.INVALID_ARGUMENT, "public_key_format NIST_PQC is only valid for post-quantum keys")
        answer = kms_v1.PublicKey(name=version.name, algorithm=_Alg[version.algorithm],
                                  protection_level=kms_v1.ProtectionLevel.SOFTWARE)
        if fmt in (_Format.PUBLIC_KEY_FORMAT_UNSPECIFIED, _Format.PEM):
            pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            answer.pem, answer.pem_crc32c = pem.decode("ascii"), crc32c(pem)
            data = pem
        elif fmt == _Format.DER:
            data = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        elif fmt == _Format.NIST_PQC:
            data = public.public_bytes_raw()  # type: ignore[union-attr]
        else:
            raise _Abort(_Code.INVALID_ARGUMENT, f"public_key_format {fmt.name} is not valid for this key")
        if fmt != _Format.PUBLIC_KEY_FORMAT_UNSPECIFIED:
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
                raise _Abort(_Code.INVALID_ARGUMENT, f"{version.algorithm} signs data, not a digest")
            payload = bytes(req.data)
            if len(payload) > MAX_DATA:
                raise _Abort(_Code.INVALID_ARGUMENT, f"data is larger than {MAX_DATA} bytes")
            sent_crc, verified = req.data_crc32c, "data"
        else:
            if req.data:
                raise _Abort(_Code.INVALID_ARGUMENT, f"{version.algorithm} signs a digest, not data")
            field_name = "external_mu" if info.input == "mu" else info.hash
            payload = bytes(getattr(req.digest, field_name or ""))
            wanted = 64 if info.input == "mu" else _HASHES[info.hash or ""].digest_size
            if len(payload) != wanted:
                raise _Abort(_Code.INVALID_ARGUMENT,
                             f"{version.algorithm} needs digest.{field_name} of {wanted} bytes")
            sent_crc, verified = req.digest_crc32c, "digest"
        if self._take_corruption("request") and payload:  # as if a request byte flipped on the wire
            payload = bytes([payload[0] ^ 1]) + payload[1:]
        if sent_crc is not None and sent_crc != crc32c(payload):
            raise _Abort(_Code.INVALID_ARGUMENT, f"The checksum in field {verified}_crc32c did not match the "
                                                 "data computed by the server.")
        signature = _sign(version.key, info, payload)
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


def _sign(key: PrivateKey, info: _AlgInfo, payload: bytes) -> bytes:
    if info.input == "mu":
        return key.sign_mu(payload)  # type: ignore[union-attr]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(payload, ec.ECDSA(utils.Prehashed(_HASHES[info.hash or ""]())))
    if isinstance(key, rsa.RSAPrivateKey):
        h = _HASHES[info.hash or ""]()
        pad = padding.PSS(padding.MGF1(h), h.digest_size) if info.pss else padding.PKCS1v15()
        return key.sign(payload, pad, utils.Prehashed(h))
    if isinstance(key, ed25519.Ed25519PrivateKey | mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey
                  | mldsa.MLDSA87PrivateKey):
        return key.sign(payload)
    raise _Abort(_Code.INTERNAL, "unknown key type")  # pragma: no cover


def _page(items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
    size = min(size or 100, 1000)
    try:
        start = int(token) if token else 0
    except ValueError:
        raise _Abort(_Code.INVALID_ARGUMENT, "invalid page_token") from None
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def _state_filter(text: str) -> Any:
    """The one filter shape clients use here: ``state=ENABLED`` (or ``state:ENABLED``)."""
    if not text:
        return None
    m = re.fullmatch(r"\s*state\s*[=:]\s*([A-Z_]+)\s*", text)
    if not m or m.group(1) not in _State.__members__:
        raise _Abort(_Code.INVALID_ARGUMENT, f"unsupported filter {text!r}")
    return _State[m.group(1)]


# -- the gRPC server --------------------------------------------------------------------------------

_METHODS: dict[str, tuple[str, str, str]] = {  # RPC -> (request type, response type, resource field)
    "CreateKeyRing": ("CreateKeyRingRequest", "KeyRing", "parent"),
    "GetKeyRing": ("GetKeyRingRequest", "KeyRing", "name"),
    "CreateCryptoKey": ("CreateCryptoKeyRequest", "CryptoKey", "parent"),
    "GetCryptoKey": ("GetCryptoKeyRequest", "CryptoKey", "name"),
    "ListCryptoKeys": ("ListCryptoKeysRequest", "ListCryptoKeysResponse", "parent"),
    "CreateCryptoKeyVersion": ("CreateCryptoKeyVersionRequest", "CryptoKeyVersion", "parent"),
    "GetCryptoKeyVersion": ("GetCryptoKeyVersionRequest", "CryptoKeyVersion", "name"),
    "ListCryptoKeyVersions": ("ListCryptoKeyVersionsRequest", "ListCryptoKeyVersionsResponse", "parent"),
    "DestroyCryptoKeyVersion": ("DestroyCryptoKeyVersionRequest", "CryptoKeyVersion", "name"),
    "GetPublicKey": ("GetPublicKeyRequest", "PublicKey", "name"),
    "AsymmetricSign": ("AsymmetricSignRequest", "AsymmetricSignResponse", "name"),
}


def _handler(kms: _Kms, method: str, resource_field: str) -> Callable[[Any, Any], Any]:
    implementation = getattr(kms, method)

    def handle(request: Any, context: Any) -> Any:
        try:
            kms.authorize(method, context.invocation_metadata(), getattr(request, resource_field))
            return implementation(request)
        except _Abort as e:
            context.abort(e.code, e.message)

    return handle


@dataclass
class EmulatorHandle:
    """A running emulator: its address, the token it demands (if any), and test hooks.

    `corrupt_next` damages the next answer that carries it: ``"signature_crc32c"``,
    ``"verified_crc32c"``, ``"name"``, ``"signature"`` (bytes flipped, checksum kept),
    ``"public_key_crc32c"``, or ``"crc32c"`` (whichever CRC32C the next answer carries);
    ``"request"`` damages the next signing request as received (its CRC32C check refuses it).
    """

    address: str
    token: str | None
    _server: Any
    _kms: _Kms

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def corrupt_next(self) -> str | None:
        return self._kms.corrupt_next

    @corrupt_next.setter
    def corrupt_next(self, kind: str | None) -> None:
        self._kms.corrupt_next = kind

    @property
    def corrupt_next_crc32c(self) -> bool:
        return self._kms.corrupt_next is not None

    @corrupt_next_crc32c.setter
    def corrupt_next_crc32c(self, value: bool) -> None:
        self._kms.corrupt_next = "crc32c" if value else None

    def fail_next(self, code: Any, count: int = 1) -> None:
        """Answer the next `count` calls with the gRPC status `code` (e.g. grpc.StatusCode.UNAVAILABLE)."""
        with self._kms.lock:
            self._kms.failures.extend([code] * count)

    @property
    def calls(self) -> dict[str, int]:
        """RPCs received so far, by method name (tests count round trips with it)."""
        with self._kms.lock:
            return dict(self._kms.calls)

    def stop(self, grace: float | None = None) -> None:
        self._server.stop(grace).wait()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(host: str = "127.0.0.1", port: int = 0, token: str | None = None, *,
          projects: Iterable[str] | None = None, pending_reads: int = 1, workers: int = 32) -> EmulatorHandle:
    """Start the emulator in this process on `host:port` (0 = a free port) and return its handle.

    With a `token`, every call must carry ``authorization: Bearer <token>``; with `projects`,
    resources of any other project answer PERMISSION_DENIED. `pending_reads` is how many reads
    a new version answers PENDING_GENERATION to before it is ENABLED.
    """
    kms = _Kms(token, projects, pending_reads)
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            _handler(kms, method, resource),
            request_deserializer=getattr(kms_v1, request_type).deserialize,
            response_serializer=getattr(kms_v1, response_type).serialize,
        )
        for method, (request_type, response_type, resource) in _METHODS.items()
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gcp-kms-emulator"))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    shown = f"[{host}]" if ":" in host else host
    return EmulatorHandle(f"{shown}:{bound}", token, server, kms)


def serve_forever(host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the emulator in the foreground (``keyplane emulator gcp``) until Ctrl-C."""
    if threading.current_thread() is threading.main_thread():
        # Stop cleanly on Ctrl-C and on SIGTERM, also when started as a background job (SIGINT ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    handle = start(host, port)
    print(f"Google Cloud KMS emulator (gRPC, plaintext) listening on {handle.address}")
    print("No authentication: any or no bearer token is accepted; keys live in memory only.")
    print("Point keyplane at it with a store URI such as:")
    print(f"  gcpkms://projects/demo/locations/global/keyRings/demo?endpoint={handle.address}&insecure=true")
    print("(the key ring is created on the first create_key). Ctrl-C stops it.", flush=True)
    try:
        handle._server.wait_for_termination()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        handle.stop(grace=1.0)
