"""verify_chain gives OpenSSL's verdict on every crafted chain (tests/x509/scenarios.py).

Each scenario runs for P-256, Ed25519, RSA-PSS and ML-DSA-65 chains: the verdict must be the
one recorded (OpenSSL's), with the typed Reason. For classical keys the same chain also goes
to the `openssl verify` command (Debian's OpenSSL 3.0; it cannot read ML-DSA), so a
disagreement between keyplane and OpenSSL fails the test.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from signers.x509 import CertificateError, verify_chain, write_pem

from .crafted import KINDS, Chain, Forge
from .scenarios import SCENARIOS, Scenario
from .support import openssl

_PURPOSES = {"client_auth": "sslclient", "server_auth": "sslserver"}


def _cli_verdict(chain: Chain, directory: Path) -> tuple[bool, str]:
    """`openssl verify -x509_strict` with the flags that ask what verify_chain was asked."""
    command = [openssl(), "verify", "-x509_strict", "-CAfile", str(write_pem(directory / "roots.pem", *chain.roots))]
    if chain.intermediates:
        command += ["-untrusted", str(write_pem(directory / "untrusted.pem", *chain.intermediates))]
    if chain.crls:
        every_level = chain.options.get("require_crl") or len(chain.crls) > len(chain.intermediates)
        command += ["-crl_check_all" if every_level else "-crl_check",
                    "-CRLfile", str(write_pem(directory / "crls.pem", *chain.crls))]
    for usage in chain.options.get("extended_key_usages", ()):
        command += ["-purpose", _PURPOSES[usage]]
    if "at" in chain.options:
        command += ["-attime", str(int(chain.options["at"].timestamp()))]
    command.append(str(write_pem(directory / "leaf.pem", chain.leaf)))
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def test_there_are_at_least_fifty_scenarios() -> None:
    assert len(SCENARIOS) >= 50
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_verdict_is_openssls(scenario: Scenario, kind: str, tmp_path: Path) -> None:
    chain = scenario.build(Forge(kind))
    code = 0
    try:
        path = verify_chain(chain.leaf, chain.intermediates, chain.roots, crls=chain.crls, **chain.options)
    except CertificateError as e:
        got, detail, code = e.reason, str(e), e.openssl_code
    else:
        got, detail = None, "verified"
        assert path[0] == chain.leaf and path[-1] in chain.roots
    assert got == scenario.verdict, f"{scenario.name}: expected {scenario.verdict}, verify_chain said {detail}"
    if kind != "ML-DSA-65":
        accepted, text = _cli_verdict(chain, tmp_path)
        assert accepted == (scenario.verdict is None), f"{scenario.name}: openssl verify said {text}"
        # Not only the verdict: the CLI names the same X509_V_ERR code as the in-process validator.
        found = re.search(r"error (\d+) at \d+ depth", text)
        assert (int(found.group(1)) if found else 0) == code, f"{scenario.name}: openssl verify said {text}"
