"""Re-export of `signers.translation` (the one error-translation shape), and what back ends build tables with.

`code_table` builds a back end's CodeTable from its SDK's codes grouped by what they mean
to a caller, so no back end restates which keyplane error a "not found" is; `by_class`
looks up an SDK exception tabled by class name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from signers import errors
from signers.translation import CodeTable, Translator, translated

__all__ = ["CodeTable", "Translator", "by_class", "code_table", "translated"]

# What an SDK code can mean to a caller -> the keyplane error it becomes.
MEANINGS: dict[str, type[errors.KeyplaneError]] = {
    "auth": errors.AuthenticationFailed,
    "denied": errors.PermissionDenied,
    "not_found": errors.KeyNotFound,
    "exists": errors.KeyExists,
    "disabled": errors.KeyDisabled,
    "invalid": errors.ConfigError,
    "unsupported": errors.AlgorithmNotSupported,
    "unavailable": errors.BackendUnavailable,
}


def code_table(messages: Mapping[str, str] | None = None, **groups: Iterable[str | int]) -> CodeTable:
    """A CodeTable from SDK codes (or class names, or HTTP statuses) grouped by meaning (`MEANINGS`' keys).

    `messages` words each meaning for `CodeTable.error`; anything untabled is BackendUnavailable.
    Raises KeyError for a meaning `MEANINGS` does not know (a programming error, at import).
    """
    codes = {code: MEANINGS[meaning] for meaning, members in groups.items() for code in members}
    worded = {MEANINGS[meaning]: text for meaning, text in (messages or {}).items()}
    return CodeTable(codes=codes, messages=worded)


def by_class(table: CodeTable, e: BaseException, module: str) -> type[errors.KeyplaneError] | None:
    """The error `table` gives an exception of the SDK `module` (tabled by class name), or None.

    The most specific class of `e` defined in `module` that the table names wins, so a table
    need not be ordered; an exception from elsewhere (or of an untabled class) is None.
    """
    for cls in type(e).__mro__:
        if cls.__module__.startswith(module) and cls.__name__ in table.codes:
            return table.lookup(cls.__name__)
    return None
