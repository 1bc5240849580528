"""The import graph: light modules stay light (each checked in a fresh interpreter) and no two
project modules import each other, at module scope or deferred inside a function."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("s2robot", "envs", "policies")  # the packages whose import graph must stay acyclic
SIMULATOR = ("gymnasium", "robosuite", "mujoco")


def loaded_after(*modules: str) -> set[str]:
    """The modules a fresh interpreter holds after importing ``modules``."""
    code = f"import json, sys; import {', '.join(modules)}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def pulled(modules, forbidden) -> list[str]:
    """Which of ``forbidden`` importing ``modules`` (a str or a tuple: none of them may pull any)
    loads; one interpreter per group, since each fresh one pays for torch again."""
    mods = loaded_after(*([modules] if isinstance(modules, str) else modules))
    return sorted(f for f in forbidden if f in mods or any(m.startswith(f + ".") for m in mods))


@pytest.mark.parametrize(
    "modules,forbidden",
    [
        ("s2robot.s2", (*SIMULATOR, "timm")),  # the core: torch only
        (("s2robot.serving", "s2robot.rollout.controller"), SIMULATOR),
        ("s2robot.study.report", ("s2robot.rollout",)),
        ("s2robot_client", ("torch",)),
        # the command-line layer: validated before torch loads; env workers re-import entry modules
        (
            (
                "s2robot.cli",
                "s2robot.config",
                "s2robot.simulator",
                "s2robot.commands.train_policy",
                "s2robot.commands.eval_policy",
                "s2robot.commands.collect_demos",
            ),
            (*SIMULATOR, "timm", "torch"),
        ),
    ],
    ids=["core", "serving", "report", "client", "cli"],
)
def test_light_modules_stay_light(modules, forbidden):
    assert pulled(modules, forbidden) == []


def test_encoder_registry_imports_no_torch():
    assert pulled("s2robot.encoders.registry", (*SIMULATOR, "timm", "torch")) == []


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """The project modules ``path`` imports anywhere: at module scope or deferred inside a function
    (a deferred import hides a cycle from the interpreter, not from a reader). Imports under
    ``if TYPE_CHECKING`` never run and are left out."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    nodes: list[ast.AST] = [ast.parse(path.read_text())]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            nodes += node.orelse
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from package (level 1) or its parents
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import sub` imports the submodule sub when there is one
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        nodes += list(ast.iter_child_nodes(node))
    # `import a.b.c` loads a.b.c; a name that is not a module of ours (a class, a function) counts
    # as its module
    resolved = set()
    for m in found:
        while m and m not in modules:
            m = m.rpartition(".")[0]
        if m:
            resolved.add(m)
    return {m for m in resolved if m != name}


def project_import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for d in PROJECT for p in (ROOT / d).rglob("*.py")}
    return {name: imports_of(path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [name])):
            return cycle
    return None


def test_no_import_cycle_among_project_modules():
    graph = project_import_graph()
    assert graph["s2robot.commands.train_policy"] >= {"s2robot.cli"}  # the parser sees real edges
    # deferred imports count: view_episode imports the viewer inside its main()
    assert "s2robot.data.viewer" in graph["s2robot.commands.view_episode"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_sees_a_cycle_through_a_deferred_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from pkg import a\n    return a\n")
    modules = {"pkg", "pkg.a", "pkg.b"}
    graph = {m: imports_of(tmp_path / (m.replace(".", "/") + ".py"), modules, tmp_path) for m in ("pkg.a", "pkg.b")}
    graph["pkg"] = set()
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
