"""The package's shape: no import cycle between modules, and the layers import only downward.

Imports are read from the source with ``ast`` (every import: top level, inside functions and
under ``TYPE_CHECKING``), so a cycle that no run happens to trigger still fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gyre

PACKAGE = Path(gyre.__file__).resolve().parent

#: the layers, lowest first, as written in ``gyre/__init__.py``'s docstring: a subpackage imports
#: only what stands before it, and nothing before it imports the subpackage (top-level modules
#: among themselves are held to the no-cycle rule alone: ``phase`` names ``RunContext`` in its types)
LAYERS = [
    "errors",
    "result",
    "schema",
    "progress",
    "runs",
    "phase",
    "workspace",
    "context",
    "pipeline",
    "execution",
    "io",
    "watch",
    "job",
    "adaptive",
    "report",
    "steps",
    "stream",
    "loader",
    "launch",
    "cli",
    "compat",
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "workspace_template" in path.parts:
            continue
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(["gyre", *parts])] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                if f"{module}.{alias.name}" in known:
                    targets.add(f"{module}.{alias.name}")
                elif module in known:
                    targets.add(module)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in known)
    targets.discard(name)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _node(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gyre"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_modules():
    graph = {name: targets - {"gyre"} for name, targets in _graph().items() if name != "gyre"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_layers_import_only_downward():
    rank = {node: index for index, node in enumerate(LAYERS)}
    upward = []
    for module, targets in _graph().items():
        source = _node(module)
        if source == "gyre":
            continue
        assert source in rank, f"{module}: {source!r} is in no layer of LAYERS"
        for target in targets:
            node = _node(target)
            between_modules = "." not in module[5:] and "." not in target[5:]
            if node not in ("gyre", source) and rank[node] > rank[source] and not between_modules:
                upward.append(f"{module} imports {target} ({source} is below {node})")
    assert not upward, "\n".join(upward)


def test_only_the_version_is_taken_from_the_package_itself():
    offenders = [m for m, targets in _graph().items() if "gyre" in targets and m != "gyre"]
    for module in offenders:
        text = _modules()[module].read_text()
        assert "import __version__" in text, f"{module} imports from gyre/__init__.py"


def test_the_layers_are_written_in_the_package_docstring():
    doc = gyre.__doc__ or ""
    for node in LAYERS:
        assert node in doc, f"the package docstring does not place {node!r} in the layers"


def test_every_subpackage_says_what_it_holds():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "workspace_template":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, f"{init.parent.name}/ has no docstring saying what it holds"
