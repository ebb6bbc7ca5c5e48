"""examples/vendor_plugin, pip-installed as a vendor's users would install it, passes the harness.

The package is built and installed by pip (into a target directory, so the project's own
environment is untouched) and found by keyplane only through its `keyplane.backends`
entry point; the harness then runs it from the CLI in a subprocess. Its keys are
process-local, so the concurrency checks run in the worker and key-id is not-supported
with that reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "vendor_plugin"


def test_the_example_vendor_plugin_installs_and_gets_a_green_report(tmp_path: Path) -> None:
    source = tmp_path / "vendor_plugin"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert list(site.glob("keyplane_memhsm-*.dist-info/entry_points.txt")), list(site.iterdir())
    env = {**os.environ, "PYTHONPATH": str(site), "MEMHSM_PIN": "vendor-pin-4711", "MEMHSM_WRONG": "not-the-pin"}
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "signers.cli", "conformance", "run", "memhsm:slot1?pin-source=env:MEMHSM_PIN",
         "--name", "keyplane-memhsm (examples/vendor_plugin)",
         "--bad-credentials-uri", "memhsm:slot1?pin-source=env:MEMHSM_WRONG",
         "--json", f"{out}.json", "--markdown", f"{out}.md"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "vendor-pin-4711" not in result.stdout + result.stderr + Path(f"{out}.md").read_text()
    data = json.loads(Path(f"{out}.json").read_text())
    rows = {(r["spec"], r["check"]): r for r in data["rows"]}
    assert data["ok"] and data["counts"]["fail"] == 0
    for spec in ("Ed25519", "P-256", "P-384", "RSA-2048"):
        assert rows[(spec, "sign-verify")]["status"] == "pass"
        assert "in the worker: the store is process-local" in rows[(spec, "threads")]["detail"]
        key_id = rows[(spec, "key-id")]
        assert key_id["status"] == "not-supported" and "process-local" in key_id["detail"], key_id
    assert rows[("ML-DSA-44", "create")]["status"] == "not-supported"  # refused with AlgorithmNotSupported
    assert rows[("store", "bad-credentials")]["status"] == "pass"
    assert "pin-source=env:MEMHSM_PIN (store URI)" in rows[("store", "secrets")]["detail"]
