"""The options `keyplane conformance run` and the pytest plugin share: one table, one mapping to a Target.

The CLI spells each ``--NAME``, the plugin ``--keyplane-NAME``. Nothing heavy is imported here:
pytest loads the plugin (and so this module) in every run of a project that installs keyplane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["OPTIONS", "target_fields"]

# name -> argparse / pytest keyword arguments, in the order --help lists them.
OPTIONS: dict[str, dict[str, Any]] = {
    "name": {"help": "name of the back end in the report (default: the URI scheme)"},
    "spec": {"action": "append", "default": [], "metavar": "SPEC",
             "help": "key spec (or composite variant) to judge (repeatable; default: every spec, or every "
                     "composite variant for a composite: store)"},
    "bad-credentials-uri": {"metavar": "URI", "help": "the same store with a wrong PIN/password/token"},
    "unreachable-uri": {"metavar": "URI", "help": "the store at an address where nothing answers"},
    "secret-env": {"action": "append", "default": [], "metavar": "NAME",
             "help": "environment variable holding a secret that must never leak (repeatable)"},
    "plugin": {"action": "append", "default": [], "metavar": "SCHEME=MODULE:CLASS",
             "help": "register a back end class for a URI scheme (repeatable)"},
    "timeout": {"type": float, "default": 10.0, "metavar": "SECONDS",
             "help": "seconds the unreachable check may take (default 10)"},
    "page": {"type": int, "default": 25, "metavar": "N",
             "help": "extra keys the listing check creates, more than one page of the service (default 25)"},
    "latency": {"type": float, "metavar": "SECONDS",
             "help": "seconds per signature to size the concurrency workload (default: measured)"},
}


def target_fields(get: Callable[[str], Any], parse_spec: Callable[[str], Any]) -> dict[str, Any]:
    """Target keyword arguments from the shared options; `get(name)` reads one by its table name.

    `parse_spec` is `conformance.specs.parse_spec`, passed in so that this module imports nothing.
    """
    return {
        "name": get("name"),
        "specs": [parse_spec(s) for s in get("spec")] or None,
        "bad_credentials_uri": get("bad-credentials-uri"),
        "unreachable_uri": get("unreachable-uri"),
        "timeout": get("timeout"),
        "page": get("page"),
        "signing_latency": get("latency"),
    }
