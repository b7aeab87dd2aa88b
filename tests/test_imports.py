"""The package's shape: no import cycle, almost no imports hidden inside functions, no
stage importing the run config, and modules and functions of a size one can read."""

import ast
import re
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


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100


def _too_long(modules: dict[str, Path]) -> tuple[list[str], list[str]]:
    """Modules over MAX_MODULE_LINES lines, and functions (docstring included) over
    MAX_FUNCTION_LINES outside cli.py, as "name: lines"."""
    big_modules, big_functions = [], []
    for name, path in modules.items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            big_modules.append(f"{name}: {len(text.splitlines())}")
        if name == "sost_jax.cli":
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    big_functions.append(f"{name}.{node.name}: {lines}")
    return big_modules, big_functions


def test_no_module_or_function_is_too_long_to_read():
    big_modules, big_functions = _too_long(_modules())
    assert not big_modules, big_modules
    assert not big_functions, big_functions


def test_the_size_check_finds_a_long_module_and_function(tmp_path):
    body = "def f():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    path = tmp_path / "long.py"
    path.write_text(body + "\n" * (MAX_MODULE_LINES - MAX_FUNCTION_LINES))
    big_modules, big_functions = _too_long({"sost_jax.long": path})
    assert big_modules == [f"sost_jax.long: {MAX_MODULE_LINES + 1}"]
    assert big_functions == [f"sost_jax.long.f: {MAX_FUNCTION_LINES + 1}"]
    path.write_text(body.replace("    x = 1\n", "", 1))  # exactly at both limits: fine
    assert _too_long({"sost_jax.long": path}) == ([], [])


def _documented_names() -> list[str]:
    """Every ``sost_jax.`` dotted name and ``from sost_jax... import ...`` line of the
    README and the docs."""
    root = PACKAGE.parent
    names = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text()
        for module, items in re.findall(r"from (sost_jax[\w.]*) import ([\w, ]+)", text):
            names += [f"{module}.{item.split(' as ')[0].strip()}" for item in items.split(",")]
        names += re.findall(r"\b(sost_jax(?:\.\w+)+)", text)
    return sorted(set(names))


def test_the_names_the_docs_use_are_importable():
    code = (
        "import importlib, sys\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    parts = name.split('.')\n"
        "    for i in range(len(parts), 0, -1):\n"
        "        try:\n"
        "            obj = importlib.import_module('.'.join(parts[:i]))\n"
        "        except ModuleNotFoundError:\n"
        "            continue\n"
        "        try:\n"
        "            for attr in parts[i:]:\n"
        "                obj = getattr(obj, attr)\n"
        "        except AttributeError:\n"
        "            bad.append(name)\n"
        "        break\n"
        "    else:\n"
        "        bad.append(name)\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    names = _documented_names()
    assert len(names) > 20  # the README's examples are found
    run = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr[-500:]
