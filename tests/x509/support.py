"""Helpers for the X.509 tests: key creation, openssl and cryptography cross-checks."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from signers.algorithms import KeyFamily, KeySpec
from signers.x509 import write_pem

CLASSICAL = [s for s in KeySpec if s.family is not KeyFamily.MLDSA]
MLDSA = [s for s in KeySpec if s.family is KeyFamily.MLDSA]
# Key types cryptography's Web PKI verifier accepts in a CA certificate (it forbids Ed25519 and secp256k1).
WEBPKI_CA_SPECS = frozenset(KeySpec) - {KeySpec.ED25519, KeySpec.SECP256K1}


def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl is not installed: scripts/test.sh installs Debian's `openssl`")
    return path


def openssl_verify(
    directory: Path,
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    root: x509.Certificate,
    crls: Sequence[x509.CertificateRevocationList] = (),
    extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`openssl verify -x509_strict` of leaf against root (intermediates untrusted), CRL-checked when CRLs are given."""
    directory.mkdir(parents=True, exist_ok=True)
    root_file = write_pem(directory / "root.pem", root)
    leaf_file = write_pem(directory / "leaf.pem", leaf)
    command = [openssl(), "verify", "-x509_strict", "-CAfile", str(root_file), *extra]
    if intermediates:
        command += ["-untrusted", str(write_pem(directory / "intermediates.pem", *intermediates))]
    if crls:
        command += ["-crl_check_all", "-CRLfile", str(write_pem(directory / "crls.pem", *crls))]
    command.append(str(leaf_file))
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def assert_openssl_accepts(*args: object, **kwargs: object) -> None:
    result = openssl_verify(*args, **kwargs)  # type: ignore[arg-type]
    assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), result.stdout + result.stderr


def openssl_crl_text(directory: Path, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> str:
    """`openssl crl -text`, with the signature verified against the issuer (-CAfile)."""
    crl_file = write_pem(directory / "crl.pem", crl)
    issuer_file = write_pem(directory / "crl-issuer.pem", issuer)
    result = subprocess.run(
        [openssl(), "crl", "-in", str(crl_file), "-noout", "-text", "-CAfile", str(issuer_file)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stderr + result.stdout, result.stderr
    return result.stdout


def assert_links_verify(chain: Sequence[x509.Certificate]) -> None:
    """Every certificate in leaf -> ... -> root is directly issued by the next (cryptography)."""
    for child, parent in itertools.pairwise(chain):
        child.verify_directly_issued_by(parent)
    chain[-1].verify_directly_issued_by(chain[-1])


def webpki_client_verify(leaf: x509.Certificate, intermediates: Sequence[x509.Certificate],
                         root: x509.Certificate) -> list[x509.Certificate]:
    """cryptography's own (Web PKI profile) path validation, as a client certificate."""
    verifier = PolicyBuilder().store(Store([root])).build_client_verifier()
    return verifier.verify(leaf, list(intermediates)).chain
