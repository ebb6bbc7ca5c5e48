"""Start-up cost: `import signers` and `keyplane --help`, against a bare interpreter.

Target (README): under 150 ms and no cloud SDK imported. Prints a table of the median
of N runs of each command in fresh processes; run: python benchmarks/bench_startup.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

HEAVY = ("boto3", "botocore", "azure", "google", "grpc", "hvac", "pkcs11", "requests", "rich", "jwt")

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "import signers": [sys.executable, "-c", "import signers"],
    "import signers, backends, conformance": [sys.executable, "-c", "import signers, backends, conformance"],
    "keyplane --help": [sys.executable, "-m", "signers.cli", "--help"],
}


def median_ms(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def heavy_modules() -> list[str]:
    code = (
        "import sys, signers\nfrom signers.cli import build_parser\nbuild_parser().format_help()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    return [m for m in out.split(",") if m]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    print(f"{'command':<42} {'median ms':>10}")
    for label, cmd in COMMANDS.items():
        print(f"{label:<42} {median_ms(cmd, runs):>10.1f}")
    heavy = heavy_modules()
    print(f"cloud SDKs imported by `import signers` + `keyplane --help`: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
