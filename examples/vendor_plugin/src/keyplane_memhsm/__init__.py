"""keyplane-memhsm: an example vendor back end for keyplane (``memhsm:SLOT?pin-source=env:NAME``).

Its keys live in the memory of one process, like a device that allows one session, and
it says so (``Capabilities(process_local=True)``), so the conformance harness runs its
concurrency checks in the process that holds the keys. It uses only keyplane's public
contract: `signers.signer` (KeyStore / Signer shapes, Capabilities, KeyInfo),
`signers.algorithms`, `signers.keys.PublicKey` and `signers.errors`.
"""

from .store import MemHsmKeyStore, MemHsmSigner

__all__ = ["MemHsmKeyStore", "MemHsmSigner"]
