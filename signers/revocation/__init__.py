"""`signers.revocation` kept for existing imports: the modules live in `signers.tokens` now."""

from signers.tokens.revocation import *  # noqa: F403
from signers.tokens.revocation import __all__ as _store_names
from signers.tokens.revocation_list import *  # noqa: F403
from signers.tokens.revocation_list import __all__ as _list_names

__all__ = [*_store_names, *_list_names]
