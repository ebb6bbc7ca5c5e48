"""keyplane's back ends, one module each; every SDK is imported only when its store opens.

Each registers its URI scheme in the entry-point group ``keyplane.backends``
(see pyproject.toml), exactly as a vendor's plugin would.
"""
