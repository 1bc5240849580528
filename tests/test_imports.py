"""The import graph: light modules stay light (each checked in a fresh interpreter) and no two
s2robot modules import each other at module scope."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "s2robot"
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


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_scope_imports(path: Path, modules: set[str]) -> set[str]:
    """The s2robot modules ``path`` imports when it is imported (not inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    nodes = list(ast.parse(path.read_text()).body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, (ast.If, ast.Try)):  # module-scope try/except ImportError, if TYPE_CHECKING
            is_type_checking = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
            if not is_type_checking:
                nodes += [
                    *node.body,
                    *getattr(node, "orelse", []),
                    *getattr(node, "finalbody", []),
                    *[n for h in getattr(node, "handlers", []) for n in h.body],
                ]
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from package (level 1) or its parents
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import sub` imports the submodule sub when there is one
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return {m for m in found if m in modules and m != name}


def test_no_import_cycle_among_s2robot_modules():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: module_scope_imports(path, set(files)) for name, path in files.items()}
    assert graph["s2robot.commands.train_policy"] >= {"s2robot.cli"}  # the parser sees real edges
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
