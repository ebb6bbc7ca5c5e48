"""`keyplane serve`: the issuer service, a thin HTTP shell over the library.

Every handler parses, validates, makes one library call and renders: the service issues
passports and action tokens with `signers.agents` / `signers.tokens`, keeps agents'
signed histories with `signers.agents.lifecycle`, answers the gate with
`signers.agents.gate.Gate`, revokes into a `signers.stores` state store, signs CRLs and
certificates with `signers.x509`, and records every write in the audit chain with the
caller's name. The modules:

- `config`: the ``[server]`` section of keyplane.toml (no web framework imported);
- `service`: the library objects built from it (no web framework either);
- `app`, `public`, `api_tokens`, `api_agents`, `http`, `openapi`, `logs`: the Starlette app
  (``pip install 'keyplane[server]'``);
- `webhooks`, `metrics`, `registry`: event delivery, Prometheus text, the agent registry;
- ``dashboard/``: the static operator page served at ``/``.
"""

from __future__ import annotations

from .config import ServerConfig

__all__ = ["ServerConfig"]
