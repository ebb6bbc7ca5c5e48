"""`signers.audit` kept for existing imports: the module lives in `signers.tokens` now."""

from signers.tokens.audit import *  # noqa: F403
from signers.tokens.audit import __all__  # noqa: F401
