"""``keyplane bench STORE_URI``: signatures per second and p50/p99 latency, as a table or JSON."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any


def register(subparsers: Any) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="measure signing throughput and latency of a store",
        description="Sign with a fresh key per spec, single-threaded and from --threads threads, "
        "for --seconds each; print signatures/s and p50/p99 latency.",
    )
    bench.add_argument("store_uri", metavar="STORE_URI")
    bench.add_argument("--spec", action="append", default=[], metavar="SPEC",
                       help="key spec (repeatable; default: every spec the store claims)")
    bench.add_argument("--threads", type=int, default=8, help="threads in the concurrent phase (default 8)")
    bench.add_argument("--seconds", type=float, default=2.0, help="length of each phase (default 2)")
    # `keyplane --json bench ...` works too; a separate dest keeps the global flag from being reset.
    bench.add_argument("--json", dest="bench_json", action="store_true", help="print JSON")
    bench.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    # lazy: the bench machinery loads only when `keyplane bench` runs (keeps --help fast)
    from signers.algorithms import KeySpec
    from signers.commands.common import print_result
    from signers.errors import ConfigError

    from .bench import run_bench

    if args.threads < 1 or args.seconds <= 0:
        raise ConfigError("--threads must be >= 1 and --seconds > 0")
    results = run_bench(args.store_uri, [KeySpec.parse(s) for s in args.spec] or None,
                        threads=args.threads, seconds=args.seconds)
    if args.bench_json:
        args.json = True
    if args.json:
        print_result(args, {"store": args.store_uri.split("?")[0], "results": [r.to_dict() for r in results]}, "")
        return 0
    columns = ("spec", "mode", "signatures/s", "p50 ms", "p99 ms", "signatures", "errors")
    cells = [(r.spec, r.mode, f"{r.per_second:,.0f}", f"{r.p50_ms:.3f}", f"{r.p99_ms:.3f}", str(r.signatures),
              str(r.errors)) for r in results]
    if importlib.util.find_spec("rich") is None:  # no [harness] extra: a plain table
        print(f"keyplane bench {args.store_uri.split('?')[0]} (32-byte messages)")
        for line in (columns, *cells):
            print("  ".join(f"{c:>12}" if i > 1 else f"{c:<12}" for i, c in enumerate(line)))
        return 0
    # lazy: the bench machinery loads only when `keyplane bench` runs (keeps --help fast)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"keyplane bench {args.store_uri.split('?')[0]} (32-byte messages)", title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in ("spec", "mode") else "right")
    for row in cells:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # piped: wide enough for every column
    return 0
