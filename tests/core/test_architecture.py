"""The shape of the code, checked with stdlib `ast` (docs/architecture.md describes it).

(a) No import cycle among the modules of signers/, backends/ and conformance/ (module-level
    imports, ``if TYPE_CHECKING:`` blocks aside).
(b) No function-local import of a keyplane module, except
    - in a CLI command module (signers/cli.py, signers/commands/*, and the modules named by the
      ``keyplane.commands`` and ``pytest11`` entry points: code loaded at every start of a tool,
      keyplane's or pytest's), marked ``# lazy: <why>``; or
    - anywhere, marked ``# lazy-sdk: <extra>`` when the imported module pulls in an optional SDK.
    The marker sits on a comment line directly above the block of imports (or on the import's
    own line); a block is consecutive import statements.
(c) No module over 500 lines under signers/ or backends/.
(d) Imports point down the layers: core <- tokens / x509 / stores / composite <- agents <- server
    <- CLI (rank 0 to 4, a module imports its own rank or lower; the `signers` package itself,
    the public facade, may re-export rank 1). Nothing in signers/ imports backends or conformance;
    backends import only the core of signers.
Each test lists every offender, so one run shows the whole picture.
"""

from __future__ import annotations

import ast
import io
import tokenize
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP_PACKAGES = ("signers", "backends", "conformance")
MAX_LINES = 500
LAZY = "# lazy:"
LAZY_SDK = "# lazy-sdk:"

# Layer of each part of signers/ (longest prefix wins); anything not listed is core (rank 0).
LAYERS: dict[str, int] = {
    "signers.tokens": 1, "signers.jose": 1, "signers.passport": 1, "signers.revocation": 1, "signers.audit": 1,
    "signers.durable_sqlite": 1, "signers.status_list": 1, "signers.clients": 1,
    "signers.x509": 1, "signers.stores": 1, "signers.composite": 1, "signers.eth": 1,
    "signers.agents": 2,
    "signers.server": 3,
    "signers.cli": 4, "signers.commands": 4,
}
LAYER_NAMES = {0: "core", 1: "tokens / x509 / stores / composite", 2: "agents", 3: "server", 4: "CLI"}
FACADE = "signers"  # signers/__init__.py: the public import paths, re-exported
FACADE_MAX_RANK = 1


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the keyplane module imported
    line: int
    local: bool  # inside a function
    marker: str | None  # the lazy marker covering it, if any


@cache
def modules() -> dict[str, Path]:
    """Every keyplane module by dotted name."""
    found: dict[str, Path] = {}
    for top in TOP_PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The keyplane modules an import statement loads (the most specific ones we have)."""
    known = modules()
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                yield name
        return
    if node.level:
        package = module if _is_package(module) else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    if base.split(".")[0] not in TOP_PACKAGES:
        return
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        if candidate in known:
            yield candidate
        elif base in known:
            yield base


def _comment_lines(source: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string
    return comments


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(module: str, body: list[ast.stmt], comments: dict[int, str], *, local: bool,
          start: int) -> Iterator[Import]:
    """Imports in `body`; `start` is the line after which a marker for the first block may sit."""
    previous_end = start
    block_start: int | None = None  # where the current block of imports began
    for statement in body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            if block_start is None:
                block_start = previous_end
            end = statement.end_lineno or statement.lineno
            marker = next((c for line, c in sorted(comments.items())
                           if block_start < line <= end and c.startswith((LAZY, LAZY_SDK))), None)
            for target in dict.fromkeys(_resolve(module, statement)):
                yield Import(module, target, statement.lineno, local, marker)
        else:
            block_start = None
            if isinstance(statement, ast.If) and _is_type_checking(statement):
                pass  # typing-only imports load nothing at run time
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from _walk(module, statement.body, comments, local=True, start=statement.lineno)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(statement, field, None)
                    if isinstance(children, list):
                        for child in children:
                            inner = child.body if isinstance(child, ast.ExceptHandler) else [child]
                            yield from _walk(module, inner, comments, local=local, start=previous_end)
                if isinstance(statement, ast.Match):
                    for case in statement.cases:
                        yield from _walk(module, case.body, comments, local=local, start=previous_end)
        previous_end = statement.end_lineno or statement.lineno


@cache
def imports() -> list[Import]:
    found: list[Import] = []
    for name, path in modules().items():
        source = path.read_text(encoding="utf-8")
        found += _walk(name, ast.parse(source).body, _comment_lines(source), local=False, start=0)
    return found


def _where(item: Import) -> str:
    return f"{modules()[item.module].relative_to(ROOT)}:{item.line} imports {item.target}"


# -- (a) cycles ----------------------------------------------------------------------------


def import_cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    graph: dict[str, set[str]] = {name: set() for name in modules()}
    for item in imports():
        if not item.local:
            graph[item.module].add(item.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # Tarjan's algorithm, iterative enough for our depth
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return cycles


def test_no_import_cycles() -> None:
    cycles = import_cycles()
    assert not cycles, "import cycles (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in cycles)


# -- (b) function-local imports ------------------------------------------------------------


@cache
def command_modules() -> frozenset[str]:
    """signers.cli, signers.commands.*, and the modules of the keyplane.commands / pytest11 entry points."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    groups = project["project"].get("entry-points", {})
    names = {value.split(":")[0] for group in ("keyplane.commands", "pytest11")
             for value in groups.get(group, {}).values()}
    names |= {m for m in modules() if m == "signers.cli" or m.startswith("signers.commands.")}
    return frozenset(names)


def local_import_offences() -> list[str]:
    offences = []
    for item in imports():
        if not item.local:
            continue
        if item.marker and item.marker.startswith(LAZY_SDK):
            continue
        if item.module in command_modules() and item.marker and item.marker.startswith(LAZY):
            continue
        why = ("a function-local import in a command or plugin module needs a '# lazy: <why>' comment above it"
               if item.module in command_modules() else
               "a function-local import outside the CLI command modules (move it to the top, or mark an "
               "optional-SDK loader '# lazy-sdk: <extra>')")
        offences.append(f"{_where(item)}: {why}")
    return offences


def test_no_function_local_imports_of_keyplane_modules_outside_marked_lazy_ones() -> None:
    offences = local_import_offences()
    assert not offences, f"{len(offences)} function-local import(s):\n" + "\n".join(offences)


# -- (c) module size -----------------------------------------------------------------------


def oversized_modules() -> list[str]:
    found = []
    for name, path in modules().items():
        if name.split(".")[0] not in ("signers", "backends"):
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            found.append(f"{path.relative_to(ROOT)}: {lines} lines")
    return found


def test_no_module_over_500_lines_under_signers_or_backends() -> None:
    found = oversized_modules()
    assert not found, f"modules over {MAX_LINES} lines (split by concern):\n" + "\n".join(found)


# -- (d) layers ----------------------------------------------------------------------------


def rank(module: str) -> int:
    best, best_rank = "", 0
    for prefix, value in LAYERS.items():
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best, best_rank = prefix, value
    return best_rank


def layer_offences() -> list[str]:
    offences = []
    for item in imports():
        source_top, target_top = item.module.split(".")[0], item.target.split(".")[0]
        if source_top == "signers":
            if target_top != "signers":
                offences.append(f"{_where(item)}: signers/ never imports {target_top}/ (back ends come by entry point)")
                continue
            allowed = FACADE_MAX_RANK if item.module == FACADE else rank(item.module)
            if rank(item.target) > allowed:
                offences.append(f"{_where(item)}: {LAYER_NAMES[rank(item.module)]} module importing "
                                f"{LAYER_NAMES[rank(item.target)]} (imports point down)")
        elif source_top == "backends":
            if target_top == "conformance":
                offences.append(f"{_where(item)}: a back end never imports the conformance harness")
            elif target_top == "signers" and item.target != FACADE and rank(item.target) > 0:
                offences.append(f"{_where(item)}: a back end imports only the core of signers, not "
                                f"{LAYER_NAMES[rank(item.target)]}")
    return offences


def test_imports_point_down_the_layers() -> None:
    offences = layer_offences()
    assert not offences, f"{len(offences)} import(s) against the layers:\n" + "\n".join(offences)


# -- the checker itself can fail -----------------------------------------------------------


def test_the_checks_see_what_they_are_meant_to(tmp_path: Path) -> None:
    source = (
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "from ..errors import ConfigError\n"
        "if TYPE_CHECKING:\n"
        "    from signers.jose import JWKS\n"
        "def handler() -> None:\n"
        "    # lazy: start-up speed\n"
        "    from signers.x509 import CertificateAuthority\n"
        "    from signers import jose\n"
        "    x = 1\n"
        "    from signers.audit import verify_chain\n"
        "def sign() -> None:\n"
        "    import time\n"
        "    # lazy: after a stdlib import, same block\n"
        "    from signers.jose import sign_jwt\n"
        "def loader() -> None:\n"
        "    import signers.keys  # lazy-sdk: pkcs11\n"
    )
    tree = ast.parse(source)
    found = list(_walk("signers.commands.keys", tree.body, _comment_lines(source), local=False, start=0))
    by_target = {(i.target, i.line): i for i in found}
    assert ("signers.jose", 5) not in by_target  # TYPE_CHECKING only
    assert by_target[("signers.errors", 3)].local is False
    assert by_target[("signers.x509", 8)].marker == "# lazy: start-up speed"
    assert by_target[("signers.jose", 9)].marker == "# lazy: start-up speed"  # same block
    assert by_target[("signers.audit", 11)].marker is None  # a new block after a statement
    assert by_target[("signers.jose", 15)].marker == "# lazy: after a stdlib import, same block"
    assert by_target[("signers.keys", 17)].marker == "# lazy-sdk: pkcs11"
    assert rank("signers.tokens.jwk") == 1 and rank("signers.commands.keys") == 4 and rank("signers.uri") == 0
