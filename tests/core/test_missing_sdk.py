"""A back end whose SDK is not installed says which extra to install (a ConfigError, no ImportError).

The suite runs with every extra installed, so each case blocks the SDK's import in a
fresh interpreter (``sys.modules[name] = None`` makes ``import name`` raise ImportError).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CASES = [
    ("boto3", "awskms://127.0.0.1:1/?region=us-east-1", "keyplane[aws]"),
    ("azure", "azurekms://myvault.vault.azure.net", "keyplane[azure]"),
    ("google", "gcpkms://projects/P/locations/L/keyRings/R", "keyplane[gcp]"),
    ("hvac", "hashivault://?addr=http://127.0.0.1:1&token-source=env:HOME", "keyplane[vault]"),
    ("pkcs11", "pkcs11:token=t?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:HOME", "keyplane[pkcs11]"),
]

PROGRAM = """
import sys
sys.modules[sys.argv[1]] = None
import signers
try:
    store = signers.open_store(sys.argv[2])
    list(store.list_keys())
except signers.ConfigError as e:
    print("ConfigError:", e)
"""


@pytest.mark.parametrize(("blocked", "uri", "extra"), CASES, ids=[c[2] for c in CASES])
def test_missing_sdk_names_the_extra(blocked: str, uri: str, extra: str) -> None:
    result = subprocess.run([sys.executable, "-c", PROGRAM, blocked, uri], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith("ConfigError:"), result.stdout + result.stderr
    assert extra in result.stdout
