"""The import graph of `cds_service`, read from the source (no import is executed).

Every `import` and `from … import` counts, at module level and inside functions alike, absolute
and relative: an import moved into a function still runs, and a cycle through it is still a cycle
(it only fails later, or depending on which module happened to be imported first). An edge goes
to the module named; importing `pkg.mod` also runs `pkg/__init__.py` first, but that implicit
edge is left out, as usual for import graphs (otherwise every package that imports its own
submodules would be a cycle).

Two rules:
- no cycle among the modules of `cds_service`;
- only the app factory (`cds_service/__init__.py`) and the pages themselves import `cds_service.ui`
  (the service works with the pages turned off; nothing else may depend on them).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "cds_service"
UI = f"{PACKAGE}.ui"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of `package` under `root`."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of `modules` that the file `path` (module `name`) imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: the package of this module, then one level up per extra dot
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import mod` imports the submodule pkg.mod; `from mod import name` imports mod.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cds_service_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and graph[PACKAGE], "the graph was read (every module of the package, with their imports)"
    found = cycles(graph)
    assert not found, "import cycles (module-level or function-level imports):\n" + "\n".join(
        " ⇄ ".join(c) for c in found)


def test_only_the_app_factory_and_the_pages_import_the_ui():
    graph = import_graph()
    importers = sorted(m for m, targets in graph.items()
                       if any(t == UI or t.startswith(UI + ".") for t in targets)
                       and m != PACKAGE and m != UI and not m.startswith(UI + "."))
    assert importers == [], f"modules outside the app factory and {UI} that import it: {importers}"
    assert UI in graph[PACKAGE], "the app factory registers the pages"


# --- the checker itself: it must see what it claims to see ------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        f = tmp_path / "pkg" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text, encoding="utf-8")
    return tmp_path


def test_a_cycle_through_a_function_level_relative_import_is_found(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "config.py": "from pkg.sub.trusted import parse\n",
        "sub/__init__.py": "",
        "sub/trusted.py": "def parse():\n    from ..config import ConfigError  # late import\n",
        "leaf.py": "import pkg.config as c\n",
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.sub.trusted"] == {"pkg.config"}
    assert graph["pkg.leaf"] == {"pkg.config"}
    assert cycles(graph) == [["pkg.config", "pkg.sub.trusted"]]


def test_from_package_import_submodule_is_an_edge_to_the_submodule(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from pkg import a\n",
        "a.py": "from . import b\n",
        "b.py": "from pkg import x\n",  # a name of pkg/__init__.py, not a module: an edge to the package
    })
    graph = import_graph(root, "pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg"}}
    assert cycles(graph) == [["pkg", "pkg.a", "pkg.b"]]
