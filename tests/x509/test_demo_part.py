"""The `keyplane demo` CA part runs on its own DemoContext and leaves verifiable PEM files."""

from __future__ import annotations

from pathlib import Path

from backends.file import FileKeyStore
from signers.algorithms import KeySpec
from signers.commands.demo import DemoContext
from signers.commands.demo_ca import run
from signers.secrets import Secret
from signers.x509 import load_crl, read_certificates, verify_chain

from .support import assert_openssl_accepts


def test_demo_part(tmp_path: Path) -> None:
    with FileKeyStore(tmp_path / "keys", Secret("demo")) as store:
        ctx = DemoContext(directory=tmp_path, store=store, quiet=True)
        for name, spec in (("demo-ed25519", KeySpec.ED25519), ("demo-p256", KeySpec.P256),
                           ("demo-mldsa65", KeySpec.ML_DSA_65)):
            ctx.signers[name] = store.create_key(name, spec)
        run(ctx)
    texts = [s["step"] for s in ctx.steps]
    assert any("ML-DSA-65 root" in t for t in texts)
    assert ctx.steps[-1]["reason"] == "revoked"
    (root,) = read_certificates(tmp_path / "ca" / "root.pem")
    (agent,) = read_certificates(tmp_path / "ca" / "agent.pem")
    verify_chain(agent, [], [root])  # without the CRL it is a good chain
    crl = load_crl((tmp_path / "ca" / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(agent.serial_number) is not None


def test_demo_agent_certificate_under_a_classical_root_passes_openssl(tmp_path: Path) -> None:
    """The same part with a P-256 root in place of ML-DSA: the certificates are ones OpenSSL 3.0 accepts."""
    with FileKeyStore(tmp_path / "keys", Secret("demo")) as store:
        ctx = DemoContext(directory=tmp_path, store=store, quiet=True)
        ctx.signers["demo-ed25519"] = store.create_key("demo-ed25519", KeySpec.ED25519)
        ctx.signers["demo-mldsa65"] = store.create_key("demo-p256", KeySpec.P256)
        run(ctx)
    (root,) = read_certificates(tmp_path / "ca" / "root.pem")
    (agent,) = read_certificates(tmp_path / "ca" / "agent.pem")
    assert_openssl_accepts(tmp_path / "openssl", agent, [], root)
