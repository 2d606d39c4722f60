"""The package's layering: intentbal's modules never import each other in a circle.

Every import statement counts, wherever it stands: a function-level import is how a cycle
hides from a module-level reading (and from Python, until the wrong function runs first).
"""

import ast
from pathlib import Path

from conftest import ROOT


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` (subpackages included) and the modules of ``package`` it imports."""
    root = package.parent
    files = {module_name(p, root): p for p in sorted(package.rglob("*.py"))}
    return {name: imported(path, name, set(files)) - {name} for name, path in files.items()}


def imported(path: Path, name: str, modules: set[str]) -> set[str]:
    """The modules among ``modules`` that the import statements of ``path`` (module ``name``) name."""
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, here)
            # `from intentbal import export` imports the submodule, `from intentbal.x import y` module x
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(owner for target in targets if (owner := enclosing(target, modules)) is not None)
    return found


def absolute(node: ast.ImportFrom, here: str) -> str:
    """The absolute module name of ``from <node.module> import ...`` written in package ``here``."""
    if not node.level:
        return node.module or ""
    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
    return ".".join([*parts, node.module] if node.module else parts)


def enclosing(target: str, modules: set[str]) -> str | None:
    """The module ``target`` lives in (itself or its longest prefix among ``modules``), if any."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """A shortest cycle through each group of modules that reach each other, ``[a, b, ..., a]``."""
    reach = {m: reachable(graph, m) for m in graph}
    found, seen = [], set()
    for start in sorted(graph):
        if start in reach[start] and start not in seen:
            group = {m for m in reach[start] if start in reach[m]}
            seen |= group
            found.append(shortest_cycle(graph, start, group))
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    todo, seen = list(graph[start]), set()
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def shortest_cycle(graph: dict[str, set[str]], start: str, group: set[str]) -> list[str]:
    paths = [[start]]
    while True:  # start is in a cycle within group, so a path back exists
        paths = [[*p, m] for p in paths for m in sorted(graph[p[-1]] & group) if m not in p[1:]]
        for p in paths:
            if p[-1] == start:
                return p


def test_intentbal_has_no_import_cycle():
    graph = import_graph(ROOT / "intentbal")
    assert "intentbal.config" in graph["intentbal.inference.classifier"]  # the reading sees real imports
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_backends_import_neither_the_classifier_nor_the_exporter():
    graph = import_graph(ROOT / "intentbal")
    assert not graph["intentbal.inference.backends"] & {"intentbal.inference.classifier", "intentbal.inference.export"}
    assert "intentbal.inference.classifier" not in graph["intentbal.inference.export"]


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from .c import g\n    return g\n")
    (package / "sub" / "c.py").write_text("import os\n\ndef g():\n    from pkg import a\n    return a\n")
    (package / "d.py").write_text("import pkg.a\nfrom pkg import sub\n")
    graph = import_graph(package)
    assert graph["pkg.d"] == {"pkg.a", "pkg.sub"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]]


# --- the house: rooms by concern ---------------------------------------------------------------------------------

ROOMS = {"data", "rebalance", "model", "training", "inference", "evaluation", "reports", "io", "commands"}


def test_the_package_is_rooms_with_a_few_modules_at_the_door():
    package = ROOT / "intentbal"
    top = sorted(p.name for p in package.glob("*.py"))
    assert len(top) <= 12, top
    assert {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == ROOMS


def test_no_module_name_twice_and_none_over_500_lines():
    modules = [p for p in (ROOT / "intentbal").rglob("*.py") if p.name != "__init__.py"]
    names = [p.stem for p in modules]
    assert sorted({n for n in names if names.count(n) > 1}) == []
    long = {str(p.relative_to(ROOT)): n for p in modules if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
