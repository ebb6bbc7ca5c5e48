"""Errors of the Ethereum layer: children of the one keyplane hierarchy."""

from __future__ import annotations

from ..errors import PermissionDenied

__all__ = ["SpendLimitExceeded"]


class SpendLimitExceeded(PermissionDenied):
    """A payment is above the spending limit the agent's passport grants; nothing was signed."""
