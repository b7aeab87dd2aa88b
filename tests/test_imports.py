"""The package's import graph: no cycle, and almost no imports hidden inside functions."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sost_jax"
#: function-level imports of sost_jax modules allowed outside cli.py (each with its reason
#: beside it in the code); the brief's ceiling is 8.
MAX_LAZY = 8


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "configs":  # config files read at run time, not modules
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, top_level: bool, modules: dict[str, Path]) -> list[str]:
    """sost_jax modules imported by ``path``: at module level, or inside functions
    (``from package import submodule`` counts as importing the submodule)."""
    tree = ast.parse(path.read_text())
    found = []
    nodes = (
        tree.body
        if top_level
        else [
            n
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            for n in ast.walk(f)
        ]
    )
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sost_jax"):
            subs = [f"{node.module}.{a.name}" for a in node.names]
            found += [m for m in subs if m in modules] or [node.module]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("sost_jax")]
    return found


def test_module_level_imports_have_no_cycle():
    modules = _modules()
    graph = {
        m: {i for i in _imports(p, True, modules) if i in modules and i != m}
        for m, p in modules.items()
    }
    done: set[str] = set()

    def visit(m: str, stack: list[str]) -> None:
        if m in stack:
            pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(m) :], m]))
        if m in done:
            return
        for dep in sorted(graph[m]):
            visit(dep, [*stack, m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])


def test_few_imports_are_hidden_in_functions():
    modules = _modules()
    lazy = {m: _imports(p, False, modules) for m, p in modules.items() if m != "sost_jax.cli"}
    count = sum(len(v) for v in lazy.values())
    assert count <= MAX_LAZY, {m: v for m, v in lazy.items() if v}


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = [m for m in _modules() if m != "sost_jax"]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    for name in names:  # one interpreter per module: the order of a real first import
        run = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True)
        assert run.returncode == 0, f"{name}: {run.stderr[-500:]}"


def test_no_stage_imports_the_run_config():
    """Stages take their own settings; only the top (demo, cli, and api, the Python entry
    point for users' spectra) assembles a whole config."""
    modules = _modules()
    users = {
        m
        for m, p in modules.items()
        if "sost_jax.config" in _imports(p, True, modules) + _imports(p, False, modules)
    }
    assert users <= {"sost_jax.cli", "sost_jax.demo.run", "sost_jax.inference.api"}, users
