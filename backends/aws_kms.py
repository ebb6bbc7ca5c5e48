"""The AWS KMS back end, on boto3.

URIs follow the forms sigstore/cosign users already paste:

  ``awskms:///1234abcd-12ab-34cd-56ef-1234567890ab``     a key by id
  ``awskms:///alias/ca``                                 a key by alias
  ``awskms:///arn:aws:kms:us-east-1:111122223333:key/...``  a key by ARN (its region wins)
  ``awskms://127.0.0.1:5005/alias/ca``                   the same through a custom endpoint
  ``awskms:///?region=eu-west-1``, ``awskms://localhost:4566/``   stores (no key part)

Query attributes: ``region``, ``profile``, ``endpoint`` (a full URL, overrides the authority),
``algorithm``, ``connect-timeout``, ``read-timeout``, ``max-attempts``. Whatever the URI leaves
out comes from the usual AWS places (``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL[_KMS]``, ``~/.aws/config``, the credential chain). An authority on a
loopback host means plain ``http://`` (moto, LocalStack); any other host means ``https://``.

Signing: KMS takes at most 4096 bytes of RAW message. Longer (or empty) messages are hashed
here and sent as ``DIGEST`` (ECDSA, RSA) or reduced to ML-DSA's 64-byte ``mu`` and sent as
``EXTERNAL_MU``, so ``sign()`` takes any length and the wire never carries a large message.
Pure Ed25519 exists on KMS only as RAW, so an Ed25519 message outside 1..4096 bytes is refused.

A bare name (``ca``) means the alias ``alias/ca``: `create_key("ca", ...)` makes that alias,
and `open("ca")` finds it. Signers sign with the key's ARN, resolved once at open, so moving
the alias later never makes a signer produce signatures from a key it has not cached.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mldsa

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
)
from signers.keys import PublicKey
from signers.sdk import require
from signers.signature_format import digest
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import check_create_options, checked_uri

from .translation import translated

__all__ = ["AwsKmsKeyStore", "AwsKmsLocation", "AwsKmsSigner", "KeyDisabled", "parse_awskms_uri"]

SCHEME = "awskms"
RAW_LIMIT = 4096  # KMS Sign: Message is 1..4096 bytes for MessageType RAW
MU_SIZE = 64  # FIPS 204 mu, what EXTERNAL_MU carries

# -- mapping tables: every gap is one missing row -----------------------------------------

_KEY_SPECS: dict[KeySpec, str] = {
    KeySpec.P256: "ECC_NIST_P256",
    KeySpec.P384: "ECC_NIST_P384",
    KeySpec.SECP256K1: "ECC_SECG_P256K1",
    KeySpec.RSA2048: "RSA_2048",
    KeySpec.RSA3072: "RSA_3072",
    KeySpec.RSA4096: "RSA_4096",
    KeySpec.ED25519: "ECC_NIST_EDWARDS25519",
    KeySpec.ML_DSA_44: "ML_DSA_44",
    KeySpec.ML_DSA_65: "ML_DSA_65",
    KeySpec.ML_DSA_87: "ML_DSA_87",
}
_SPEC_BY_AWS = {aws: spec for spec, aws in _KEY_SPECS.items()}

_ALGORITHMS: dict[SignatureAlgorithm, str] = {
    SignatureAlgorithm.ES256: "ECDSA_SHA_256",
    SignatureAlgorithm.ES384: "ECDSA_SHA_384",
    SignatureAlgorithm.ES256K: "ECDSA_SHA_256",
    SignatureAlgorithm.PS256: "RSASSA_PSS_SHA_256",
    SignatureAlgorithm.PS384: "RSASSA_PSS_SHA_384",
    SignatureAlgorithm.PS512: "RSASSA_PSS_SHA_512",
    SignatureAlgorithm.RS256: "RSASSA_PKCS1_V1_5_SHA_256",
    SignatureAlgorithm.RS384: "RSASSA_PKCS1_V1_5_SHA_384",
    SignatureAlgorithm.RS512: "RSASSA_PKCS1_V1_5_SHA_512",
    SignatureAlgorithm.ED25519: "ED25519_SHA_512",  # pure Ed25519 (ED25519_PH_SHA_512 is Ed25519ph)
    SignatureAlgorithm.ML_DSA_44: "ML_DSA_SHAKE_256",
    SignatureAlgorithm.ML_DSA_65: "ML_DSA_SHAKE_256",
    SignatureAlgorithm.ML_DSA_87: "ML_DSA_SHAKE_256",
}

# AWS error codes, grouped by the keyplane error they become (translated in `_aws_errors`).
_AUTH_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "IncompleteSignature", "MissingAuthenticationToken", "ExpiredTokenException", "ExpiredToken", "AuthFailure",
    "InvalidAccessKeyId", "InvalidToken",
})
_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "NotAuthorizedException"})
_NOT_FOUND_CODES = frozenset({"NotFoundException", "InvalidArnException"})
_UNAVAILABLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "RequestLimitExceeded", "LimitExceededException",
    "KeyUnavailableException", "DependencyTimeoutException", "KMSInternalException", "InternalFailure",
    "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
    "CustomKeyStoreInvalidStateException",
})
_UNSUPPORTED_CODES = frozenset({"UnsupportedOperationException", "InvalidKeyUsageException"})
_XML_CODE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")
_KEY_ID = re.compile(r"mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ALIAS = re.compile(r"alias/[A-Za-z0-9/_\-]{1,250}")
_ARN = re.compile(r"arn:aws[a-z\-]*:kms:([a-z0-9\-]+):\d{12}:(key|alias)/[A-Za-z0-9/_\-]+")
_QUERY = frozenset({"region", "profile", "endpoint", "algorithm", "connect-timeout", "read-timeout", "max-attempts"})
_AUTHORITY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,252}))(?::(\d{1,5}))?")
_ENDPOINT = re.compile(r"https?://([^/?#\s]+)/?")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+){1,3}-\d{1,2}|[a-z0-9][a-z0-9\-]{1,40}")
MAX_ATTEMPTS = 10


# -- URIs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsKmsLocation:
    """Where a store or key lives: the parts of an ``awskms:`` URI, nothing resolved yet."""

    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    key: str | None = None  # key id, ``alias/NAME`` or ARN; None for a store URI
    algorithm: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_attempts: int = 4

    def store_uri(self, authority: str | None) -> str:
        """The store's URI: the endpoint (as given), region and profile; never a credential."""
        query = {k: v for k, v in (("region", self.region), ("profile", self.profile)) if v}
        if self.endpoint and authority is None:
            query["endpoint"] = self.endpoint
        return KeyURI(SCHEME, "/", authority or "", {}, query).format()


def parse_awskms_uri(uri: str) -> tuple[AwsKmsLocation, str | None]:
    """(location, authority) for an ``awskms:`` store or key URI; ConfigError if malformed.

    Every number is typed and bounded (a retry count of a million would hang a caller for
    hours); an endpoint or authority that is not ``host[:port]`` with a port in 1..65535 is
    refused here rather than as a ValueError from botocore.
    """
    parsed, options = checked_uri(uri, schemes={SCHEME}, query=_QUERY)
    authority = parsed.authority or None
    if authority is not None:
        _check_authority(authority, "authority")
    endpoint = options.text("endpoint")
    if endpoint is not None:
        match = _ENDPOINT.fullmatch(endpoint)
        if match is None:
            raise ConfigError(f"{SCHEME}: URI attribute 'endpoint' must be http(s)://HOST[:PORT][/]")
        _check_authority(match.group(1), "endpoint")
    endpoint = endpoint or (_endpoint_for(authority) if authority else None)
    key = parsed.path.lstrip("/") or None
    region = options.text("region")
    if region is not None and not _REGION.fullmatch(region):
        raise ConfigError(f"{SCHEME}: URI attribute 'region' must be an AWS region name such as us-east-1")
    if key is not None:
        arn = _ARN.fullmatch(key)
        if arn and region and region != arn.group(1):
            raise ConfigError(f"the key ARN is in region {arn.group(1)} but the URI says region={region}")
        region = region or (arn.group(1) if arn else None)
    return AwsKmsLocation(
        endpoint=endpoint,
        region=region,
        profile=options.text("profile"),
        key=key,
        algorithm=options.text("algorithm"),
        connect_timeout=options.number("connect-timeout", 5.0, minimum=0.01, maximum=300),
        read_timeout=options.number("read-timeout", 15.0, minimum=0.01, maximum=900),
        max_attempts=options.integer("max-attempts", 4, minimum=1, maximum=MAX_ATTEMPTS),
    ), authority


def _check_authority(authority: str, what: str) -> None:
    """HOST[:PORT] with a port in 1..65535 (IPv6 in brackets); ConfigError naming `what` otherwise."""
    match = _AUTHORITY.fullmatch(authority)
    if match is None:
        raise ConfigError(f"{SCHEME}: URI {what} must be HOST[:PORT], not {authority[:80]!r}")
    port = match.group(2)
    if port is not None and not 1 <= int(port) <= 65535:
        raise ConfigError(f"{SCHEME}: URI {what} has port {port}; ports are 1 to 65535")


def _endpoint_for(authority: str) -> str:
    """http:// for loopback emulators (moto, LocalStack), https:// for anything else."""
    host = authority.rsplit(":", 1)[0].strip("[]") if not authority.endswith("]") else authority.strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return f"{'http' if loopback else 'https'}://{authority}"


def key_reference(name_or_ref: str) -> str:
    """What KMS calls a KeyId: an id, ``alias/NAME`` or ARN as given; a bare name means its alias."""
    if _KEY_ID.fullmatch(name_or_ref) or _ARN.fullmatch(name_or_ref) or name_or_ref.startswith("alias/"):
        return name_or_ref
    return f"alias/{name_or_ref}"


# -- the Signer --------------------------------------------------------------------------


class AwsKmsSigner(BaseSigner):
    """Signs with one KMS key: one `Sign` call per signature, message shape chosen by length."""

    def __init__(
        self, store: AwsKmsKeyStore, uri: str, algorithm: SignatureAlgorithm, public_key: PublicKey, key_arn: str
    ) -> None:
        super().__init__(uri, algorithm, public_key)
        self._store = store  # keeps the client alive as long as the signer
        self.key_arn = key_arn
        self._aws_algorithm = _ALGORITHMS[algorithm]

    def sign(self, message: bytes) -> bytes:
        message = bytes(message)
        payload, message_type = self.sign_request(message)
        response = self._store._call(
            "Sign", self.uri, KeyId=self.key_arn, Message=payload, MessageType=message_type,
            SigningAlgorithm=self._aws_algorithm,
        )
        return bytes(response["Signature"])

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a precomputed digest (``MessageType=DIGEST``): ECDSA and RSA; never hashed again.

        Raises ConfigError for a digest of the wrong length, AlgorithmNotSupported for Ed25519
        and ML-DSA (KMS signs their messages, or ML-DSA's mu, not a digest).
        """
        if self.algorithm.family not in (KeyFamily.EC, KeyFamily.RSA):
            raise AlgorithmNotSupported(f"{self.algorithm.value} has no digest form on AWS KMS")
        size = self.algorithm.hash_algorithm().digest_size
        digest = bytes(digest)
        if len(digest) != size:
            raise ConfigError(f"{self.algorithm.value} signs a {size}-byte digest, not {len(digest)} bytes")
        response = self._store._call("Sign", self.uri, KeyId=self.key_arn, Message=digest, MessageType="DIGEST",
                                     SigningAlgorithm=self._aws_algorithm)
        return bytes(response["Signature"])

    def sign_request(self, message: bytes) -> tuple[bytes, str]:
        """(Message, MessageType) as KMS wants them for `message`; the wire never sees more than 4096 bytes."""
        if 1 <= len(message) <= RAW_LIMIT:
            return message, "RAW"
        family = self.algorithm.family
        if family is KeyFamily.MLDSA:
            hasher = mldsa.MLDSAMuHasher(self.public_key.key)  # type: ignore[arg-type]
            hasher.update(message)
            return hasher.finalize(), "EXTERNAL_MU"
        if family is KeyFamily.EDDSA:
            raise AlgorithmNotSupported(
                f"AWS KMS signs pure Ed25519 only over a RAW message of 1 to {RAW_LIMIT} bytes; "
                f"this one is {len(message)} bytes"
            )
        return digest(self.algorithm, message), "DIGEST"


# -- the KeyStore ------------------------------------------------------------------------


class AwsKmsKeyStore(BaseKeyStore):
    """One boto3 KMS client (standard retries, timeouts) shared by every signer it opens."""

    capabilities = Capabilities(
        key_specs=frozenset(_KEY_SPECS),
        prehash=True,  # above 4096 bytes the digest (or mu) is computed here
        deterministic=frozenset({KeySpec.ED25519}),
        deletion="scheduled",  # KMS destroys a key only after a 7..30 day window
    )
    signer_class = AwsKmsSigner

    def __init__(self, client: Any, location: AwsKmsLocation, authority: str | None = None,
                 deletion_window_days: int = 7) -> None:
        self._client = client
        self.location = location
        self.region = location.region or client.meta.region_name
        self.uri = location.store_uri(authority)
        self.deletion_window_days = deletion_window_days

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_uri(cls, uri: str) -> AwsKmsKeyStore:
        """A store from a store URI or a key URI; the client is built here, once."""
        location, authority = parse_awskms_uri(uri)
        boto3 = require("boto3", "aws", "AWS KMS")
        botocore_config = require("botocore.config", "aws", "AWS KMS")
        config = botocore_config.Config(
            retries={"mode": "standard", "total_max_attempts": location.max_attempts},
            connect_timeout=location.connect_timeout,
            read_timeout=location.read_timeout,
            max_pool_connections=32,
            user_agent_extra="keyplane",
        )
        with _aws_errors("connect", "AWS KMS"):
            session = boto3.session.Session(profile_name=location.profile, region_name=location.region)
            if session.region_name is None:
                raise ConfigError(
                    "AWS region unknown: add ?region=NAME to the awskms: URI, use a key ARN, "
                    "or set AWS_REGION (or a region in the AWS profile)"
                )
            client = session.client("kms", endpoint_url=location.endpoint, config=config)
        return cls(client, location, authority)

    @property
    def client(self) -> Any:
        """The boto3 KMS client (for a test's Stubber or a caller's extra calls)."""
        return self._client

    # -- KeyStore ----------------------------------------------------------------------

    def create_key(self, name: str | None, spec: KeySpec | str, **opts: Any) -> AwsKmsSigner:
        """A new SIGN_VERIFY key; `name` becomes the alias ``alias/NAME`` (None or "" for none).

        Options: ``algorithm``, ``description``, ``tags`` (a dict). KeyExists if the alias is taken.
        """
        spec = KeySpec.parse(spec)
        algorithm = choose_algorithm(spec, opts.pop("algorithm", None))
        description = opts.pop("description", None)
        tags = opts.pop("tags", None) or {}
        check_create_options(opts, (), "AWS KMS")
        alias = None
        if name:
            alias = key_reference(name)
            if not _ALIAS.fullmatch(alias) or alias.startswith("alias/aws/"):
                raise ConfigError(f"{name!r} cannot be a KMS alias: letters, digits, '/', '_' and '-' only")
            if self._exists(alias):
                raise KeyExists(f"alias {alias} already exists in {self.uri}")
        request: dict[str, Any] = {"KeyUsage": "SIGN_VERIFY", "KeySpec": _KEY_SPECS[spec]}
        if description:
            request["Description"] = description
        if tags:
            request["Tags"] = [{"TagKey": str(k), "TagValue": str(v)} for k, v in tags.items()]
        metadata = self._call("CreateKey", spec.value, **request)["KeyMetadata"]
        key_id = metadata["KeyId"]
        if alias is not None:
            try:
                self._call("CreateAlias", alias, AliasName=alias, TargetKeyId=key_id)
            except KeyplaneError:
                # Lost a race for the alias (or it is refused): do not leave an orphan key behind.
                with suppress(KeyplaneError):  # the alias error is the one worth reporting
                    self._call("ScheduleKeyDeletion", key_id, KeyId=key_id, PendingWindowInDays=7)
                raise
        return self.open(alias or key_id, algorithm)

    def open(self, uri_or_name: str, algorithm: SignatureAlgorithm | str | None = None) -> AwsKmsSigner:
        """Open by URI, id, ``alias/NAME``, ARN or bare alias name; checks state and caches the public key."""
        ref = self._reference_from(uri_or_name)
        if algorithm is None and uri_or_name.startswith(f"{SCHEME}:"):
            algorithm = parse_awskms_uri(uri_or_name)[0].algorithm
        metadata = self._describe(ref)
        key_arn = metadata["Arn"]
        response = self._call("GetPublicKey", ref, KeyId=key_arn)
        public_key = PublicKey.from_der(bytes(response["PublicKey"]))
        aws_spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec") or metadata.get("KeySpec")
        if aws_spec is not None and _SPEC_BY_AWS.get(aws_spec) not in (None, public_key.spec):
            raise AlgorithmNotSupported(f"KMS reports {aws_spec} for {ref} but its public key is {public_key.spec}")
        chosen = choose_algorithm(public_key.spec, algorithm)
        offered = response.get("SigningAlgorithms") or metadata.get("SigningAlgorithms")
        if offered and _ALGORITHMS[chosen] not in offered:
            raise AlgorithmNotSupported(f"key {ref} does not offer {_ALGORITHMS[chosen]} (it offers {offered})")
        return AwsKmsSigner(self, self._key_uri(ref), chosen, public_key, key_arn)

    def list_keys(self) -> Iterator[KeyInfo]:
        """Every signing key in the region (paginated), named by its first alias; pending deletion left out.

        Costs one DescribeKey per key, because ListKeys says nothing about usage, spec or state.
        """
        aliases: dict[str, list[str]] = {}
        with _aws_errors("ListAliases", self.uri):
            for page in self._client.get_paginator("list_aliases").paginate():
                for entry in page.get("Aliases", []):
                    if entry.get("TargetKeyId"):
                        aliases.setdefault(entry["TargetKeyId"], []).append(entry["AliasName"])
        with _aws_errors("ListKeys", self.uri):
            key_ids = [k["KeyId"] for page in self._client.get_paginator("list_keys").paginate()
                       for k in page.get("Keys", [])]
        for key_id in key_ids:
            metadata = self._call("DescribeKey", key_id, KeyId=key_id)["KeyMetadata"]
            if metadata.get("KeyUsage") != "SIGN_VERIFY" or metadata.get("KeyState") == "PendingDeletion":
                continue
            names = sorted(aliases.get(key_id, []))
            ref = names[0] if names else key_id
            yield KeyInfo(
                name=ref.removeprefix("alias/"),
                uri=self._key_uri(ref),
                spec=_SPEC_BY_AWS.get(metadata.get("KeySpec") or metadata.get("CustomerMasterKeySpec", "")),
                enabled=metadata.get("KeyState") == "Enabled",
                extra={"key_id": key_id, "arn": metadata.get("Arn"), "state": metadata.get("KeyState"),
                       "aliases": names},
            )

    def delete_key(self, name: str) -> None:
        """Remove the key's aliases and schedule its deletion (KMS never deletes at once)."""
        self.schedule_key_deletion(name, self.deletion_window_days)

    def schedule_key_deletion(self, name: str, pending_window_days: int = 7) -> None:
        """Schedule deletion after 7..30 days; the alias goes now, so the name can be reused."""
        ref = self._reference_from(name)
        key_id = self._describe(ref, allow_disabled=True)["KeyId"]
        with _aws_errors("ListAliases", ref):
            pages = self._client.get_paginator("list_aliases").paginate(KeyId=key_id)
            names = [a["AliasName"] for page in pages for a in page.get("Aliases", [])]
        for alias in names:
            self._call("DeleteAlias", alias, AliasName=alias)
        self._call("ScheduleKeyDeletion", ref, KeyId=key_id, PendingWindowInDays=pending_window_days)

    def disable_key(self, name: str) -> None:
        """Disable the key: signing then fails with KeyDisabled until it is enabled again."""
        ref = self._reference_from(name)
        self._call("DisableKey", ref, KeyId=self._describe(ref, allow_disabled=True)["KeyId"])

    def enable_key(self, name: str) -> None:
        ref = self._reference_from(name)
        self._call("EnableKey", ref, KeyId=self._describe(ref, allow_disabled=True)["KeyId"])

    def close(self) -> None:
        self._client.close()

    # -- internals ---------------------------------------------------------------------

    def _call(self, operation: str, subject: str, **params: Any) -> Any:
        """One KMS API call (`operation` in AWS's spelling) with errors translated."""
        method = getattr(self._client, _snake(operation))
        with _aws_errors(operation, subject):
            return method(**params)

    def _describe(self, ref: str, *, allow_disabled: bool = False) -> dict[str, Any]:
        """DescribeKey, refusing keys that cannot sign now (the reason is the error's type)."""
        metadata: dict[str, Any] = self._call("DescribeKey", ref, KeyId=ref)["KeyMetadata"]
        state = metadata.get("KeyState", "Enabled" if metadata.get("Enabled", True) else "Disabled")
        if state in ("PendingDeletion", "PendingReplicaDeletion"):
            raise KeyNotFound(f"KMS key {ref} is scheduled for deletion")
        if metadata.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY":
            raise AlgorithmNotSupported(f"KMS key {ref} has KeyUsage {metadata.get('KeyUsage')}, not SIGN_VERIFY")
        if state != "Enabled" and not (allow_disabled and state == "Disabled"):
            raise KeyDisabled(f"KMS key {ref} is {state}; it cannot sign until it is enabled")
        return metadata

    def _exists(self, ref: str) -> bool:
        try:
            self._call("DescribeKey", ref, KeyId=ref)
        except KeyNotFound:
            return False
        return True

    def _reference_from(self, uri_or_name: str) -> str:
        if not uri_or_name.startswith(f"{SCHEME}:"):
            ref = key_reference(uri_or_name)
        else:
            location, _ = parse_awskms_uri(uri_or_name)
            if location.key is None:
                raise ConfigError(f"{uri_or_name} is a store URI; it names no key")
            if (location.endpoint or None) != (self.location.endpoint or None) or (
                location.region is not None and location.region != self.region
            ):
                raise ConfigError(f"{parse_uri(uri_or_name).public()} is not served by the store {self.uri}")
            ref = key_reference(location.key)
        arn = _ARN.fullmatch(ref)
        if arn and arn.group(1) != self.region:
            raise ConfigError(f"key {ref} is in region {arn.group(1)}; this store is in {self.region}")
        if not (_KEY_ID.fullmatch(ref) or arn or _ALIAS.fullmatch(ref)):
            raise KeyNotFound(f"{ref!r} is not a KMS key id, alias or ARN, so no such key exists")
        return ref

    def _key_uri(self, ref: str) -> str:
        store = parse_uri(self.uri)
        query = dict(store.query)
        if _ARN.fullmatch(ref):
            query.pop("region", None)  # the ARN carries it
        return KeyURI(SCHEME, "/" + ref, store.authority, {}, query).format()


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


# -- error translation: the one place SDK failures become keyplane errors ----------------


def _aws_errors(operation: str, subject: str) -> AbstractContextManager[None]:
    """Translate botocore failures raised while doing `operation` on `subject` (a key or store)."""
    return translated(lambda e, what: _translate(e, operation, subject), f"AWS KMS {operation} on {subject}")


def _translate(e: BaseException, operation: str, subject: str) -> KeyplaneError | None:
    """The one table from botocore exceptions to keyplane errors (None: not a botocore failure)."""
    exceptions = require("botocore.exceptions", "aws", "AWS KMS")
    if isinstance(e, exceptions.ClientError):
        return _client_error(e, operation, subject)
    if isinstance(e, (exceptions.NoCredentialsError, exceptions.PartialCredentialsError,
                      exceptions.CredentialRetrievalError, exceptions.TokenRetrievalError,
                      exceptions.SSOTokenLoadError, exceptions.UnauthorizedSSOTokenError)):
        return AuthenticationFailed(f"AWS credentials unusable for {operation}: {type(e).__name__}")
    if isinstance(e, (exceptions.ProfileNotFound, exceptions.NoRegionError, exceptions.InvalidRegionError,
                      exceptions.InvalidEndpointConfigurationError)):
        return ConfigError(f"AWS configuration: {e}")
    if isinstance(e, exceptions.ParamValidationError):
        return ConfigError(f"KMS {operation} request refused before sending: {e}")
    if isinstance(e, exceptions.SSLError) or (
            isinstance(e, exceptions.HTTPClientError) and "CERTIFICATE_VERIFY_FAILED" in str(e)):
        return ConfigError(f"AWS KMS {operation}: TLS certificate verification failed for the endpoint; give its "
                           "CA bundle with AWS_CA_BUNDLE (or ca_bundle in the AWS profile)")
    if isinstance(e, (exceptions.EndpointConnectionError, exceptions.ConnectTimeoutError, exceptions.ReadTimeoutError,
                      exceptions.ConnectionClosedError, exceptions.HTTPClientError)):
        return BackendUnavailable(f"AWS KMS unreachable during {operation}: {type(e).__name__}", e)
    if isinstance(e, exceptions.BotoCoreError):
        return BackendUnavailable(f"AWS KMS {operation} failed: {type(e).__name__}", e)
    if isinstance(e, ValueError):  # botocore's own checks of endpoint / config values
        return ConfigError(f"AWS KMS {operation}: the client refused its configuration: {str(e)[:200]}")
    return None


def _client_error(e: Any, operation: str, subject: str) -> KeyplaneError:
    error = e.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code.isdigit():  # an XML error body on a JSON API (moto's IAM checks): the code is inside
        found = _XML_CODE.search(message)
        code, message = (found.group(1), "") if found else (code, message)
    where = f"KMS {operation} on {subject}"
    if code in _AUTH_CODES:
        return AuthenticationFailed(f"{where}: credentials rejected ({code})")  # AWS's text is not repeated
    if code in _DENIED_CODES:
        return PermissionDenied(f"{where}: access denied ({code})")
    if code in _NOT_FOUND_CODES:
        return KeyNotFound(f"{where}: no such key ({message or code})")
    if code == "DisabledException":
        return KeyDisabled(f"{where}: the key is disabled ({message or code})")
    if code == "KMSInvalidStateException" and "deletion" in message.lower():
        return KeyNotFound(f"{where}: the key is scheduled for deletion ({message})")
    if code == "KMSInvalidStateException":
        return KeyDisabled(f"{where}: the key cannot be used in its current state ({message or code})")
    if code == "AlreadyExistsException":
        return KeyExists(f"{where}: already exists")
    if code in _UNSUPPORTED_CODES:
        return AlgorithmNotSupported(f"{where}: {message or code}")
    if code == "ValidationException" and operation == "CreateKey":
        return AlgorithmNotSupported(f"{where}: this KMS does not create such keys ({message})")
    if code in _UNAVAILABLE_CODES or status >= 500:
        return BackendUnavailable(f"{where}: {code or status} (after retries)", e)
    if code == "ValidationException":
        return ConfigError(f"{where}: {message}")
    return BackendUnavailable(f"{where}: unexpected {code or status}: {message}", e)
