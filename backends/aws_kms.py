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

import re
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

from signers.algorithms import KeyFamily, KeySpec, SignatureAlgorithm
from signers.errors import (
    AlgorithmNotSupported,
    BackendUnavailable,
    ConfigError,
    KeyDisabled,
    KeyExists,
    KeyNotFound,
    KeyplaneError,
)
from signers.keys import PublicKey
from signers.sdk import require
from signers.signature_format import checked_digest, digest
from signers.signer import BaseKeyStore, BaseSigner, Capabilities, KeyInfo, choose_algorithm
from signers.uri import KeyURI, parse_uri
from signers.uri_options import check_create_options
from signers.workers import WorkerPool

from .aws_kms_errors import aws_errors
from .aws_kms_uri import (
    ALIAS_PATTERN,
    ARN_PATTERN,
    KEY_ID_PATTERN,
    SCHEME,
    AwsKmsLocation,
    key_reference,
    parse_awskms_uri,
)
from .key_wrap import rsa_aes_key_wrap

__all__ = ["AwsKmsKeyStore", "AwsKmsLocation", "AwsKmsSigner", "KeyDisabled", "key_reference", "parse_awskms_uri"]

RAW_LIMIT = 4096  # KMS Sign: Message is 1..4096 bytes for MessageType RAW
MU_SIZE = 64  # FIPS 204 mu, what EXTERNAL_MU carries
POOL_CONNECTIONS = 32  # botocore's connection pool, and the store's worker threads (one per connection)
BATCH_WIDTH = 16  # Sign calls a sign_many keeps in flight (KMS throttles a burst per key per second)

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
        self.batch_width = BATCH_WIDTH  # sign_many pipelines Sign calls over the client's connections

    def worker_pool(self) -> WorkerPool:
        """The store's bounded I/O pool, one thread per pooled connection (not the default executor)."""
        return self._store.workers

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
        value = checked_digest(self.algorithm, digest)
        response = self._store._call("Sign", self.uri, KeyId=self.key_arn, Message=value, MessageType="DIGEST",
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
        self.workers = WorkerPool("awskms", POOL_CONNECTIONS)

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
            max_pool_connections=POOL_CONNECTIONS,
            user_agent_extra="keyplane",
        )
        with aws_errors("connect", "AWS KMS"):
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
        alias = self._free_alias(name)
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

    def import_key(self, name: str | None, private_key: Any,
                   algorithm: SignatureAlgorithm | str | None = None) -> AwsKmsSigner:
        """Bring your own key: a KMS key with ``Origin=EXTERNAL`` holding `private_key` (RSA or ECC).

        The documented flow: CreateKey (no key material), GetParametersForImport
        (RSA_AES_KEY_WRAP_SHA_256 with an RSA_4096 wrapping key), the PKCS#8 DER wrapped with
        `rsa_aes_key_wrap`, ImportKeyMaterial (never expires), then the alias. The imported
        key's public key is checked against the one given. Raises KeyExists,
        AlgorithmNotSupported (Ed25519 and ML-DSA: keyplane imports only the RSA and ECC
        key material AWS documents for this wrapping; or an endpoint without the import
        API, such as moto), ConfigError for an object that is not a private key.
        """
        if not hasattr(private_key, "public_key") or not hasattr(private_key, "private_bytes"):
            raise ConfigError("import_key needs a cryptography private key object (see signers.key_import)")
        expected = PublicKey(private_key.public_key())
        spec = expected.spec
        if spec.family not in (KeyFamily.EC, KeyFamily.RSA):
            raise AlgorithmNotSupported(
                f"keyplane does not import {spec.value} keys into AWS KMS: it imports the RSA and ECC signing "
                "key material AWS documents for RSA_AES_KEY_WRAP_SHA_256 (create the key in KMS instead)")
        chosen = choose_algorithm(spec, algorithm)
        alias = self._free_alias(name)
        key_id = self._call("CreateKey", spec.value, KeyUsage="SIGN_VERIFY", KeySpec=_KEY_SPECS[spec],
                            Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
        try:
            parameters = self._call("GetParametersForImport", key_id, KeyId=key_id,
                                    WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec="RSA_4096")
            try:
                wrapping = serialization.load_der_public_key(bytes(parameters["PublicKey"]))
            except (ValueError, UnsupportedAlgorithm) as e:
                raise BackendUnavailable("KMS returned a wrapping key that is not a DER public key", e) from e
            der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
            self._call("ImportKeyMaterial", key_id, KeyId=key_id, ImportToken=bytes(parameters["ImportToken"]),
                       EncryptedKeyMaterial=rsa_aes_key_wrap(wrapping, der),
                       ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
            if alias is not None:
                self._call("CreateAlias", alias, AliasName=alias, TargetKeyId=key_id)
            signer = self.open(alias or key_id, chosen)
            if signer.public_key != expected:
                raise BackendUnavailable(f"KMS imported {alias or key_id} but reports a different public key")
        except KeyplaneError as e:
            with suppress(KeyplaneError):  # the import error is the one worth reporting
                self._call("ScheduleKeyDeletion", key_id, KeyId=key_id, PendingWindowInDays=7)
            if isinstance(e, BackendUnavailable) and _not_a_kms_answer(e):
                raise AlgorithmNotSupported(
                    "this KMS endpoint does not implement key import: it answered GetParametersForImport with a "
                    "bare HTTP error, not a KMS error (moto 5.2.5 has no import; AWS KMS has)") from e
            raise
        return signer

    def _free_alias(self, name: str | None) -> str | None:
        """``alias/NAME`` when it is a valid alias nobody uses (KeyExists / ConfigError otherwise); None for no name."""
        if not name:
            return None
        alias = key_reference(name)
        if not ALIAS_PATTERN.fullmatch(alias) or alias.startswith("alias/aws/"):
            raise ConfigError(f"{name!r} cannot be a KMS alias: letters, digits, '/', '_' and '-' only")
        if self._exists(alias):
            raise KeyExists(f"alias {alias} already exists in {self.uri}")
        return alias

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
        with aws_errors("ListAliases", self.uri):
            for page in self._client.get_paginator("list_aliases").paginate():
                for entry in page.get("Aliases", []):
                    if entry.get("TargetKeyId"):
                        aliases.setdefault(entry["TargetKeyId"], []).append(entry["AliasName"])
        with aws_errors("ListKeys", self.uri):
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
        with aws_errors("ListAliases", ref):
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
        self.workers.shutdown()
        self._client.close()

    # -- internals ---------------------------------------------------------------------

    def _call(self, operation: str, subject: str, **params: Any) -> Any:
        """One KMS API call (`operation` in AWS's spelling) with errors translated."""
        method = getattr(self._client, _snake(operation))
        with aws_errors(operation, subject):
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
        arn = ARN_PATTERN.fullmatch(ref)
        if arn and arn.group(1) != self.region:
            raise ConfigError(f"key {ref} is in region {arn.group(1)}; this store is in {self.region}")
        if not (KEY_ID_PATTERN.fullmatch(ref) or arn or ALIAS_PATTERN.fullmatch(ref)):
            raise KeyNotFound(f"{ref!r} is not a KMS key id, alias or ARN, so no such key exists")
        return ref

    def _key_uri(self, ref: str) -> str:
        store = parse_uri(self.uri)
        query = dict(store.query)
        if ARN_PATTERN.fullmatch(ref):
            query.pop("region", None)  # the ARN carries it
        return KeyURI(SCHEME, "/" + ref, store.authority, {}, query).format()


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _not_a_kms_answer(error: BackendUnavailable) -> bool:
    """A 5xx whose error code is the bare HTTP status: the endpoint has no handler for the call (an emulator gap)."""
    response = getattr(error.cause, "response", None)
    code = str((response or {}).get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code.isdigit() and "GetParametersForImport" in str(error)
