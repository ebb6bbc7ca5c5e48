"""`signers.passport` kept for existing imports: the module lives in `signers.tokens` now."""

from signers.tokens.passport import *  # noqa: F403
from signers.tokens.passport import __all__  # noqa: F401
