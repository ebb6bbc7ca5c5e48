"""The conformance harness: run any key store (ours or a vendor's) through the same checks."""
