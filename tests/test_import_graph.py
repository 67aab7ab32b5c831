"""The package's import graph has no cycle (a module never imports one that imports it back).

Every import counts, at module level or inside a function (a lazy import still runs while its
importer may be half-initialised, as ``kernels/__init__`` loading ``native`` at import shows), except
those under ``if TYPE_CHECKING:``. Importing a submodule also runs its parent packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import palyra_journal

PACKAGE = Path(palyra_journal.__file__).resolve().parent  # the source tree, or the installed copy


def _modules() -> dict[str, tuple[Path, str]]:
    """Dotted module name -> (file, the package its relative imports resolve against)."""
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            pkg = ".".join(parts)
        else:
            pkg = ".".join(parts[:-1])
        mods[".".join(parts)] = (f, pkg)
    return mods


def _imports(path: Path, pkg: str, mods: dict[str, tuple[Path, str]]) -> set[str]:
    out: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            out.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.add(sub if sub in mods else mod)

    Visitor().visit(ast.parse(path.read_text("utf-8")))
    return {m for m in out if m in mods}


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, (path, pkg) in mods.items():
        deps = {d for d in _imports(path, pkg, mods) if d != name}
        for d in list(deps):  # importing a.b.c runs a.b first (unless we are inside a.b)
            parent = d.rpartition(".")[0]
            while parent in mods and not name.startswith(parent + ".") and parent != name:
                deps.add(parent)
                parent = parent.rpartition(".")[0]
        graph[name] = deps
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state, stack = [], {}, []

    def visit(u: str) -> None:
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_find_cycles_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "palyra_journal.kernels.native_chain" in graph  # the walk found the package
    assert "palyra_journal.kernels.layout" in graph["palyra_journal.kernels.native_chain"]
    assert find_cycles(graph) == []
