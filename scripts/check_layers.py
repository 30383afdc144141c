"""Fail on an upward import between the layers or on an import cycle between modules.

The layers, lowest first; each package may import only packages listed before it:

    rag      the core: types, text analysis, store, embeddings, retrieval, prompts, answering
    ingest   loaders, chunking, manifest and the sync, on top of the core
    application  the composition root, the CLI, evaluation, status
    ui       the Streamlit pages

Every import counts: module level, inside functions, and under ``if TYPE_CHECKING``. A module
cycle (a imports b, b imports a, through any path) inside or across packages fails too, since a
lazy import inside a function only hides it.

    python scripts/check_layers.py          # prints the layer graph, exits 1 on a violation
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("rag", "ingest", "application", "ui")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from x import y`` counts y when y is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            # the longest known module that t names (a.b.c -> a.b when c is a class)
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other through some path (strongly connected
    components of more than one module), each sorted; Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def main() -> int:
    files = {module_name(p): p for layer in LAYERS if (ROOT / layer).is_dir()
             for p in sorted((ROOT / layer).rglob("*.py"))}
    known = set(files)
    graph = {name: imports_of(path, name, known) for name, path in files.items()}
    # a package's __init__ is imported with each of its modules; it must not import them back
    problems: list[str] = []
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for name, targets in graph.items():
        layer = name.split(".")[0]
        for t in targets:
            other = t.split(".")[0]
            if other != layer:
                edges[(layer, other)] += 1
            if LAYERS.index(other) > LAYERS.index(layer):
                problems.append(f"upward import: {name} imports {t} ({layer} is below {other})")
    for group in cycles(graph):
        problems.append("import cycle between: " + ", ".join(group))
    for layer in LAYERS:
        below = {o: n for (a, o), n in edges.items() if a == layer}
        if layer in {m.split(".")[0] for m in files}:
            size = sum(1 for m in files if m.split(".")[0] == layer)
            uses = ", ".join(f"{o} ({n})" for o, n in sorted(below.items())) or "nothing"
            print(f"{layer:<7} {size:3d} modules, imports {uses}")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"layers ok: {len(files)} modules, {sum(len(t) for t in graph.values())} imports, "
          "no upward import, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
