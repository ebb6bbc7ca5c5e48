"""``awskms:`` URIs: the cosign forms, typed and bounded client settings (used by `backends.aws_kms`)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from signers.errors import ConfigError
from signers.uri import KeyURI
from signers.uri_options import checked_uri

__all__ = ["MAX_ATTEMPTS", "SCHEME", "AwsKmsLocation", "key_reference", "parse_awskms_uri"]

SCHEME = "awskms"
_QUERY = frozenset({"region", "profile", "endpoint", "algorithm", "connect-timeout", "read-timeout", "max-attempts"})
KEY_ID_PATTERN = re.compile(r"mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ALIAS_PATTERN = re.compile(r"alias/[A-Za-z0-9/_\-]{1,250}")
ARN_PATTERN = re.compile(r"arn:aws[a-z\-]*:kms:([a-z0-9\-]+):\d{12}:(key|alias)/[A-Za-z0-9/_\-]+")
_AUTHORITY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,252}))(?::(\d{1,5}))?")
_ENDPOINT = re.compile(r"https?://([^/?#\s]+)/?")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+){1,3}-\d{1,2}|[a-z0-9][a-z0-9\-]{1,40}")
MAX_ATTEMPTS = 10


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
        arn = ARN_PATTERN.fullmatch(key)
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
    if KEY_ID_PATTERN.fullmatch(name_or_ref) or ARN_PATTERN.fullmatch(name_or_ref) or name_or_ref.startswith("alias/"):
        return name_or_ref
    return f"alias/{name_or_ref}"


