"""The demo's CA part: a post-quantum root certifies an agent's Ed25519 key, then revokes it.

Run by ``keyplane demo`` after the keys exist (see `signers.commands.demo.DEMO_PARTS`):
an ML-DSA-65 root (key ``demo-mldsa65``) issues an agent certificate for ``demo-ed25519``
with a SPIFFE ID, the PEMs are written beside the keys, the chain verifies; the certificate
is revoked, a new CRL is signed, and the same chain is refused as "revoked".
"""

from __future__ import annotations

from typing import Any

__all__ = ["run"]

AGENT_ID = "spiffe://keyplane.demo/agent/demo-agent"


def run(ctx: Any) -> None:
    """`ctx` is a `signers.commands.demo.DemoContext`; raises AssertionError if a revoked certificate verified."""
    # lazy: keeps `keyplane --help` fast
    from signers.revocation import SQLiteRevocationStore
    from signers.x509 import CertificateAuthority, CertificateError, Reason, verify_chain, write_pem

    root_signer = ctx.signers["demo-mldsa65"]
    agent_signer = ctx.signers["demo-ed25519"]
    directory = ctx.directory / "ca"
    directory.mkdir(exist_ok=True)
    revocations = SQLiteRevocationStore(directory / "revocations.db")
    try:
        root = CertificateAuthority.create_root(root_signer, "CN=keyplane demo root,O=keyplane", revocations=revocations)
        write_pem(directory / "root.pem", root.chain[0])
        ctx.step("created an ML-DSA-65 root CA; its key never left the store",
                 certificate=str(directory / "root.pem"), key=root_signer.uri)

        agent = root.issue(agent_signer, "CN=demo-agent", uris=[AGENT_ID])
        write_pem(directory / "agent.pem", agent)
        ctx.step("issued a 24-hour agent certificate for the Ed25519 key",
                 certificate=str(directory / "agent.pem"), san=AGENT_ID, serial=f"{agent.serial_number:x}")

        crl = root.crl()
        write_pem(directory / "crl.pem", crl)
        path = verify_chain(agent, [], [root.chain[0]], crl=crl)
        ctx.step("verified the chain agent <- root against the CRL",
                 path=" <- ".join(c.subject.rfc4514_string() for c in path))

        root.revoke(agent, "key_compromise")
        crl = root.crl()
        write_pem(directory / "crl.pem", crl)
        try:
            verify_chain(agent, [], [root.chain[0]], crl=crl)
        except CertificateError as e:
            if e.reason is not Reason.REVOKED:
                raise
            ctx.step("revoked the agent certificate; with the new CRL the chain is refused",
                     reason=e.reason.value, crl=str(directory / "crl.pem"))
        else:  # pragma: no cover - would be a bug in verify_chain
            raise AssertionError("a revoked certificate verified")
    finally:
        revocations.close()
