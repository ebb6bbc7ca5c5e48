"""Key and store URIs: one parser for every back end.

Two shapes cover every form in docs/core.md (Key URIs):

* RFC 7512 PKCS#11: ``pkcs11:token=agents;object=ca;id=%01?module-path=/x.so&pin-source=env:PIN``
  (path attributes split on ``;``, query attributes on ``&``, both percent-encoded);
* hierarchical: ``scheme:path``, ``scheme://authority/path`` and ``scheme:///path``,
  each with an optional ``?query`` (``awskms:///alias/ca``, ``gcpkms://projects/...``,
  ``hashivault://key?version=2``, ``file:/var/lib/keyplane/ca``).

Every malformed input raises ConfigError, never another exception, and never echoes a
secret: an error names the offending part (``attribute 3 of the query``), never the text of
an attribute, and a URI is printed only through `KeyURI.public`, which drops every
secret-bearing attribute (`is_secret_attribute`: RFC 7512's ``pin-value`` and every other
``*-value``, plus the names in `SECRET_ATTRIBUTES`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

from .errors import ConfigError

__all__ = ["SECRET_ATTRIBUTES", "KeyURI", "is_secret_attribute", "parse_uri", "redacted"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_ATTR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")

# Attributes whose value is a secret itself (not a reference to one, as ``*-source`` is).
# They are accepted for RFC 7512 compatibility but removed from every URI we print or store;
# `is_secret_attribute` also treats every other ``*-value`` / ``*-secret`` name as one.
# (Not ``token``: in RFC 7512 that is the token's label.)
SECRET_ATTRIBUTES = frozenset({
    "pin-value", "password-value", "token-value", "secret-value", "key-value",
    "pin", "password", "passphrase", "secret", "client-secret", "secret-access-key", "api-key",
})


def is_secret_attribute(name: str) -> bool:
    """True when an attribute of that name carries a secret value (and must never be printed)."""
    lowered = name.lower()
    return lowered in SECRET_ATTRIBUTES or lowered.endswith(("-value", "-secret", "-password", "-token"))

# Characters left unescaped when formatting (RFC 3986 pchar minus our delimiters).
_SAFE_PATH = "/:@!$'()*+,-._~"
_SAFE_ATTR = ":@!$'()*+,-._~/"


def _decode(text: str, where: str) -> str:
    if _PCT.search(text):
        raise ConfigError(f"bad percent-encoding in {where}")
    # surrogateescape keeps non-UTF-8 bytes (a PKCS#11 id such as %ff) round-trippable.
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def _encode(text: str, safe: str) -> str:
    return quote(text.encode("utf-8", "surrogateescape"), safe=safe)


def _parse_pairs(text: str, sep: str, where: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    if text == "":
        return pairs
    # Errors name an attribute by its position, never by its text: a mistyped separator
    # (``pin-value:1234``) must not put the PIN into the message.
    for position, item in enumerate(text.split(sep), start=1):
        if item == "":
            raise ConfigError(f"empty attribute {position} in {where}")
        name, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"attribute {position} in {where} has no '='")
        if len(name) > 64 or not _ATTR_NAME.match(name):
            raise ConfigError(f"attribute {position} in {where} has a malformed name")
        name = name.lower()
        if name in pairs:
            raise ConfigError(f"attribute {name!r} given twice in {where}")
        pairs[name] = _decode(value, f"attribute {name!r}")
    return pairs


def _changed(attributes: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """A copy of `attributes` with each change set (a value) or removed (None); `_` in a name is `-`."""
    result = dict(attributes)
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


@dataclass(frozen=True)
class KeyURI:
    """A parsed key or store URI.

    `authority` is None when the URI has no ``//`` and ``""`` for ``scheme:///path``;
    `path` is percent-decoded and keeps its leading ``/`` (``awskms://h:1/KEY`` -> ``/KEY``,
    ``hashivault://KEY`` -> authority ``KEY``, path ``""``).
    """

    scheme: str
    path: str = ""
    authority: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)  # RFC 7512 path attributes
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_pkcs11(self) -> bool:
        return self.scheme == "pkcs11"

    def get(self, name: str, default: str | None = None) -> str | None:
        """A query attribute, falling back to a path attribute (RFC 7512 allows both places for some)."""
        if name in self.query:
            return self.query[name]
        return self.attributes.get(name, default)

    def with_query(self, **changes: str | None) -> KeyURI:
        """A copy with query attributes set (value) or removed (None); names use `_` for `-`."""
        return KeyURI(self.scheme, self.path, self.authority, dict(self.attributes), _changed(self.query, changes))

    def with_attributes(self, **changes: str | None) -> KeyURI:
        """A copy with path attributes set (value) or removed (None); names use `_` for `-`."""
        return KeyURI(self.scheme, self.path, self.authority, _changed(self.attributes, changes), dict(self.query))

    def public(self) -> KeyURI:
        """This URI without any attribute that carries a secret value."""
        return KeyURI(
            self.scheme,
            self.path,
            self.authority,
            {k: v for k, v in self.attributes.items() if not is_secret_attribute(k)},
            {k: v for k, v in self.query.items() if not is_secret_attribute(k)},
        )

    def format(self) -> str:
        """The URI as text; `parse_uri(uri.format()) == uri`."""
        out = [self.scheme, ":"]
        if self.is_pkcs11:
            out.append(";".join(f"{k}={_encode(v, _SAFE_ATTR)}" for k, v in self.attributes.items()))
        else:
            if self.authority is not None:
                out.append("//" + _encode(self.authority, "@:[]!$'()*+,;=-._~"))
                if self.path and not self.path.startswith("/"):
                    out.append("/")  # a path after an authority always starts with "/"
            elif self.path.startswith("//"):
                out.append("//")  # empty authority keeps a path starting with // unambiguous
            out.append(_encode(self.path, _SAFE_PATH + ";="))
        if self.query:
            out.append("?" + "&".join(f"{k}={_encode(v, _SAFE_ATTR)}" for k, v in self.query.items()))
        return "".join(out)

    def __str__(self) -> str:
        return self.public().format()

    def __repr__(self) -> str:
        return f"KeyURI({self.public().format()!r})"


def parse_uri(text: str) -> KeyURI:
    """Parse a key or store URI; ConfigError for anything malformed."""
    if not isinstance(text, str):
        raise ConfigError(f"a key URI must be a string, not {type(text).__name__}")
    if any("\ud800" <= c <= "\udfff" for c in text):  # a lone surrogate: an undecodable byte from argv
        raise ConfigError("key URI is not valid UTF-8 text; percent-encode raw bytes (%FF)")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise ConfigError("key URI contains whitespace or control characters")
    if "#" in text:
        raise ConfigError("key URI must not contain a fragment ('#')")
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.match(scheme):
        raise ConfigError("not a key URI: it must start with a scheme such as 'file:' or 'pkcs11:'")
    scheme = scheme.lower()
    body, _, query_text = rest.partition("?")
    query = _parse_pairs(query_text, "&", "the query")
    if scheme == "pkcs11":
        return KeyURI(scheme, attributes=_parse_pairs(body, ";", "the PKCS#11 path"), query=query)
    authority: str | None = None
    path = body
    if body.startswith("//"):
        # As in URLs: the path keeps its leading "/" (``awskms://host:4566/KEY`` -> path "/KEY").
        authority_text, slash, path_text = body[2:].partition("/")
        authority = _decode(authority_text, "the authority")
        path = slash + path_text
    return KeyURI(scheme, _decode(path, "the path"), authority, {}, query)


def redacted(text: str) -> str:
    """`text` as a URI safe to print: secret-bearing attributes removed; a placeholder if it does not parse."""
    try:
        return parse_uri(text).public().format()
    except ConfigError:
        return "<malformed URI>"
