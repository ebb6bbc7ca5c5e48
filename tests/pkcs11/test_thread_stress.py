"""The issue's proof of thread safety: the harness's 8-thread check, 20 times in a row, no crash or hang.

With python-pkcs11's own ``C_Initialize(NULL)`` SoftHSM2 turns its locking off and this
check crashed the interpreter in most runs (4 of 4 here, 6 of 7 in the issue). Each run
is a fresh child process (the harness's `run_concurrency`): it re-opens the store from the
URI, so the module is initialised from scratch every time, then signs 8 threads x 200
and 64 concurrent `sign_async` calls per key, verifying every signature.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from backends.pkcs11 import Pkcs11KeyStore
from signers.algorithms import KeySpec
from tests.fixtures.softhsm import SoftHsmToken

RUNS = 20


@pytest.mark.parametrize("locking", [os.environ.get("KEYPLANE_PKCS11_STRESS_LOCKING", "os")])
def test_eight_thread_check_twenty_times(softhsm_token: SoftHsmToken, softhsm_target: Any, locking: str) -> None:
    from conformance.child import ChildKey, run_concurrency

    uri = softhsm_token.uri()
    with Pkcs11KeyStore.from_uri(uri) as store:
        keys = []
        for spec in (KeySpec.P256, KeySpec.ED25519):
            name = f"stress-{spec.value}"
            signer = store.create_key(name, spec)
            keys.append(ChildKey(spec.value, name, signer.public_key.to_der(), signer.algorithm.value))
        failures = []
        for run_index in range(RUNS):
            run = run_concurrency(uri, keys, env={**softhsm_target.env, "KEYPLANE_PKCS11_LOCKING": locking},
                                  plugins={}, secrets=list(softhsm_target.secrets), spec_timeout=120.0)
            assert set(run.outcomes) == {key.spec for key in keys}
            for spec_name, outcome in run.outcomes.items():
                for check, result in (("threads", outcome.threads), ("async", outcome.async_)):
                    if result is None or not result[0]:
                        failures.append(f"run {run_index + 1} {spec_name} {check}: {result or outcome.crash}")
            assert not run.leaks, run.leaks
        for key in keys:
            store.delete_key(key.name)
    assert not failures, "\n".join(failures)
