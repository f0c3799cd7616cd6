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
