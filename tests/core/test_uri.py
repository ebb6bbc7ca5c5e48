"""Key URI parsing: every documented form (README, docs/core.md), round trips, and garbage -> ConfigError only."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signers import ConfigError, KeyURI, parse_uri

DESIGN_FORMS = [
    "file:/var/lib/keyplane/ca?password-source=env:KEYPLANE_PASSWORD",
    "pkcs11:token=agents;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:PKCS11_PIN",
    "pkcs11:token=agents;object=ca;id=%01%02?module-path=/x.so&pin-source=file:/run/pin",
    "awskms:///alias/ca",
    "awskms://127.0.0.1:5005/1234abcd-12ab-34cd-56ef-1234567890ab",
    "awskms:///arn:aws:kms:us-east-1:111122223333:key/1234abcd",
    "azurekms://myvault.vault.azure.net/ca",
    "azurekms://myvault.vault.azure.net/ca/0123456789abcdef",
    "gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K",
    "gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/3",
    "hashivault://ca?version=2",
    "hashivault://?addr=http://127.0.0.1:8200&mount=transit",
    "file:/var/lib/keyplane",
    "pkcs11:token=agents?module-path=/x.so",
    "awskms://127.0.0.1:5005/",
    "azurekms://myvault.vault.azure.net",
    "gcpkms://projects/P/locations/L/keyRings/R",
]


@pytest.mark.parametrize("text", DESIGN_FORMS)
def test_design_forms_round_trip_exactly(text: str) -> None:
    uri = parse_uri(text)
    assert uri.format() == text
    assert parse_uri(uri.format()) == uri


def test_pkcs11_attributes_are_split_and_decoded() -> None:
    uri = parse_uri("pkcs11:token=my%20token;object=ca;id=%01%ff?module-path=/x.so&pin-source=env:PIN")
    assert uri.attributes == {"token": "my token", "object": "ca", "id": "\x01\udcff"}
    assert uri.attributes["id"].encode("utf-8", "surrogateescape") == b"\x01\xff"
    assert uri.query == {"module-path": "/x.so", "pin-source": "env:PIN"}


def test_cloud_forms_split_authority_and_path() -> None:
    assert parse_uri("awskms:///alias/ca").authority == ""
    assert parse_uri("awskms:///alias/ca").path == "/alias/ca"
    local = parse_uri("awskms://127.0.0.1:5005/abc")
    assert (local.authority, local.path) == ("127.0.0.1:5005", "/abc")
    vault = parse_uri("hashivault://ca?version=10")
    assert (vault.authority, vault.path, vault.query["version"]) == ("ca", "", "10")
    assert parse_uri("file:/var/lib/x").authority is None


def test_secret_values_never_print() -> None:
    uri = parse_uri("pkcs11:token=t;object=o;pin-value=1234?module-path=/x.so")
    assert "1234" not in str(uri) and "1234" not in repr(uri)
    assert uri.attributes["pin-value"] == "1234"  # still usable by the back end
    assert "token=t" in str(uri)


@pytest.mark.parametrize(
    "bad",
    [
        "", "no-scheme", ":nothing", "1file:/x", "file:/x#frag", "file:/x?a", "file:/x?a=1&a=2",
        "pkcs11:token", "pkcs11:token=a;;object=b", "pkcs11:token=a;token=b", "file:/x%zz", "file:/x?a=%4",
        "file:/x y", "file:/x\n", "pkcs11:tok en=a", "file:/x?=1",
    ],
)
def test_malformed_uris_raise_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_uri(bad)


def test_non_string_is_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_uri(None)  # type: ignore[arg-type]


# -- property tests --------------------------------------------------------------------

_name = st.text(alphabet=string.ascii_lowercase + string.digits + "-_.", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum()
)
_value = st.text(min_size=0, max_size=20)  # any unicode, including delimiters and '%'
_attrs = st.dictionaries(_name, _value, max_size=4)


@st.composite
def key_uris(draw: st.DrawFn) -> KeyURI:
    if draw(st.booleans()):
        return KeyURI("pkcs11", attributes=draw(_attrs), query=draw(_attrs))
    scheme = draw(st.sampled_from(["file", "awskms", "azurekms", "gcpkms", "hashivault", "x-vendor"]))
    authority = draw(st.one_of(st.none(), st.just(""), st.text(alphabet=string.ascii_letters + string.digits + ".:-", min_size=1, max_size=20)))
    path = draw(st.text(max_size=30).filter(lambda p: "?" not in p or True))
    if authority == "" and not path.startswith("/"):
        path = "/" + path
    if authority not in (None, "") and path and not path.startswith("/"):
        path = "/" + path
    if authority is None and path.startswith("//"):
        authority = ""
    return KeyURI(scheme, path, authority, {}, draw(_attrs))


@settings(max_examples=400, deadline=None)
@given(key_uris())
def test_parse_of_format_is_identity(uri: KeyURI) -> None:
    assert parse_uri(uri.format()) == uri


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=60))
def test_garbage_gives_config_error_or_a_uri(text: str) -> None:
    try:
        uri = parse_uri(text)
    except ConfigError:
        return
    assert isinstance(uri, KeyURI)
    assert parse_uri(uri.format()) == uri


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(DESIGN_FORMS), st.integers(min_value=0, max_value=80), st.text(min_size=1, max_size=3))
def test_mutated_uris_never_raise_anything_else(base: str, at: int, insert: str) -> None:
    text = base[:at] + insert + base[at:]
    with contextlib.suppress(ConfigError):
        parse_uri(text)
