"""A local Azure Key Vault (keys API) over HTTPS, with real keys, for the real azure-keyvault-keys SDK.

No Key Vault server can be run outside Azure, so this speaks the Key Vault REST API
(api-version 7.x / 2025-07-01) on loopback well enough for ``KeyClient`` and
``CryptographyClient``: create, get (latest or a version), list keys, list versions,
delete (soft delete: get deleted, purge, recover), rotate, import (PUT), update
(PATCH: enabled, dates, tags), sign and verify. Keys and
signatures are real (`cryptography`); EC signatures are raw r||s as Key Vault returns them.

Authentication is modelled as the SDK expects it: a request without a bearer token gets
``401`` with the ``WWW-Authenticate: Bearer authorization=..., resource=...`` challenge, the
SDK then retries with its credential's token, and a token the emulator does not know gets
``401`` again. Tokens may be given a subset of Key Vault's key permissions (``get``,
``list``, ``create``, ``import``, ``update``, ``delete``, ``sign``, ``verify``, ``purge``,
``recover``, ``rotate``)
to produce ``403``. `Handle.fail_next` injects ``429``/``5xx`` answers (with ``Retry-After``)
so that retry paths are tested against a real server.

TLS: a throwaway CA and a server certificate (for 127.0.0.1, ::1 and localhost) are made at
start; point the client at ``Handle.ca_pem_path`` (``connection_verify=`` in the SDK,
``?ca-bundle=`` in a keyplane URI). The SDK must be built with ``verify_challenge_resource=False``
because the vault's host is not under vault.azure.net.

    handle = start()                      # in-process, on a free port
    KeyClient(handle.url, credential, verify_challenge_resource=False, connection_verify=handle.ca_pem_path)
    handle.stop()

``keyplane emulator azure --port N`` runs it in the foreground (`serve_forever`).

The package: `model` (the vault's state, wire conventions), `operations` (the REST
operations), `server` (HTTPS, authentication, faults, start / serve_forever), `tls`.
"""

from __future__ import annotations

from .model import ALL_PERMISSIONS, PAGE_SIZE, RECOVERABLE_DAYS
from .server import Handle, serve_forever, start

__all__ = ["ALL_PERMISSIONS", "PAGE_SIZE", "RECOVERABLE_DAYS", "Handle", "serve_forever", "start"]
