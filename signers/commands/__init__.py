"""Sub-commands of ``keyplane``: one module per command group, each with ``register(subparsers)``.

`COMMANDS` lists what each module registers at the top level, with its one-line help, so
``keyplane --help`` (and ``keyplane keys ...``) can list every command without importing and
building every module's sub-parsers (that was about 35 ms of a 60 ms start). The table is
checked against what the modules really register by tests/throughput/test_lazy_cli.py.
"""

from __future__ import annotations

__all__ = ["COMMANDS", "PLUGIN_COMMANDS"]

# module under signers.commands -> the top-level commands it registers: (name, help), in order
COMMANDS: dict[str, tuple[tuple[str, str], ...]] = {
    "keys": (("keys", "create, list, delete and use keys in any store"),),
    "demo": (("demo", "create keys, sign and verify on the file back end (no setup needed)"),),
    "tokens": (
        ("token", "sign and verify JWTs with any key"),
        ("passport", "issue and verify agent passports"),
        ("revoke", "revoke a token id or certificate serial; list or sign the list"),
        ("jwks", "print the JWKS of one or more keys (for offline verifiers)"),
        ("audit", "check a hash-chained signing log"),
    ),
    "ca": (("ca", "an X.509 certificate authority whose key stays in its key store"),),
    "completion": (("completion", "print a shell completion script (bash or zsh)"),),
    "agent": (("agent", "agent lifecycle: signed stage transitions, history, trust score"),),
    "gate": (("gate", "the agent tool gate: check a call against a policy"),),
    "receipt": (("receipt", "execution receipts: sign, verify, check a DAG"),),
    "eth": (("eth", "Ethereum addresses, EIP-712 signatures and x402 payments"),),
    "store": (("store", "state stores shared by a fleet: migrate, info"),),
    "serve": (("serve", "run the issuer service: JWKS, passports, revocation, gate, dashboard"),),
}

# keyplane's own ``keyplane.commands`` entry points (pyproject.toml), by value: (name, help).
# Another distribution's plugin is not in it, so it is loaded to be listed.
PLUGIN_COMMANDS: dict[str, tuple[str, str]] = {
    "conformance.cli:register": ("conformance", "judge a key store with the conformance harness"),
    "conformance.bench_cli:register": ("bench", "measure signing throughput and latency of a store"),
    "conformance.emulators.cli:register": (
        "emulator", "run a local AWS KMS, Azure Key Vault or Google Cloud KMS emulator"),
}
