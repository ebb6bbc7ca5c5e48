"""Re-export of `signers.translation`: the one error-translation shape, for back ends."""

from __future__ import annotations

from signers.translation import CodeTable, Translator, translated

__all__ = ["CodeTable", "Translator", "translated"]
