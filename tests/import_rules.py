"""The import rules of the code base, checked from the source (no module is imported).

Layers, top to bottom: ``app_pages`` -> ``ui`` -> ``workflow`` -> ``core`` and ``db``, with
``cli`` beside ``ui`` (both are front ends of ``workflow``). A layer may import the
layers below it, never one above it: :data:`FORBIDDEN` lists, per layer, what it must
not import. ``core`` is pure (no SQL, no Streamlit); ``db`` may use ``core``'s types.
``core/__main__.py`` is the one module of ``core`` allowed to import ``cli``: it only
dispatches ``python -m core`` to it.

Imports inside functions hide cycles and layer breaks, so product code has none, except
the entries of :data:`LAZY_ALLOWED`, each measured to save start-up time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Top-level packages (and the one module ``app``) that make up the product.
PRODUCT = ("core", "db", "workflow", "ui", "app_pages", "cli", "app")
#: What each layer must not import (top-level names; ``streamlit`` included).
FORBIDDEN: dict[str, frozenset[str]] = {
    "core": frozenset({"db", "workflow", "ui", "app_pages", "cli", "app", "streamlit"}),
    "db": frozenset({"workflow", "ui", "app_pages", "cli", "app", "streamlit"}),
    "workflow": frozenset({"ui", "app_pages", "cli", "app", "streamlit"}),
    "cli": frozenset({"ui", "app_pages", "app", "streamlit"}),
    "ui": frozenset({"app_pages", "cli", "app"}),
    "app_pages": frozenset({"cli", "app"}),
    "app": frozenset({"cli"}),
}
#: (importing module, imported top-level name) pairs allowed despite :data:`FORBIDDEN`.
LAYER_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset({("core.__main__", "cli")})
#: Modules allowed to import lazily (inside a function or with ``importlib``), and why.
LAZY_ALLOWED: dict[str, str] = {
    "cli": "loads only the chosen command's group, so --help and the account "
    "commands start without torch (docs/benchmarks.md gives the figures)",
}


@dataclass(frozen=True)
class Import:
    """One import statement of a module.

    Attributes:
        module: The importing module, dotted (``core.reading.readers``).
        target: The imported module, dotted, resolved to a module of the tree where
            ``from package import submodule`` names one.
        line: Its line number.
        in_function: True when the statement sits inside a function.
        type_only: True when it sits under ``if TYPE_CHECKING:``.
    """

    module: str
    target: str
    line: int
    in_function: bool
    type_only: bool


def module_name(root: Path, path: Path) -> str:
    """Return the dotted module name of ``path`` under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def product_files(root: Path) -> dict[str, Path]:
    """Return ``{module: path}`` for every product module under ``root``."""
    found: dict[str, Path] = {}
    for top in PRODUCT:
        single = root / f"{top}.py"
        if single.is_file():
            found[top] = single
        folder = root / top
        if folder.is_dir():
            for path in sorted(folder.rglob("*.py")):
                found[module_name(root, path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, known: Iterable[str]) -> list[Import]:
    """Return every import statement of one module, with where it sits.

    Args:
        module: The module's dotted name.
        path: Its source file.
        known: Every module of the tree, to tell ``from pkg import submodule`` from
            ``from pkg import name``.
    """
    modules = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    out.append(Import(module, alias.name, child.lineno, in_function, type_only))
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", child)
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    target = full if full in modules else base
                    out.append(Import(module, target, child.lineno, in_function, type_only))
            elif isinstance(child, ast.Call) and _is_import_module(child):
                out.append(Import(module, "<importlib>", child.lineno, True, False))
                visit(child, in_function, type_only)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, True, type_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), in_function, type_only)
            else:
                visit(child, in_function, type_only)

    visit(tree, False, False)
    return out


def _is_import_module(call: ast.Call) -> bool:
    func = call.func
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in {"import_module", "__import__"}
    )


def all_imports(root: Path) -> list[Import]:
    """Return the imports of every product module under ``root``."""
    files = product_files(root)
    return [imp for mod, path in files.items() for imp in imports_of(mod, path, files)]


def layer_violations(imports: Iterable[Import]) -> list[str]:
    """Return one line per import that points up the layers (:data:`FORBIDDEN`)."""
    bad = []
    for imp in imports:
        layer = imp.module.split(".")[0]
        top = imp.target.split(".")[0]
        if top in FORBIDDEN.get(layer, ()) and (imp.module, top) not in LAYER_EXCEPTIONS:
            why = f"{layer} must not import {top}"
            bad.append(f"{imp.module}:{imp.line} imports {imp.target} ({why})")
    return bad


def lazy_violations(imports: Iterable[Import]) -> list[str]:
    """Return one line per import inside a function outside :data:`LAZY_ALLOWED`."""
    return [
        f"{imp.module}:{imp.line} imports {imp.target} inside a function"
        for imp in imports
        if imp.in_function and imp.module not in LAZY_ALLOWED
    ]


def import_cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Return the import cycles among product modules (each a sorted list of modules).

    Only imports that run count: those under ``if TYPE_CHECKING:`` do not. A module
    importing a package's submodule also runs the package, so it depends on both.
    """
    graph: dict[str, set[str]] = {}
    imports = list(imports)
    modules = {imp.module for imp in imports}
    for imp in imports:
        graph.setdefault(imp.module, set())
        if imp.type_only or imp.target not in modules or imp.target == imp.module:
            continue
        graph[imp.module].add(imp.target)
    return _strongly_connected(graph)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's algorithm, iterative so that deep chains cannot hit the recursion limit.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles
