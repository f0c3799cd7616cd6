"""Core modules import without gradio (and without the heavy stack): the UI is optional."""

import json
import pkgutil
import subprocess
import sys

import workbench


def core_modules() -> list[str]:
    return [f"workbench.{m.name}" for m in pkgutil.iter_modules(workbench.__path__) if m.name != "ui"]


def test_core_modules_do_not_import_gradio_or_the_engine():
    modules = core_modules()
    assert {"workbench.engine", "workbench.client", "workbench.models", "workbench.cli"} <= set(modules)
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps([m for m in ('gradio', 'vllm', 'torch', 'gptqmodel') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_ui_imports_nothing_from_the_cli():
    code = "import sys, workbench.ui.app; print('workbench.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_planner_does_no_io():
    """memory.py is arithmetic: the catalog and checkpoint reading live in models.py."""
    import ast
    from pathlib import Path

    import workbench.memory

    tree = ast.parse(Path(workbench.memory.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported & {"os", "pathlib", "json", "struct", "io", "urllib", "subprocess"} == set()
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "open" not in calls
