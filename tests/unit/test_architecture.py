"""The package tree draws the architecture; these tests keep the drawing true.

Layers, lowest first — a module may import its own package and anything below it, never
a layer above it nor a sibling concern on its own layer:

    foundation  labsupport.{config, errors, events, schema, java, times, stats, waits}
    concerns    labsupport.ingest · labsupport.stream · labsupport.observe
    stack       labsupport.stack (runs the concerns as services)
    lessons     labsupport.lessons
    bench       labsupport.bench
    front door  labsupport.cli, labsupport.__main__
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "labsupport"
LAYERS = {"foundation": 0, "ingest": 1, "stream": 1, "observe": 1, "stack": 2, "lessons": 3, "bench": 4,
          "front door": 5}
FRONT_DOOR = {"cli", "__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labsupport"):
            for alias in node.names:  # `from labsupport.x import y` may name module y
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("labsupport")}
    return {m for m in found if m in MODULES}


def concern(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "foundation"  # the package's own __init__
    if parts[1] in FRONT_DOOR:
        return "front door"
    return parts[1] if parts[1] in LAYERS else "foundation"


def test_every_module_sits_in_a_known_layer():
    assert all(concern(m) in LAYERS for m in MODULES)
    assert {"labsupport.config", "labsupport.times", "labsupport.stack.control", "labsupport.lessons.reset",
            "labsupport.observe.prom", "labsupport.ingest.topics", "labsupport.bench.stream"} <= MODULES.keys()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_it_or_a_sibling_concern(module):
    mine = concern(module)
    bad = []
    for dep in _imports(MODULES[module], top_level_only=False):
        theirs = concern(dep)
        if theirs == mine:
            continue
        if LAYERS[theirs] >= LAYERS[mine]:
            bad.append(f"{dep} ({theirs})")
    assert not bad, f"{module} ({mine}) imports {bad}"


def import_graph(top_level_only: bool = False) -> dict[str, set[str]]:
    """Module -> the lab modules it imports. Function-level imports count: deferring an
    import keeps start-up light, it does not make a cycle any less of one. A package's
    ``__init__`` importing its own submodules counts too (a submodule importing the
    package back is the cycle that makes half-initialised modules)."""
    return {m: {d for d in _imports(p, top_level_only) if d != m} for m, p in MODULES.items()}


def first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        return exc.args[1]
    return None


def test_no_import_cycles_function_level_imports_included():
    cycle = first_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_check_sees_function_level_imports(tmp_path):
    """The check itself: two modules whose cycle is closed only inside a function."""
    config, services = tmp_path / "config.py", tmp_path / "services.py"
    config.write_text("def f():\n    from labsupport.stack.services import service\n")
    services.write_text("from labsupport.config import LabConfig\n")
    files = {"labsupport.config": config, "labsupport.stack.services": services}
    graph = {m: _imports(p, top_level_only=False) for m, p in files.items()}
    assert first_cycle(graph) is not None
    assert first_cycle({m: _imports(p, top_level_only=True) for m, p in files.items()}) is None
