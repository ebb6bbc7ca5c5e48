"""Old import path of backends.pkcs11.module (kept so existing imports keep working)."""

from backends.pkcs11.module import LOCKING_ENV, Module, load_module

__all__ = ["LOCKING_ENV", "Module", "load_module"]
