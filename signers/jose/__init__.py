"""`signers.jose` kept for existing imports: the module lives in `signers.tokens` now."""

from signers.tokens.jose import *  # noqa: F403
from signers.tokens.jose import __all__  # noqa: F401
