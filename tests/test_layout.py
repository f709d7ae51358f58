"""The house's rules, read from the code's own imports (every import, also those inside functions):
imports only go down the floors below, no package or module imports itself in a circle, no
private name (`_x`) is taken from another module, and QGIS never enters the core."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "darts_postprocessing"
# Lowest first: a module may import from its own floor (without a circle) and the floors below.
FLOORS = ["definitions", "dependencies", "core.kernels", "core.files", "core.lazy", "core.products", "core.regions", "core",
          "cli", "__main__", "algorithms", "darts_provider", "plugin"]


def modules() -> dict[str, Path]:
    """{dotted name below the package: file} of the plugin's own modules (tests, scripts, bench left out)."""
    found = {}
    tops = [top for top in REPO.iterdir() if top.name not in ("tests", "scripts", "bench", "build", "docs")
            and not top.name.startswith(".")]  # not descending into build/ (a mounted trixie root's /proc)
    paths = [top for top in tops if top.suffix == ".py"] + [path for top in tops if top.is_dir()
                                                              for path in top.rglob("*.py")]
    for path in sorted(paths):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            found[name] = path
    return found


MODULES = modules()


def imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for each import of the plugin's own modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith(PACKAGE + "."):
                target = node.module[len(PACKAGE) + 1:]
            else:
                continue
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{target}.{n}".strip(".") in MODULES]
            for sub in submodules:
                found.append((f"{target}.{sub}".strip("."), [], node.lineno))
            if len(submodules) < len(names):
                found.append((target, [n for n in names if n not in submodules], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.append((alias.name[len(PACKAGE) + 1:], [], node.lineno))
    return found


def floor(name: str) -> int:
    """The index in FLOORS of the deepest floor `name` lies on."""
    best = -1
    for index, prefix in enumerate(FLOORS):
        if (name == prefix or name.startswith(prefix + ".")) and (best < 0 or len(prefix) > len(FLOORS[best])):
            best = index
    assert best >= 0, f"{name} is on no floor: add it to FLOORS (and to README's map)"
    return best


EDGES = {name: [(target, names, line) for target, names, line in imports(name, path) if target != name]
         for name, path in MODULES.items()}


def test_every_module_is_on_a_floor():
    for name in MODULES:
        floor(name)


def test_imports_only_go_down():
    upward = [f"{MODULES[name].relative_to(REPO)}:{line} imports {target} ({FLOORS[floor(target)]} is above "
              f"{FLOORS[floor(name)]})"
              for name, edges in EDGES.items() for target, _, line in edges
              if floor(target) > floor(name) and not name.startswith(target + ".")]
    assert not upward, "\n".join(upward)


def test_no_private_name_crosses_modules():
    private = [f"{MODULES[name].relative_to(REPO)}:{line} takes {', '.join(n for n in names if n.startswith('_'))} "
               f"from {target}" for name, edges in EDGES.items() for target, names, line in edges
               if any(n.startswith("_") for n in names)]
    assert not private, "\n".join(private)


def test_no_circle():
    graph = {name: {target for target, _, _ in edges if target in MODULES and not name.startswith(target + ".")}
             for name, edges in EDGES.items()}
    circles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                circles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(circles)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if floor(n) <= FLOORS.index("core") or n in ("cli", "__main__")))
def test_qgis_never_enters_the_core(name):
    tree = ast.parse(MODULES[name].read_text())
    named = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module] + \
            [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [n for n in named if n.split(".")[0] in ("qgis", "processing", "PyQt5", "PyQt6")], name


def test_the_core_shipped_to_cluster_workers_holds_what_the_core_imports():
    """dask.distributed workers get the core as a zip (lazy.blockwise): with every module outside
    core/ that the core imports, else they fail to unpickle its tasks."""
    from darts_postprocessing.core.lazy.blockwise import CORE_NEEDS

    outside = {target for name, edges in EDGES.items() if floor(name) <= FLOORS.index("core")
               for target, _, _ in edges if not target.startswith("core")}
    assert outside == {name.removesuffix(".py") for name in CORE_NEEDS}
