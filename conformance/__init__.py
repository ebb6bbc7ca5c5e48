"""The conformance harness: run any key store (ours or a vendor's) through the same checks.

```python
from conformance import Target, run_conformance
report = run_conformance(Target("file:/tmp/store?password-source=env:PW", bad_credentials_uri=...))
report.write("reports/conformance-file")      # .md and .json
assert report.ok, report.to_markdown()
```

The same checks run from ``keyplane conformance run STORE_URI`` and from
``pytest --pyargs conformance --keyplane-store=STORE_URI``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checks import CHECKS, STORE_CHECKS
    from .report import Report, Row
    from .runner import run_conformance
    from .target import Target

__all__ = ["CHECKS", "STORE_CHECKS", "Report", "Row", "Target", "run_conformance"]

# Resolved on first use, so `keyplane --help` (which imports our command modules) stays fast.
_LAZY = {name: module for module, names in (("checks", ("CHECKS", "STORE_CHECKS")), ("report", ("Report", "Row")),
                                            ("target", ("Target",)), ("runner", ("run_conformance",)))
         for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)
