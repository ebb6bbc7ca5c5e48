"""pytest plugin entry point of the conformance harness (filled in by the harness)."""
