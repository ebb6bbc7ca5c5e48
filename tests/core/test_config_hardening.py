"""Hostile keyplane.toml files and URIs: typed errors only, and no secret in any repr or message (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import signers
from signers import Config, ConfigError, parse_uri
from signers.config import KeyEntry
from signers.uri import is_secret_attribute

PIN = "8274-SECRET-PIN"
PKCS11_WITH_PIN = f"pkcs11:token=agents;object=ca?module-path=/x.so&pin-value={PIN}"


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    path = tmp_path / "keyplane.toml"
    path.write_text(text)
    return Config.load(path, environ=environ or {})


# -- secrets never shown ------------------------------------------------------------------


def test_repr_of_config_and_key_entry_hide_inline_pin_values(tmp_path: Path) -> None:
    config = load(tmp_path, f'[stores.hsm]\nuri = "{PKCS11_WITH_PIN}"\n\n[keys.ca]\nuri = "{PKCS11_WITH_PIN}"\n'
                            '[keys.signing]\nstore = "hsm"\n')
    for text in (repr(config), str(config), repr(config.key("ca")), repr(config.keys), str(config.key("signing"))):
        assert PIN not in text
        assert "pin-value" not in text
    assert "token=agents" in repr(config)  # the non-secret part stays visible
    assert config.stores["hsm"] == PKCS11_WITH_PIN  # the value itself is kept, to open the key with


def test_key_entry_repr_of_a_hand_made_entry() -> None:
    entry = KeyEntry("x", uri=f"awskms:///alias/x?token-value={PIN}&region=eu-west-1")
    assert PIN not in repr(entry) and "region=eu-west-1" in repr(entry)


@pytest.mark.parametrize("name", ["pin-value", "PIN-VALUE", "password-value", "token-value", "client-secret",
                                  "secret-access-key", "passphrase", "anything-value"])
def test_every_secret_bearing_attribute_is_redacted(name: str) -> None:
    assert is_secret_attribute(name)
    uri = parse_uri(f"awskms:///alias/k?region=x&{name}={PIN}")
    assert PIN not in str(uri) and PIN not in repr(uri) and PIN not in uri.public().format()


@pytest.mark.parametrize("name", ["token", "object", "module-path", "pin-source", "password-source", "region"])
def test_references_and_labels_are_not_secrets(name: str) -> None:
    assert not is_secret_attribute(name)


@pytest.mark.parametrize("text", [
    f"pkcs11:token=t;pin-value:{PIN}",            # ':' typed for '='
    f"pkcs11:token=t?pin-value{PIN}",             # '=' missing
    f"pkcs11:token=t?{PIN}",                      # the bare PIN as an attribute
    f"pkcs11:{PIN}!=x",                           # a malformed attribute name
    f"pkcs11:token=t?module-path=/x&pin-value={PIN}%zz",  # bad percent-encoding
    f"pkcs11:token=t?pin-value={PIN}&pin-value={PIN}",    # twice
    f"pkcs11:token=t;;pin-value={PIN}",
])
def test_malformed_attribute_errors_never_echo_attribute_text(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_uri(text)
    assert PIN not in str(caught.value)
    assert "8274" not in str(caught.value)


@pytest.mark.parametrize("text", [
    f"pkcs11:token=a\udcff;object=b?pin-value={PIN}",
    f"pkcs11:token=a?pin-value={PIN}\ud800",
    "file:/var/lib/\udce9t\udce9",
])
def test_a_surrogate_in_a_uri_is_config_error_without_the_uri(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_uri(text)
    assert PIN not in str(caught.value) and "var/lib" not in str(caught.value)
    assert caught.value.__context__ is None  # no UnicodeEncodeError (which holds the whole URI) chained


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=60))
def test_parse_uri_never_raises_anything_but_config_error(tail: str) -> None:
    for text in (f"pkcs11:token={tail};object=o?pin-value={PIN}", f"file:{tail}?pin-value={PIN}", tail):
        try:
            parse_uri(text)
        except ConfigError as e:
            assert PIN not in str(e)


# -- hostile configuration files ----------------------------------------------------------


def test_unknown_field_in_a_store_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[stores.hsm\] has unknown field\(s\) \['urii'\]"):
        load(tmp_path, '[stores.hsm]\nuri = "file:/x"\nurii = "file:/y"\n')


def test_unknown_field_in_a_key_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[keys.ca\] has unknown field\(s\) \['algoritm'\]"):
        load(tmp_path, '[keys.ca]\nuri = "file:/x/ca"\nalgoritm = "ES256"\n')


@pytest.mark.parametrize("text", [
    '[keys.a]\nuri = "a"\n',                                      # a key naming itself
    '[keys.a]\nuri = "b"\n[keys.b]\nuri = "a"\n',                # two keys naming each other
    '[stores.s]\nuri = "s"\n[keys.a]\nstore = "s"\n',            # a store naming itself
])
def test_self_referencing_entries_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="must be a URI"):
        load(tmp_path, text)


def test_a_self_referencing_environment_override_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KEYPLANE_KEY_A_URI"):
        load(tmp_path, "", environ={"KEYPLANE_KEY_A_URI": "a"})


def test_a_hand_made_self_referencing_config_does_not_recurse() -> None:
    config = Config(keys={"a": KeyEntry("a", uri="a")})
    with pytest.raises(ConfigError, match="not the name of another key"):
        signers.open("a", config=config)


@pytest.mark.parametrize("text", ["a = " + "[" * 50_000 + "]" * 50_000, "a = " + "{b=" * 5_000 + "1" + "}" * 5_000])
def test_deeply_nested_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load(tmp_path, text)


def test_a_binary_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "keyplane.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Config.load(path, environ={})


@pytest.mark.parametrize("text", [
    '[keys.a]\nuri = 7\n', '[keys.a]\nstore = 7\n[stores.s]\nuri = "file:/x"\n', '[keys.a]\nuri = "file:/x"\nname = 3\n',
    '[stores.s]\nuri = ["file:/x"]\n', '[stores.s]\n', f'[stores.s]\nuri = "pkcs11:{PIN}"\n',
])
def test_wrongly_typed_fields_are_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert PIN not in str(caught.value)
