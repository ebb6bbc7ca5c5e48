"""A hash-chained log of every signature made through a Signer (the public audit API in one import).

- `signers.tokens.audit_log`: records and storage (JSONL or SQLite);
- `signers.tokens.audit_signer`: `AuditedSigner`, `audit_context`, signed checkpoints;
- `signers.tokens.audit_verify`: `verify_chain` and what it can and cannot prove.
"""

from __future__ import annotations

from .audit_log import GENESIS, AuditLog, AuditLogDamaged, AuditRecord, JsonlAuditLog, SQLiteAuditLog, open_audit_log
from .audit_signer import AuditedSigner, audit_context
from .audit_verify import ChainVerification, verify_chain

__all__ = [
    "GENESIS",
    "AuditLog",
    "AuditLogDamaged",
    "AuditRecord",
    "AuditedSigner",
    "ChainVerification",
    "JsonlAuditLog",
    "SQLiteAuditLog",
    "audit_context",
    "open_audit_log",
    "verify_chain",
]
