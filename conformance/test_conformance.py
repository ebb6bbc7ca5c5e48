"""The harness as pytest items: ``pytest --pyargs conformance --keyplane-store=STORE_URI``.

The plugin parametrizes `keyplane_conformance_case` with every (key spec, check) pair
and runs the harness once; each item passes, fails or skips (not-supported / stubbed,
with the reason) exactly as its row in the report says. Without --keyplane-store the one
item skips, saying so.
"""

from __future__ import annotations

from conformance.plugin import judge
from conformance.report import Row


def test_conformance(keyplane_conformance_case: tuple[str, str], keyplane_conformance_row: Row | None) -> None:
    judge(keyplane_conformance_case, keyplane_conformance_row)
