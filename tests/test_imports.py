"""The architecture, checked on the source: the core is a DAG that never imports a face, the faces point down
into the core and not at each other, only heavy third-party packages are imported inside functions, the core
imports without gradio or the GPU stack, and the layout on the documentation site's architecture page
(docs/architecture.md) names every module."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"
FACES = ("workbench.cli", "workbench.jupyter", "workbench.ui")
# What may be imported inside a function: packages that cost a tenth of a second or more to import (measured
# with `python -X importtime`: matplotlib 1.6 s, scipy.stats 2.2 s, transformers 2.4 s, openai 0.9 s, bs4 0.4 s,
# reportlab 0.2 s, pypdf 0.17 s, docx 0.13 s) or that need a GPU stack or a notebook kernel. Everything else,
# the workbench's own modules and the standard library included, is imported at the top of the module.
HEAVY = {
    "vllm",
    "torch",
    "gptqmodel",
    "gradio",
    "ipywidgets",
    "IPython",
    "transformers",
    "tokenizers",
    "openai",
    "httpx",
    "matplotlib",
    "scipy",
    "jsonschema",
    "pypdf",
    "docx",
    "reportlab",
    "bs4",
    "pynvml",
    "tqdm",
    "sqlalchemy",
    "sqlglot",  # sqlalchemy 0.26 s, sqlglot 0.08 s (the daily report's database access)
    "pyarrow",
    "numpy",  # 0.11 s (-X importtime): bench.py draws vLLM's arrival times with it
    "huggingface_hub",
}  # Parquet calibration files; the Hub client (only when a Hub id is given)


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def is_face(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FACES)


def imports(path: Path, name: str) -> list[tuple[str, bool, int]]:
    """(module imported, inside a function, line) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inside = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, lazy, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(name.split(".")[: -child.level] + ([base] if base else []))
                found.append((base, lazy, child.lineno))
                found.extend((f"{base}.{a.name}", lazy, child.lineno) for a in child.names)
            visit(child, inside)

    visit(tree, False)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {
        name: {m for m, _, _ in imports(path, name) if m in mods and m != name and m != "workbench"}
        for name, path in mods.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def walk(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            walk(node)
    return found


def test_the_core_is_a_dag_lazy_imports_included():
    edges = graph()
    assert "workbench.plots" in edges and edges["workbench.plots"] == set()  # a leaf
    assert cycles(edges) == []


def test_a_cycle_is_found_when_there_is_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_core_module_imports_a_face_and_faces_do_not_import_each_other():
    edges = graph()
    core = [m for m in edges if not is_face(m)]
    assert {
        "workbench.serving.engine",
        "workbench.planner",
        "workbench.planner.budget",
        "workbench.serving.vllm_flags",
    } <= set(core)
    assert {m: sorted(t for t in edges[m] if is_face(t)) for m in core if any(is_face(t) for t in edges[m])} == {}
    crossing = {
        m: sorted(t for t in edges[m] if is_face(t) and t.split(".")[:2] != m.split(".")[:2])
        for m in edges
        if is_face(m)
    }
    # `workbench ui` is the CLI's command that launches the app: its one way in (ui.app.launch), as STYLE.md has it
    assert {m: t for m, t in crossing.items() if t} == {"workbench.cli": ["workbench.ui", "workbench.ui.app"]}


def test_only_heavy_packages_are_imported_inside_functions():
    lazy = []
    for name, path in modules().items():
        for module, inside, line in imports(path, name):
            top = module.split(".")[0]
            allowed = top in HEAVY or (name == "workbench.cli" and module in ("workbench.ui", "workbench.ui.app"))
            if inside and not allowed:
                lazy.append(f"{path.relative_to(ROOT)}:{line} {module}")
    assert lazy == []


def test_core_modules_import_without_gradio_or_the_gpu_stack():
    core = [m for m in modules() if not is_face(m) and m != "workbench"]
    code = (
        "import importlib, json, sys\n"
        f"for m in {core!r}: importlib.import_module(m)\n"
        "print(json.dumps([m for m in ('gradio', 'vllm', 'torch', 'gptqmodel', 'ipywidgets') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_ui_imports_nothing_from_the_cli():
    code = "import sys, workbench.ui.app; print('workbench.cli' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_planner_does_no_io():
    """The planner is arithmetic: the catalog and checkpoint reading live in models.py, the reading of a start-up log
    in startup_log.py, and asking a running server in the faces (client.py)."""
    planner = sorted((PACKAGE / "planner").glob("*.py"))
    assert {p.stem for p in planner} >= {"__init__", "budget", "vllm_facts", "gpu_plan", "sweeps", "fit", "answer"}
    for path in planner:
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imported & {"os", "pathlib", "json", "struct", "io", "urllib", "subprocess"} == set(), path.name
        calls = {
            node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        assert "open" not in calls, path.name
        assert not {
            m for m, _, _ in imports(path, f"workbench.planner.{path.stem}") if m == "workbench.serving.client"
        }, path.name


def layout() -> str:
    page = (ROOT / "docs" / "architecture.md").read_text()
    section = page[page.index("## Layout") :]
    return section[: section.index("```", section.index("```") + 3)]


def test_the_architecture_page_names_every_module_and_no_other():
    text = layout()
    for name, path in modules().items():
        if path.name == "__init__.py":
            continue
        shown = name.removeprefix("workbench.").replace(".", "/")
        assert re.search(rf"(?<![\w/]){re.escape(shown)}\b", text) or (
            "ui/" in shown and re.search(rf"\b{re.escape(shown.split('/')[-1])}\b", text)
        ), f"{shown} is not in the layout"
    named = set(re.findall(r"\b([a-z_]+)\.py\b", text))
    files = {p.stem for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    assert named - files == set(), "the layout names files that do not exist"
