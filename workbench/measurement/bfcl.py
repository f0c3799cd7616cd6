"""bfcl.py scores the served model on BFCL v4, the Berkeley Function Calling Leaderboard's own suite, with its
own AST checker: the questions, function docs and possible answers of bfcl-eval 2026.3.23 (Apache-2.0), as
published on PyPI.

Nothing of BFCL is copied here or installed into the workbench's environment (its pins clash with vLLM's):
the wheel is downloaded once into the cache (`pip download --no-deps`, checked against its SHA-256), the
data is read from it, and the checker's modules are imported from it unchanged. They need only the standard
library, save one module, `bfcl_eval.constants.model_config`, which imports every provider's SDK to build a
table of models; the checker asks that table one thing, whether the model's function names had "." replaced by
"_" (as every OpenAI-style API needs), so a one-entry table of ours stands in for it. The checker compares
values; it never runs model output, and neither does this module.

The requests go through the workbench's own modes (agent.propose): native (vLLM's --tool-call-parser),
constrained and two-stage, so what is measured is the served stack. BFCL's function docs become JSON-schema
tools by BFCL's own type table (dict → object, float → number, tuple → array, any → string). Irrelevance
categories pass when no call comes back, as BFCL's relevance check has it (eval_runner.py). Each design runs with
thinking left to each step's default, or set on or off (both: on against off). A design the server cannot serve
(native without vLLM's tool parser, thinking without a reasoning parser) is refused before the first request, never
scored as 0 %; a request refused for one entry (a prompt over the context) is that entry's error, counted apart.
"""

import functools
import hashlib
import importlib
import json
import random
import subprocess
import sys
import types
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from workbench import settings, stats
from workbench.errors import ConfigError, WorkbenchError
from workbench.export import Exportable
from workbench.store import Store
from workbench.tasks import agent, tools

VERSION = "2026.3.23"
WHEEL = f"bfcl_eval-{VERSION}-py3-none-any.whl"
SHA256 = "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"
# BFCL v4's single-turn categories the issue asks for, with their sizes in this release.
CATEGORIES = {
    "simple_python": 400,
    "multiple": 200,
    "parallel": 200,
    "parallel_multiple": 200,
    "irrelevance": 240,
    "live_simple": 258,
    "live_multiple": 1053,
    "live_irrelevance": 884,
}
MODEL_NAME = "workbench"  # the name the checker is told; our stand-in table answers for it
_CHECKER_MODULES = (
    "bfcl_eval/__init__.py",
    "bfcl_eval/constants/__init__.py",
    "bfcl_eval/constants/enums.py",
    "bfcl_eval/constants/type_mappings.py",
    "bfcl_eval/eval_checker/__init__.py",
    "bfcl_eval/eval_checker/ast_eval/__init__.py",
    "bfcl_eval/eval_checker/ast_eval/ast_checker.py",
    "bfcl_eval/eval_checker/ast_eval/type_convertor/__init__.py",
    "bfcl_eval/eval_checker/ast_eval/type_convertor/java_type_converter.py",
    "bfcl_eval/eval_checker/ast_eval/type_convertor/js_type_converter.py",
)


def suite_dir() -> Path:
    """The cache folder holding BFCL's checker modules and data, downloaded and unpacked on first use."""
    root = settings.cache_dir() / "bfcl" / VERSION
    if (root / ".complete").is_file():
        return root
    wheel = root.parent / WHEEL
    if not wheel.is_file() or _sha256(wheel) != SHA256:
        wheel.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                str(wheel.parent),
                f"bfcl-eval=={VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0 or not wheel.is_file():
            raise WorkbenchError(
                f"pip could not download bfcl-eval=={VERSION} (BFCL's suite): "
                f"{(out.stderr or out.stdout).strip()[-300:]}. Fix: check that PyPI can be reached, "
                f"or put {WHEEL} into {wheel.parent}."
            )
        if _sha256(wheel) != SHA256:
            raise WorkbenchError(
                f"{wheel} is not the published bfcl-eval {VERSION} (its SHA-256 differs). Fix: "
                "delete it; it is downloaded again."
            )
    wanted = set(_CHECKER_MODULES)
    for category in CATEGORIES:
        wanted |= {f"bfcl_eval/data/BFCL_v4_{category}.json", f"bfcl_eval/data/possible_answer/BFCL_v4_{category}.json"}
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(wanted & set(archive.namelist())):
            archive.extract(name, root)
    (root / ".complete").write_text(f"bfcl-eval {VERSION} from {WHEEL}\n")
    return root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _ModelTable(dict):
    """Stands in for bfcl_eval.constants.model_config.MODEL_CONFIG_MAPPING: the checker's one question of it."""

    def __missing__(self, name):
        return types.SimpleNamespace(model_name=name, underscore_to_dot=True)


def checker():
    """BFCL's own `ast_checker` and its `Language` enum, imported from the published wheel."""
    if "bfcl_eval.eval_checker.ast_eval.ast_checker" not in sys.modules:
        root = str(suite_dir())
        if root not in sys.path:
            sys.path.append(root)  # after everything installed: an installed bfcl_eval would win, as pip's would
        table = types.ModuleType("bfcl_eval.constants.model_config")
        table.MODEL_CONFIG_MAPPING = _ModelTable()
        sys.modules["bfcl_eval.constants.model_config"] = table
    ast_checker = importlib.import_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
    return ast_checker.ast_checker, importlib.import_module("bfcl_eval.constants.enums").Language


@dataclass(frozen=True)
class Entry:
    id: str
    category: str
    messages: tuple[dict, ...]  # the first turn: BFCL's single-turn categories have one
    functions: tuple[dict, ...]  # BFCL's own function docs, as the checker wants them
    answer: tuple[dict, ...]  # the possible answers ([] for the irrelevance categories)


def check_categories(categories=None) -> list[str]:
    """The categories asked for, checked; none asked (None or empty) means all eight."""
    categories = list(categories or CATEGORIES)
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ConfigError(
            f"BFCL category {', '.join(map(repr, unknown))} is unknown. Valid: {', '.join(CATEGORIES)}. "
            "Fix: name one of those, or leave --categories out for all eight."
        )
    return categories


def load(category: str) -> list[Entry]:
    check_categories([category])
    data = suite_dir() / "bfcl_eval" / "data"
    answers = {}
    answer_file = data / "possible_answer" / f"BFCL_v4_{category}.json"
    if answer_file.is_file():
        answers = {row["id"]: row["ground_truth"] for row in map(json.loads, answer_file.read_text().splitlines())}
    entries = []
    for line in (data / f"BFCL_v4_{category}.json").read_text().splitlines():
        row = json.loads(line)
        entries.append(
            Entry(
                row["id"],
                category,
                tuple(row["question"][0]),
                tuple(row["function"]),
                tuple(answers.get(row["id"], ())),
            )
        )
    return entries


def sample(categories=None, per_category: int | None = None, seed: int = 0) -> list[Entry]:
    """`per_category` entries drawn at random from each category (stratified by category), the same for the same
    seed; every entry when per_category is None."""
    if per_category is not None and per_category < 1:
        raise ConfigError(
            f"per_category {per_category} draws nothing. Fix: give at least 1 (or leave it out for every entry)."
        )
    out = []
    for category in check_categories(categories):
        entries = load(category)
        if per_category is not None and per_category < len(entries):
            entries = sorted(random.Random(f"{seed}:{category}").sample(entries, per_category), key=entries.index)
        out += entries
    return out


def tool_name(name: str) -> str:
    """BFCL's function name as an OpenAI-style API takes it: "math.factorial" → "math_factorial"."""
    return name.replace(".", "_")


@functools.cache
def _type_table() -> dict:
    checker()  # the table lives beside the checker
    return importlib.import_module("bfcl_eval.constants.type_mappings").GORILLA_TO_OPENAPI


def schema(node: dict) -> dict:
    """One BFCL parameter (or parameters object) as JSON schema, by BFCL's own type table (type_mappings.py)."""
    mapping = _type_table()
    out = {k: v for k, v in node.items() if k in ("description", "enum", "default", "required")}
    kind = mapping.get(node.get("type", "string"), "string")
    out["type"] = kind
    if kind == "object" and isinstance(node.get("properties"), dict):
        out["properties"] = {name: schema(p) for name, p in node["properties"].items()}
    if kind == "array" and isinstance(node.get("items"), dict):
        out["items"] = schema(node["items"])
    if "required" in out and "properties" not in out:
        del out["required"]
    return out


def policy_for(entry: Entry, audit_path: Path) -> tools.Policy:
    """The entry's functions as registered JSON-schema tools (nothing runs: the calls are only scored)."""
    registry = tools.Registry()
    for function in entry.functions:
        parameters = schema({**function.get("parameters", {}), "type": "dict"})
        parameters.setdefault("properties", {})
        registry.add_fixed(tool_name(function["name"]), function.get("description", ""), parameters, None)
    return tools.Policy(registry, tools.AuditLog(audit_path))


def score(entry: Entry, proposed) -> dict:
    """BFCL's verdict on what the model proposed: a list of (name, arguments), an answer (str), or an
    agent.Unusable reply. Irrelevance: right when no call came back."""
    calls = proposed if isinstance(proposed, list) else []
    if "irrelevance" in entry.category:
        return {"valid": not calls, "error_type": None if not calls else "irrelevance_error:decoder_success"}
    if not calls:
        reason = proposed.reason if isinstance(proposed, agent.Unusable) else "no function call"
        return {"valid": False, "error_type": "no_call", "error": [reason]}
    model_output = [{name: arguments if isinstance(arguments, dict) else {}} for name, arguments in calls]
    ast_checker, language = checker()
    result = ast_checker(
        list(entry.functions), model_output, list(entry.answer), language.PYTHON, entry.category, MODEL_NAME
    )
    valid = bool(result["valid"])
    return {"valid": valid, "error_type": None if valid else result.get("error_type"), "error": result.get("error", [])}


def _run_one(client, entry: Entry, mode: str, few_shot: bool, folder: Path, thinking: bool | None = None) -> dict:
    messages = [dict(m) for m in entry.messages]
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user"), None)
    history, message = (messages[:last], messages[last]["content"]) if last is not None else (messages, "")
    try:
        policy = policy_for(entry, folder / f"{entry.id}.jsonl")
        proposed = agent.propose(client, policy, message, mode, few_shot=few_shot, history=history, thinking=thinking)
        verdict = score(entry, proposed)
        shown = proposed if isinstance(proposed, (list, str)) else {"unusable": proposed.reason}
    except WorkbenchError as exc:  # a prompt over the context, a refused request: scored wrong, and said
        verdict, shown = {"valid": False, "error_type": "request_error", "error": [str(exc).splitlines()[0]]}, None
    return {
        "id": entry.id,
        "category": entry.category,
        "mode": agent_design(mode, few_shot, thinking),
        **verdict,
        "proposed": shown,
    }


def agent_design(mode: str, few_shot: bool, thinking: bool | None = None) -> str:
    """'two-stage+few-shot', with '+thinking' / '+no-thinking' where thinking was set."""
    name = f"{mode}+few-shot" if few_shot else mode
    return name if thinking is None else f"{name}+{'thinking' if thinking else 'no-thinking'}"


class BfclReport(Exportable):
    """Accuracy per design and category with Wilson intervals, and every scored entry."""

    def __init__(self, rows: list[dict], settings_: dict, confidence: float = 0.95):
        self.rows, self.settings, self.confidence = rows, settings_, confidence

    def table(self) -> list[dict]:
        out = []
        designs = list(dict.fromkeys(r["mode"] for r in self.rows))
        for design in designs:
            mine = [r for r in self.rows if r["mode"] == design]
            for category in [*dict.fromkeys(r["category"] for r in mine), "overall"]:
                sel = mine if category == "overall" else [r for r in mine if r["category"] == category]
                right = sum(r["valid"] for r in sel)
                low, high = stats.wilson_interval(right, len(sel), self.confidence)
                out.append(
                    {
                        "design": design,
                        "category": category,
                        "n": len(sel),
                        "correct": right,
                        "accuracy": right / len(sel),
                        "ci_low": low,
                        "ci_high": high,
                        "request_errors": sum(r["error_type"] == "request_error" for r in sel),
                    }
                )
        return out

    def as_dict(self) -> dict:
        return {
            "suite": f"BFCL v4 (bfcl-eval {VERSION})",
            "settings": self.settings,
            "table": self.table(),
            "rows": self.rows,
        }

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = ["design", "category", "n", "correct", "accuracy", "ci_low", "ci_high", "request_errors"]
        return header, [[t[k] for k in header] for t in self.table()]

    def to_markdown(self) -> str:
        lines = [
            f"BFCL v4 (bfcl-eval {VERSION}), {self.confidence:.0%} Wilson intervals",
            "",
            "| design | category | n | accuracy | interval | request errors |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t['design']} | {t['category']} | {t['n']} | {t['accuracy']:.0%} | {t['ci_low']:.0%} – "
            f"{t['ci_high']:.0%} | {t['request_errors']} |"
            for t in self.table()
        ]
        return "\n".join(lines)

    def to_text(self) -> str:
        lines = [
            f"BFCL v4 (bfcl-eval {VERSION}): {self.settings['per_category'] or 'all'} per category, seed "
            f"{self.settings['seed']}; accuracy with its {self.confidence:.0%} Wilson interval",
            f"{'design':<22} {'category':<18} {'n':>5} {'accuracy':>9} {'interval':>15} {'req. errors':>12}",
        ]
        lines += [
            f"{t['design']:<22} {t['category']:<18} {t['n']:>5} {t['accuracy']:>9.0%} "
            f"{t['ci_low']:>6.0%} – {t['ci_high']:<6.0%} {t['request_errors']:>12}"
            for t in self.table()
        ]
        return "\n".join(lines)


def evaluate(
    client,
    categories=None,
    per_category: int | None = None,
    designs=(("native", False), ("constrained", False), ("two-stage", False)),
    seed: int = 0,
    concurrency: int = 4,
    on_row=None,
    store: Path | None = None,
    thinking: tuple[bool | None, ...] = (None,),
) -> BfclReport:
    """Every sampled entry through every design, scored by BFCL's checker. Each scored entry is kept as soon as
    it is done (in `store`, by default under the cache keyed by the served model and the code), so a run that is
    stopped goes on where it stopped (the workbench's result store, one scored entry per design and entry);
    `on_row(done, total, row)` hears each one. A caller that knows more about
    what is served (`workbench compare`: the checkpoint's content) passes its own `store`. `thinking` holds the
    settings each design runs with ((True, False): thinking on against off); every pair is checked against the
    server before the first request."""
    categories = check_categories(categories)  # bad input first: no request is needed to refuse it
    for mode, _ in designs:
        for think in thinking:
            agent.check_server(client, mode, think)
    entries = sample(categories, per_category, seed)
    card = client.model_card()
    folder = Path(store) if store is not None else settings.cache_dir() / "bfcl" / "runs" / _key(card)
    scored = Store(folder)
    tasks = [(entry, mode, few_shot, think) for mode, few_shot in designs for think in thinking for entry in entries]
    rows, count = {}, 0

    def one(task):
        entry, mode, few_shot, think = task
        key = (agent_design(mode, few_shot, think), entry.id)
        name = ".".join(key)
        row = scored.get(name)
        if row is None:
            row = _run_one(client, entry, mode, few_shot, folder / "audit", think)
            scored.put(name, row)  # kept the moment it is scored
        return key, row

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for key, row in pool.map(one, tasks):
            rows[key] = row
            count += 1
            if on_row:
                on_row(count, len(tasks), row)
    ordered = [rows[(agent_design(m, f, t), e.id)] for m, f in designs for t in thinking for e in entries]
    return BfclReport(
        ordered,
        {
            "categories": list(categories or CATEGORIES),
            "per_category": per_category,
            "seed": seed,
            "designs": [agent_design(m, f, t) for m, f in designs for t in thinking],
            "model": card["id"],
            "version": VERSION,
        },
    )


def _key(card: dict) -> str:
    """The served model, the suite and the code that asks and scores: a change to any of them starts afresh."""
    code = b"".join(
        Path(m.__file__).read_bytes()
        for m in (agent, tools, sys.modules["workbench.serving.client"], sys.modules[__name__])
    )
    identity = json.dumps(
        {"model": card["id"], "root": card.get("root"), "suite": VERSION, "code": hashlib.sha256(code).hexdigest()},
        sort_keys=True,
    )
    return f"{card['id']}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
