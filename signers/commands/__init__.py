"""Sub-commands of ``keyplane``: one module per command group, each with ``register(subparsers)``."""
