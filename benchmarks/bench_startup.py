"""Start-up cost: `import signers` and `keyplane --help`, against a bare interpreter.

Target (README): under 150 ms and no cloud SDK imported; issue 21: `import signers` and
`keyplane --help` within 3x `python -c pass`, loading neither importlib.metadata nor asyncio.
Prints the median (and min-max) of N runs of each command in fresh processes, the runs
interleaved so load changes hit every row alike, each row's ratio to the bare interpreter
of the same run, and the load average; run: python benchmarks/bench_startup.py [N]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time

LAZY = ("importlib.metadata", "asyncio", "tomllib", "starlette", "uvicorn", "mcp", "httpx", "eth_account", "x402", "psycopg",
        "redis", "OpenSSL", "rfc8785")
HEAVY = ("boto3", "botocore", "azure", "google", "grpc", "hvac", "pkcs11", "requests", "rich", "jwt")

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "import signers": [sys.executable, "-c", "import signers"],
    "import signers, backends, conformance": [sys.executable, "-c", "import signers, backends, conformance"],
    "keyplane --help": [sys.executable, "-m", "signers.cli", "--help"],
}


def samples_ms(commands: dict[str, list[str]], runs: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall time and CPU time (user + system) of each command in a fresh process, `runs` rounds, interleaved.

    The CPU time is the child's own (``RUSAGE_CHILDREN``): on a machine other work keeps
    busy it is far steadier than the wall time, which counts the waits for a core too.
    """
    wall: dict[str, list[float]] = {label: [] for label in commands}
    cpu: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, cmd in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            wall[label].append((time.perf_counter() - start) * 1000)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[label].append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    return wall, cpu


def heavy_modules(names: tuple[str, ...]) -> list[str]:
    code = (
        "import sys, signers\nfrom signers.cli import parser_for\nparser_for(['--help']).format_help()\n"
        f"print(','.join(m for m in {names!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    load = os.getloadavg()
    results, cpu = samples_ms(COMMANDS, runs)
    base = statistics.median(results["python -c pass (baseline)"])
    cpu_base = statistics.median(cpu["python -c pass (baseline)"])
    print(f"{'command':<40} {'median ms':>10} {'min-max ms':>15} {'x pass':>7} {'cpu ms':>7} {'cpu x':>6}")
    for label, values in results.items():
        median = statistics.median(values)
        span = f"{min(values):.0f}-{max(values):.0f}"
        cpu_median = statistics.median(cpu[label])
        print(f"{label:<40} {median:>10.1f} {span:>15} {median / base:>7.2f} {cpu_median:>7.1f} "
              f"{cpu_median / cpu_base:>6.2f}")
    print(f"target: import signers and keyplane --help within 3.00x python -c pass; {runs} interleaved runs; "
          f"x pass = median wall time / the bare interpreter's, cpu x = the same for CPU time (steadier under load); "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    lazy = heavy_modules(LAZY)
    print(f"modules issue 21 keeps lazy, imported by `import signers` + `keyplane --help`: {', '.join(lazy) or 'none'}")
    heavy = heavy_modules(HEAVY)
    print(f"cloud SDKs imported by `import signers` + `keyplane --help`: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
