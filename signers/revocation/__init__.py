"""`signers.revocation` kept for existing imports: the module lives in `signers.tokens` now."""

from signers.tokens.revocation import *  # noqa: F403
from signers.tokens.revocation import __all__  # noqa: F401
