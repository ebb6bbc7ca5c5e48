"""AWS KMS error translation: the one table from botocore failures to keyplane errors (used by `backends.aws_kms`)."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

from signers.errors import (
    AlgorithmNotSupported,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigError,
    KeyDisabled,
    KeyNotFound,
    KeyplaneError,
    PermissionDenied,
)
from signers.sdk import require

from .translation import code_table, translated

__all__ = ["CODES", "aws_errors"]

# AWS error codes by what they mean to a caller (KMSInvalidStateException and ValidationException depend
# on the message or the operation: `_client_error` decides those before the table).
CODES = code_table(
    auth=("UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId", "SignatureDoesNotMatch",
          "IncompleteSignature", "MissingAuthenticationToken", "ExpiredTokenException", "ExpiredToken", "AuthFailure",
          "InvalidAccessKeyId", "InvalidToken"),
    denied=("AccessDeniedException", "AccessDenied", "NotAuthorizedException"),
    not_found=("NotFoundException", "InvalidArnException"),
    disabled=("DisabledException",),
    exists=("AlreadyExistsException",),
    unsupported=("UnsupportedOperationException", "InvalidKeyUsageException"),
    unavailable=("ThrottlingException", "Throttling", "RequestLimitExceeded", "LimitExceededException",
                 "KeyUnavailableException", "DependencyTimeoutException", "KMSInternalException", "InternalFailure",
                 "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
                 "CustomKeyStoreInvalidStateException"),
    messages={"auth": "credentials rejected", "denied": "access denied", "not_found": "no such key",
              "disabled": "the key is disabled", "exists": "already exists", "unsupported": "not supported",
              "unavailable": "failed after retries"},
)
_QUIET = (AuthenticationFailed, PermissionDenied)  # AWS's text about credentials and policies is not repeated
_XML_CODE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")


def aws_errors(operation: str, subject: str) -> AbstractContextManager[None]:
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
    if code == "KMSInvalidStateException" and "deletion" in message.lower():
        return KeyNotFound(f"{where}: the key is scheduled for deletion ({message})")
    if code == "KMSInvalidStateException":
        return KeyDisabled(f"{where}: the key cannot be used in its current state ({message or code})")
    if code == "ValidationException" and operation == "CreateKey":
        return AlgorithmNotSupported(f"{where}: this KMS does not create such keys ({message})")
    if code in CODES.codes or status >= 500:
        quiet = CODES.lookup(code) in _QUIET
        return CODES.error(code or status, where, "" if quiet else message, e)
    if code == "ValidationException":
        return ConfigError(f"{where}: {message}")
    return BackendUnavailable(f"{where}: unexpected {code or status}: {message}", e)
