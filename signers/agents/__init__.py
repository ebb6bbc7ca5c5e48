"""Agent governance on top of keyplane's tokens: lifecycle, trust, the gate, receipts, events.

Everything here is a library over `signers.jose`, `signers.passport`, `signers.revocation`
and `signers.audit`, so it works offline with any back end's key. The submodules:

- `lifecycle`: stages, signed and chained stage transitions, verifiable histories;
- `passports`: passports whose stage is backed by a history, with groups and trust;
- `revocation`: subject / group revocation (``kind="sub"`` / ``"grp"``) in any store;
- `trust`: the trust-score protocol and its default, deterministic scorer;
- `gate`, `policy`, `possession`: ALLOW / DENY for a tool call, with every check reported;
- `receipts`: signed execution receipts forming a DAG;
- `events`, `autorevoke`: rejection events and the N-rejections auto-revoke policy;
- `actions`, `messages`: readable action claims and agent-to-agent messages;
- `asgi`, `mcp_gate`: adapters (the MCP one needs ``keyplane[agents]``).
"""
