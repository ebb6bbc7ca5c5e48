"""The tokens layer's shape: imports point down, none hide inside functions, modules fit in a head.

`signers/tokens/` stands on the core only (keys, algorithms, errors, clock, ...): it never
imports the CLI, the command modules, X.509, agents or the server, imports no keyplane
module inside a function (a hidden cycle), and no module passes 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOKENS = Path(__file__).resolve().parents[2] / "signers" / "tokens"
SHIMS = [TOKENS.parent / name / "__init__.py" for name in ("jose", "passport", "revocation", "audit")]
ABOVE = ("signers.cli", "signers.commands", "signers.x509", "signers.agents", "signers.server", "backends")
MODULES = sorted(TOKENS.glob("*.py"))


def imported(node: ast.AST, module: str) -> str | None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")[: -node.level]
            return ".".join([*base, node.module] if node.module else base)
        return node.module
    if isinstance(node, ast.Import):
        return node.names[0].name
    return None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_point_down_and_none_hide_in_functions(path: Path) -> None:
    module = f"signers.tokens.{path.stem}"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        target = imported(node, module)
        if target is None:
            continue
        assert not target.startswith(ABOVE), f"{path.name} imports {target}, a layer above the tokens"
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        for node in ast.walk(function):
            target = imported(node, module)
            assert target is None or not target.startswith("signers"), (
                f"{path.name}:{node.lineno} imports {target} inside {function.name}()"
            )


@pytest.mark.parametrize("path", [*MODULES, *SHIMS], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_modules_fit_in_a_head(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500


def test_old_import_paths_still_work() -> None:
    import signers.audit
    import signers.jose
    import signers.passport
    import signers.revocation
    from signers.tokens import audit, jose, passport, revocation, revocation_list

    for shim, home in ((signers.jose, jose), (signers.passport, passport), (signers.audit, audit)):
        assert set(shim.__all__) == set(home.__all__)
        assert all(getattr(shim, name) is getattr(home, name) for name in home.__all__)
    assert set(signers.revocation.__all__) == {*revocation.__all__, *revocation_list.__all__}
