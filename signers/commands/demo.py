"""``keyplane demo``: the README's main job, on the embedded file back end.

Makes a fresh store (a temporary directory, removed at the end; or ``--dir``, kept), creates an Ed25519, a P-256
and an ML-DSA-65 key, signs and verifies with each, then runs the demo parts of the
issuance layers (passports, action tokens, revocation; a CA and an agent certificate)
when those modules are present. Every step prints what it did; ``--json`` prints one
JSON document instead.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..algorithms import KeySpec
from ..errors import ConfigError
from ..registry import open as open_signer
from ..registry import open_store

__all__ = ["DemoContext", "register"]

# Later layers add a module with run(ctx: DemoContext) -> None; each runs in this order.
DEMO_PARTS = ("signers.commands.demo_issuance", "signers.commands.demo_ca", "signers.commands.demo_agents")


@dataclass
class DemoContext:
    """What demo parts share: the store, the keys made so far, and the step log."""

    directory: Path
    store: Any  # a KeyStore
    quiet: bool = False
    signers: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def step(self, text: str, **details: Any) -> None:
        self.steps.append({"step": text, **details})
        if not self.quiet:
            print(text)
            for name, value in details.items():
                print(f"    {name}: {value}")


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="create keys, sign and verify on the file back end (no setup needed)")
    demo.add_argument("--dir", help="keep the demo's keys and files in this new or empty directory "
                                    "(default: a temporary directory, removed at the end)")
    demo.set_defaults(func=run)


def _fresh_directory(given: str | None) -> Path:
    if given:
        path = Path(given)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise ConfigError(f"--dir {path} is not empty; the demo needs a fresh directory")
        return path
    return Path(tempfile.mkdtemp(prefix="keyplane-demo-"))


def run(args: argparse.Namespace) -> int:
    directory = _fresh_directory(args.dir)
    try:
        steps = _demo(directory, quiet=bool(args.json), keep=args.dir is not None)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        print(json.dumps({"ok": True, "directory": str(directory), "kept": args.dir is not None,
                          "steps": steps},
                         indent=2, default=str))
    return 0


def _demo(directory: Path, *, quiet: bool, keep: bool) -> list[dict[str, Any]]:
    password_file = directory / "password"
    password_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    store_uri = f"file:{directory / 'keys'}?password-source=file:{password_file}"

    with open_store(store_uri) as store:
        ctx = DemoContext(directory=directory, store=store, quiet=quiet)
        ctx.step(f"keyplane demo in {directory}" + ("" if keep else " (removed at the end; --dir DIR keeps it)"),
                 store=store.uri)
        message = b"keyplane demo: sign me"
        for name, spec in (("demo-ed25519", "Ed25519"), ("demo-p256", "P-256"), ("demo-mldsa65", "ML-DSA-65")):
            signer = store.create_key(name, KeySpec.parse(spec))
            ctx.signers[name] = signer
            signature = signer.sign(message)
            reopened = open_signer(signer.uri)  # a second handle from the URI alone, as a service would
            reopened.public_key.verify(signature, message, reopened.algorithm)
            ctx.step(
                f"created {spec} key {name!r}, signed {len(message)} bytes, verified",
                key_id=signer.key_id,
                algorithm=signer.algorithm.value,
                signature_bytes=len(signature),
            )
        for module_name in DEMO_PARTS:
            if importlib.util.find_spec(module_name) is not None:
                # lazy: the issuance and CA parts import jose / x509 only when the demo runs
                importlib.import_module(module_name).run(ctx)
        ctx.step("demo complete: every signature, token and certificate verified")
    return ctx.steps
