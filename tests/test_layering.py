"""The import graph between the top-level folders: the contract below everything, no gateware
importing host code, no cycle between folders.

Every ``import``/``from ... import`` statement counts, including the ones inside functions: a lazy
import is still a dependency.
"""

import ast
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("contract", "accel", "platforms", "model", "firmware", "bench")

# What each folder may import from the others. ``contract`` is what gateware and host agree on
# (configuration, ISA, registers, error codes, serial frames); gateware (``accel``) and the boards
# (``platforms``) sit on it; the model knows nothing of the hardware; the host (``firmware``) drives
# gateware it builds into simulators; ``bench`` measures all of it.
ALLOWED = {
    "contract": set(),
    "accel": {"contract", "platforms"},
    "platforms": {"contract"},
    "model": set(),
    "firmware": {"contract", "accel", "platforms", "model"},
    "bench": {"contract", "accel", "platforms", "model", "firmware"},
}


def imported_folders(path):
    """Top-level project folders imported anywhere in the Python file ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in FOLDERS)
    return found


def folder_graph():
    """``{folder: {folder it imports: [files that do]}}`` over the whole tree (tests excluded)."""
    graph = {folder: {} for folder in FOLDERS}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for target in imported_folders(path) - {folder}:
                graph[folder].setdefault(target, []).append(str(path.relative_to(ROOT)))
    return graph


def find_cycle(edges):
    """A list of nodes forming a cycle in ``{node: iterable of nodes}``, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in edges.get(node, ()):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, stack + [nxt])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in edges:
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_imports_only_what_its_layer_allows(folder):
    graph = folder_graph()
    wrong = {target: files for target, files in graph[folder].items()
             if target not in ALLOWED[folder]}
    assert not wrong, f"{folder} imports {wrong}"


def test_no_import_cycle_between_folders():
    graph = folder_graph()
    assert find_cycle({f: set(targets) for f, targets in graph.items()}) is None


def test_gateware_imports_no_host_code():
    host = {"firmware", "model", "bench"}
    assert not host & set(folder_graph()["accel"])


def test_the_checks_see_a_violation(tmp_path):
    """The parser finds lazy imports inside functions, and the cycle finder finds a cycle."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from firmware.driver import Driver\n    import accel.soc\n")
    assert imported_folders(source) == {"firmware", "accel"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_architecture_map_names_files_that_exist():
    from bench.architecture_map import named_files
    missing = [path for path in named_files() if not (ROOT / path).is_file()]
    assert not missing
