"""awskms: URIs: the cosign forms, where region and endpoint come from, what is refused."""

from __future__ import annotations

import pytest

from backends.aws_kms import AwsKmsKeyStore, AwsKmsLocation, key_reference, parse_awskms_uri
from signers.errors import ConfigError

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ARN = f"arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}"


@pytest.mark.parametrize(
    ("uri", "key", "endpoint", "region"),
    [
        (f"awskms:///{KEY_ID}", KEY_ID, None, None),
        ("awskms:///alias/ca", "alias/ca", None, None),
        (f"awskms:///{ARN}", ARN, None, "eu-west-1"),
        ("awskms:///arn:aws:kms:us-east-2:111122223333:alias/ca", "arn:aws:kms:us-east-2:111122223333:alias/ca",
         None, "us-east-2"),
        (f"awskms://127.0.0.1:5005/{KEY_ID}", KEY_ID, "http://127.0.0.1:5005", None),
        ("awskms://localhost:4566/alias/ca?region=us-west-2", "alias/ca", "http://localhost:4566", "us-west-2"),
        ("awskms://kms.example.com/alias/ca", "alias/ca", "https://kms.example.com", None),
        ("awskms://[::1]:5005/alias/ca", "alias/ca", "http://[::1]:5005", None),
        ("awskms:///alias/ca?endpoint=https://vpce.example:443", "alias/ca", "https://vpce.example:443", None),
        ("awskms:///?region=eu-central-1", None, None, "eu-central-1"),
        ("awskms://127.0.0.1:5005/", None, "http://127.0.0.1:5005", None),
    ],
)
def test_cosign_forms(uri: str, key: str | None, endpoint: str | None, region: str | None) -> None:
    location, _ = parse_awskms_uri(uri)
    assert (location.key, location.endpoint, location.region) == (key, endpoint, region)


def test_profile_algorithm_and_client_settings() -> None:
    location, _ = parse_awskms_uri(
        "awskms:///alias/ca?profile=ci&algorithm=RS256&connect-timeout=1.5&read-timeout=3&max-attempts=2"
    )
    assert location == AwsKmsLocation(None, None, "ci", "alias/ca", "RS256", 1.5, 3.0, 2)


@pytest.mark.parametrize(
    "uri",
    [
        "file:/tmp/x",
        "awskms:///alias/ca?colour=blue",
        f"awskms:///{ARN}?region=us-east-1",  # the ARN says eu-west-1
        "awskms:///alias/ca?max-attempts=many",
    ],
)
def test_refused(uri: str) -> None:
    with pytest.raises(ConfigError):
        parse_awskms_uri(uri)


def test_store_uri_keeps_endpoint_region_profile_only() -> None:
    location, authority = parse_awskms_uri("awskms://127.0.0.1:5005/alias/ca?region=us-east-1&profile=p")
    assert location.store_uri(authority) == "awskms://127.0.0.1:5005/?region=us-east-1&profile=p"
    location, authority = parse_awskms_uri("awskms:///alias/ca?endpoint=http://h:1")
    assert location.store_uri(authority) == "awskms:///?endpoint=http://h:1"


@pytest.mark.parametrize(
    ("given", "reference"),
    [("ca", "alias/ca"), ("alias/ca", "alias/ca"), (KEY_ID, KEY_ID), (ARN, ARN),
     ("mrk-1234abcd12ab34cd56ef1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ab")],
)
def test_a_bare_name_is_an_alias(given: str, reference: str) -> None:
    assert key_reference(given) == reference


# -- bounded, typed client settings (issue 14 item 10) ------------------------------------


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("awskms://127.0.0.1:99999/", "port"),
        ("awskms://127.0.0.1:0/", "port"),
        ("awskms://127.0.0.1:abc/", "HOST"),
        ("awskms://bad host/", "whitespace"),
        ("awskms://bad_host!/", "HOST"),
        ("awskms:///?endpoint=ftp://x", "endpoint"),
        ("awskms:///?endpoint=http://h:70000", "port"),
        ("awskms:///?endpoint=notaurl", "endpoint"),
        ("awskms:///?endpoint=", "endpoint"),
        ("awskms:///?region=us%20east", "region"),
        ("awskms:///?connect-timeout=nan", "connect-timeout"),
        ("awskms:///?connect-timeout=inf", "connect-timeout"),
        ("awskms:///?read-timeout=-1", "read-timeout"),
        ("awskms:///?read-timeout=0", "read-timeout"),
        ("awskms:///?read-timeout=1e308", "read-timeout"),
        ("awskms:///?max-attempts=1000000", "max-attempts"),
        ("awskms:///?max-attempts=0", "max-attempts"),
        ("awskms:///?max-attempts=-3", "max-attempts"),
        ("awskms:///?max-attempts=2.5", "max-attempts"),
        ("awskms:///?max-attempts=%EF%BC%93", "max-attempts"),  # a full-width digit
    ],
)
def test_bad_endpoint_port_timeouts_and_attempts_are_config_errors(uri: str, names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        parse_awskms_uri(uri)
    with pytest.raises(ConfigError, match=names):
        AwsKmsKeyStore.from_uri(uri + ("&" if "?" in uri else "?") + "region=us-east-1"
                                if "region=" not in uri else uri)


@pytest.mark.parametrize("name", ["ca\n", "alias/ca\n", "ca\r", "alias/ca\x00"])
def test_alias_names_with_newlines_are_not_aliases(name: str) -> None:
    store = AwsKmsKeyStore.from_uri("awskms://127.0.0.1:9/?region=us-east-1&max-attempts=1")
    with pytest.raises(ConfigError, match="alias"):
        store.create_key(name, "P-256")
