"""The one place a python-pkcs11 exception becomes a keyplane error (backends.translation's shape).

`translate(exc, what, tokens, spec)` looks the exception's class up in one table; the store
wraps its calls in ``translated(translator(tokens, spec), what)``, and the signer's hot path
calls `translate` from a bare ``except`` (a try costs nothing until something is raised).
Messages name the token and the operation, never the PIN.
"""

from __future__ import annotations

from functools import partial

from backends.translation import Translator, by_class, code_table
from signers.algorithms import KeySpec, SignatureAlgorithm
from signers.errors import AlgorithmNotSupported, AuthenticationFailed, BackendUnavailable, KeyplaneError

from .pool import TokenSessions, loss_kind

__all__ = ["ERRORS", "translate", "translator"]

# python-pkcs11 exception (by class name) -> what it means to a caller.
ERRORS = code_table(
    auth=("PinIncorrect", "PinInvalid", "PinLenRange", "PinExpired", "PinLocked", "UserPinNotInitialized"),
    not_found=("NoSuchKey",),
    unsupported=("MechanismInvalid", "MechanismParamInvalid", "KeySizeRange", "DomainParamsInvalid",
                 "KeyTypeInconsistent", "FunctionNotSupported"),
    # an import template the token refuses; a token label several tokens share
    invalid=("TemplateInconsistent", "TemplateIncomplete", "AttributeValueInvalid", "MultipleTokensReturned"),
    # read-only token or session; a secret attribute of a sensitive key asked for; the SO logged in to this token
    denied=("TokenWriteProtected", "SessionReadOnly", "FunctionRejected", "AttributeSensitive",
            "AnotherUserAlreadyLoggedIn"),
    unavailable=("NoSuchToken",),
)


def translate(exc: BaseException, what: str, tokens: TokenSessions | None = None,
              spec: KeySpec | SignatureAlgorithm | None = None) -> KeyplaneError | None:
    """The keyplane error for a python-pkcs11 failure `exc` while doing `what`; None for anything else.

    A lost session / object / token that did not come back (the pool retried once) is
    BackendUnavailable with the cause attached.
    """
    if isinstance(exc, KeyplaneError) or not type(exc).__module__.startswith("pkcs11"):
        return None
    where = tokens.name if tokens is not None else "the PKCS#11 module"
    name = type(exc).__name__
    error = by_class(ERRORS, exc, "pkcs11")
    if error is AuthenticationFailed:
        return AuthenticationFailed(f"{where} rejected the PIN ({name})")
    if error is AlgorithmNotSupported:
        about = f" {spec.value}" if spec is not None else ""
        return AlgorithmNotSupported(f"{where} does not support{about} ({name}) while {what}")
    if error is not None and error is not BackendUnavailable:
        return error(f"{what} on {where} failed: {name}")
    lost = loss_kind(exc)
    reason = f"the {lost} was lost and did not come back" if lost else f"the token failed ({name})"
    return BackendUnavailable(f"{what} on {where}: {reason}", exc)


def translator(tokens: TokenSessions | None, spec: KeySpec | SignatureAlgorithm | None = None) -> Translator:
    """`translate` bound to one token (and spec), in the shape backends.translation.translated takes."""
    bound: Translator = partial(translate, tokens=tokens, spec=spec)
    return bound
