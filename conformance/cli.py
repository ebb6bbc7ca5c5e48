"""``keyplane conformance run STORE_URI ...``: the harness from the command line.

A progress bar while it runs (on a terminal), a spec x check matrix at the end, reports
written where asked; exit status 0 when no check failed, 1 otherwise. rich and the
harness itself are imported inside the handler, so ``keyplane --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Any

from .options import OPTIONS, target_fields

if TYPE_CHECKING:
    # lazy: the harness loads only when `keyplane conformance` runs (keeps --help fast)
    from .report import Report


def register(subparsers: Any) -> None:
    conformance = subparsers.add_parser("conformance", help="judge a key store with the conformance harness")
    sub = conformance.add_subparsers(dest="conformance_command", metavar="ACTION", parser_class=type(conformance))
    run = sub.add_parser(
        "run",
        help="run every check against a store URI",
        description="Run the conformance checks against STORE_URI; exit 0 if nothing failed, 1 otherwise.",
    )
    run.add_argument("store_uri", metavar="STORE_URI")
    for name, options in OPTIONS.items():
        run.add_argument(f"--{name}", **options)
    run.add_argument("--workload", type=int, metavar="N", help="signatures per thread in the threads check "
                     "(default: what fits 4 s at the measured latency, 5 to 200)")
    run.add_argument("--loop-stall", type=float, default=0.1, metavar="SECONDS",
                     help="longest event-loop stall allowed while 64 sign_async run (default 0.1)")
    run.add_argument("--verify-sample", type=float, default=1.0, metavar="SHARE",
                     help="share of the concurrency checks' signatures verified (default 1.0: every one)")
    run.add_argument("--json", dest="json_file", metavar="FILE", help="write the report as JSON")
    run.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    run.add_argument("--junit", metavar="FILE", help="write the report as JUnit XML")
    run.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    run.set_defaults(func=_run)
    conformance.set_defaults(func=lambda args: _usage(conformance))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _run(args: argparse.Namespace) -> int:
    # lazy: the harness loads only when `keyplane conformance` runs (keeps --help fast)
    from signers.errors import ConfigError

    from .runner import run_conformance
    from .specs import parse_spec
    from .target import Target

    secrets, labels = [], []
    for name in args.secret_env:
        if name not in os.environ:
            raise ConfigError(f"--secret-env {name}: the environment variable is not set")
        secrets.append(os.environ[name])
        labels.append(f"--secret-env {name}")
    plugins = {}
    for item in args.plugin:
        scheme, eq, value = item.partition("=")
        if not eq or not scheme or ":" not in value:
            raise ConfigError(f"--plugin must be SCHEME=MODULE:CLASS, not {item!r}")
        plugins[scheme] = value
    if plugins and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # plugin modules import from the working directory, as with `python -m`
    target = Target(
        uri=args.store_uri,
        secrets=secrets,
        secret_labels=labels,
        plugins=plugins,
        workload=args.workload,
        loop_stall=args.loop_stall,
        verify_sample=args.verify_sample,
        **target_fields(lambda name: getattr(args, name.replace("-", "_")), parse_spec),
    )
    if not secrets and not target.uri_names_a_source():
        print("WARNING: the store URI names no *-source attribute and no --secret-env was given: the secrets "
              "check watches no credential of this store", file=sys.stderr)
    report = run_conformance(target, progress=sys.stderr.isatty() and not args.no_progress)
    for path, text in ((args.json_file, report.to_json), (args.markdown, report.to_markdown),
                       (args.junit, report.to_junit)):
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text() + ("\n" if path == args.json_file else ""))
    if getattr(args, "json", False):
        print(report.to_json())
    elif importlib.util.find_spec("rich") is None:
        print(report.to_markdown())  # without the [harness] extra: the same matrix, as Markdown
    else:
        print_matrix(report)
    return 0 if report.ok else 1


_SHORT = {"public-key": "pubkey", "sign-verify": "sign", "signature-format": "format", "negatives": "neg",
          "list-keys": "list", "algorithms": "algs", "deterministic": "det", "duplicate-create": "dup",
          "event-loop": "loop", "threads": "thr"}
_STYLE = {"pass": ("ok", "green"), "fail": ("FAIL", "bold red"), "not-supported": ("n/s", "yellow"),
          "stubbed": ("stub", "cyan")}


def print_matrix(report: Report) -> None:
    """The spec x check matrix, the store checks, then every non-pass row with its reason."""
    # lazy: the harness loads only when `keyplane conformance` runs (keeps --help fast)
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .report import STORE

    # Piped output gets a width that fits the matrix instead of rich's default 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=132)
    specs = report.specs()
    checks = [c for c in report.checks if any(r.check == c and r.spec != STORE for r in report.rows)]
    if specs:
        matrix = Table(title=f"conformance: {report.target}", title_justify="left", box=box.SIMPLE_HEAD,
                       padding=(0, 1), pad_edge=False)
        matrix.add_column("spec", style="bold", no_wrap=True)
        for check in checks:
            matrix.add_column(_SHORT.get(check, check), justify="center", no_wrap=True)
        for spec in specs:
            cells = []
            for check in checks:
                row = report.row(spec, check)
                text, style = _STYLE[row.status] if row else ("", "")
                cells.append(f"[{style}]{text}[/]" if style else text)
            matrix.add_row(spec, *cells)
        console.print(matrix)
    store_rows = [r for r in report.rows if r.spec == STORE]
    if store_rows:
        table = Table(title="store checks", title_justify="left")
        table.add_column("check", style="bold")
        table.add_column("result", justify="center")
        table.add_column("detail", overflow="fold")
        for row in store_rows:
            text, style = _STYLE[row.status]
            table.add_row(row.check, f"[{style}]{text}[/]", Text(row.detail))  # Text: never parsed as markup
        console.print(table)
    for spec, checks, status, detail in report.gaps():
        text, style = _STYLE[status]
        console.print(f"[{style}]{text}[/] {spec} / {', '.join(checks)}: ", end="", highlight=False)
        console.print(detail, markup=False, highlight=False)  # a back end's message is text, never markup
    counts = report.counts()
    verdict = "[bold green]PASS[/]" if report.ok else "[bold red]FAIL[/]"
    console.print(
        f"{verdict}: {counts['pass']} pass, {counts['fail']} fail, {counts['not-supported']} not supported, "
        f"{counts['stubbed']} stubbed in {report.seconds:.1f} s"
    )
