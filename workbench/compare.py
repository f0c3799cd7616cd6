"""compare.py answers the seed's question in one run: is this quantized model, on this GPU, with these flags,
good enough for my tasks?

Candidates are checkpoints (served here by vLLM in turn, one engine at a time, each with its own serve flags) or
URLs of running OpenAI-compatible servers; the first is the baseline. Every candidate runs the same tasks on the
same items with the same seed (held-out perplexity, the project's tool calls, BFCL, document QA, an A/B config's
dataset, facts planted over depth × length: context/), then the benchmark workload; where a target GPU is given
the planner sizes each one on it. The verdicts are `verdict.py`'s and the report is `compare_report.py`'s.

Nothing lost, nothing repeated: each (candidate, task) result is written to the store the moment it is finished,
under a key made of what it depends on (the checkpoint's content hash and serve flags, or the server's identity;
the task, its items and its settings), so a run that is killed goes on where it stopped, and a changed setting
recomputes only the results it touches. A candidate whose engine fails is reported, and the others go on.

    request = CompareRequest(candidates=(parse_candidate("smollm2-135m-instruct"), parse_candidate("ckpt/gptq")),
                             tasks=("ppl", "tools"), gpu="RTX 3090")
    report = run(request)
    report.save_report("report/")
"""

import hashlib
import json
import math
import random
import re
import shlex
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench import (
    abconfig,
    abtest,
    bench,
    bfcl,
    context,
    demo_tools,
    docqa_dataset,
    gpu_lease,
    hardware,
    hub,
    models,
    planner,
    quality,
    settings,
    toolseval,
    vllm_flags,
)
from workbench.client import THINKING_SWITCH, Client, ServerParsers
from workbench.compare_report import CompareReport
from workbench.engine import Engine, EngineConfig, detect_device, error_line
from workbench.errors import ConfigError, EngineStartupError, WorkbenchError
from workbench.quantize import MANIFEST
from workbench.report import accuracy as report_accuracy
from workbench.store import Store

# task → (what it measures, the kind of its items: verdict.KINDS)
TASKS = {
    "ppl": ("perplexity on held-out text (the end of Python's docs), per chunk", "ppl"),
    "tools": ("the project's 44 tool-calling cases, English and Chinese (tools-eval)", "pass"),
    "bfcl": ("BFCL v4's single-turn entries, scored by BFCL's own AST checker", "pass"),
    "docqa": ("the fields of generated contracts (docqa-eval): right value or not", "pass"),
    "ab": ("an A/B config's dataset and assertions, one of its variants", "score"),
    "context": ("facts planted over depth × length in generated contracts (workbench context): found or not", "pass"),
    "report": (
        "the daily report on the demo database's labelled days: the share of the prose's figures that are facts",
        "score",
    ),
}
DEFAULT_TASKS = ("ppl", "tools")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
_SKIPPED = {MANIFEST}  # the workbench's note beside a checkpoint (and dot files): not what vLLM loads


@dataclass(frozen=True)
class Candidate:
    """A checkpoint (a folder, or the bundled model's name) served with `flags`, or a running server's URL.
    `thinking` (the option `,thinking=on|off`) is the client's choice for every request (None: each task's default,
    client.THINKING_DEFAULTS), so that one server can be scored with thinking on against off. `revision` (the option
    `,revision=R`) is a Hugging Face id's branch, tag or commit (EngineConfig.revision)."""

    name: str
    target: str
    flags: tuple[str, ...] = ()
    thinking: bool | None = None
    revision: str | None = None

    @property
    def is_url(self) -> bool:
        return self.target.startswith(("http://", "https://"))

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "target": self.target,
            "flags": list(self.flags),
            "url": self.is_url,
            "thinking": self.thinking,
            "revision": self.revision,
        }


_OPTIONS = "thinking=on, thinking=off, revision=BRANCH-TAG-OR-COMMIT (of a Hugging Face id)"


def parse_candidate(text: str) -> Candidate:
    """'[NAME=]CHECKPOINT-OR-URL[,thinking=on|off][,revision=R] [vLLM serve flags]': `int4=ckpt/gptq --max-num-seqs
    8`, `http://host:8000`, `think=http://host:8000,thinking=on`, `awq=Qwen/Qwen3-14B-AWQ,revision=main`."""
    try:
        parts = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(
            f"candidate {text!r} does not parse as a command line ({exc}). Fix: close the quotes."
        ) from None
    if not parts:
        raise ConfigError(
            "a candidate is empty. Valid: a checkpoint folder, the bundled model's name "
            f"({models.BUNDLED_MODEL}) or an http(s) URL, optionally NAME= before it."
        )
    head, flags = parts[0], tuple(parts[1:])
    name, sep, target = head.partition("=")
    if not sep or not _NAME.match(name):
        name, target = "", head
    target, *options = target.split(",")
    thinking = revision = None
    for option in options:
        key, _, value = option.partition("=")
        if key == "thinking" and value in ("on", "off"):
            thinking = THINKING_SWITCH[value]
        elif key == "revision" and value:
            revision = value
        else:
            raise ConfigError(
                f"candidate option {option!r} is unknown. Valid: {_OPTIONS}. Fix: e.g. --candidate "
                "'think=http://127.0.0.1:8000,thinking=on' or 'awq=Qwen/Qwen3-14B-AWQ,revision=main'."
            )
    if revision and target.startswith(("http://", "https://")):
        raise ConfigError(
            f"candidate option revision={revision} applies to a Hugging Face id; {target} is a running "
            "server, which serves what it was started with. Fix: drop the revision, or give the id."
        )
    if not name:
        name = (
            target.split("://", 1)[1].split("/", 1)[0]
            if target.startswith(("http://", "https://"))
            else models.served_name(target)
            if target == models.BUNDLED_MODEL
            else Path(target).name or target
        )
    return Candidate(name, target, flags, thinking, revision)


@dataclass(frozen=True)
class TaskSettings:
    """What decides each task's items: `items` caps every task (None: its whole default set)."""

    items: int | None = None
    seed: int = 0
    ppl_chars: int = 12_000
    chunk_chars: int = 500
    tools_design: str = "native"
    bfcl_categories: tuple[str, ...] = ()
    bfcl_per_category: int = 5
    docqa_count: int = 3
    ab_config: str | None = None
    ab_variant: str | None = None
    context_lengths: tuple[int, ...] = (1024, 2048, 4096)
    context_depths: tuple[float, ...] = (0.0, 50.0, 100.0)
    context_facts: int = 2

    def of(self, task: str) -> dict:
        """The settings that touch `task`: a change to any other leaves its stored results valid."""
        own = {
            "ppl": ("ppl_chars", "chunk_chars"),
            "tools": ("tools_design",),
            "bfcl": ("tools_design", "bfcl_categories", "bfcl_per_category", "seed"),
            "docqa": ("docqa_count",),
            "ab": ("ab_config", "ab_variant"),
            "context": ("context_lengths", "context_depths", "context_facts", "seed"),
            "report": (),
        }[task]
        return {"items": self.items, **{k: getattr(self, k) for k in own}}


@dataclass(frozen=True)
class CompareRequest:
    candidates: tuple[Candidate, ...]
    tasks: tuple[str, ...] = DEFAULT_TASKS
    settings: TaskSettings = field(default_factory=TaskSettings)
    workload: bench.Workload | None = field(default_factory=lambda: bench.Workload(num_prompts=8, output_len=32))
    concurrency: tuple[int, ...] = (1,)
    rate: float | None = None
    repeats: int = 2
    slo: bench.SLO = field(default_factory=bench.SLO)
    gpu: str | None = None
    gpu_total_gib: float | None = None
    plan_context: int = 32_768  # the context the memory plan asks at
    max_model_len: int = 4096  # what a checkpoint is served with unless its flags say otherwise
    store: str | None = None
    confidence: float = 0.95

    def summary(self) -> dict:
        d = asdict(self)
        d["candidates"] = [c.as_dict() for c in self.candidates]
        return d


def parse_tasks(text: str) -> tuple[str, ...]:
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ConfigError(
            f"unknown task {', '.join(map(repr, unknown)) or repr(text)}. Valid: {', '.join(TASKS)} "
            "(comma-separated, e.g. --tasks ppl,tools,docqa)."
        )
    return tuple(dict.fromkeys(tasks))


def parse_workload(text: str) -> tuple[tuple[int, ...], float | None] | None:
    """'c=1,2' (concurrency levels), 'rate=2' (requests per second, Poisson) or 'none' (no benchmark)."""
    text = text.strip().lower()
    if text in ("none", "off", ""):
        return None
    kind, sep, value = text.partition("=")
    try:
        if sep and kind in ("c", "concurrency"):
            levels = tuple(int(v) for v in value.split(",") if v.strip())
            if levels and all(v >= 1 for v in levels):
                return levels, None
        if sep and kind == "rate" and float(value) > 0:
            return (), float(value)
    except ValueError:
        pass
    raise ConfigError(
        f"workload {text!r} is not one of: c=LEVELS (e.g. c=1,2), rate=REQUESTS_PER_S (e.g. rate=2), "
        "none. Fix: write it in one of those forms."
    )


# -- checks before any work ----------------------------------------------------------------------------
def check(request: CompareRequest) -> None:
    """Every refusal that does not need a result: raised before the first engine starts."""
    cands = request.candidates
    if len(cands) < 2:
        raise ConfigError(
            f"compare needs at least two candidates (the first is the baseline); got {len(cands)}. "
            "Fix: add another --candidate, e.g. the bf16 model and its GPTQ checkpoint."
        )
    names = [c.name for c in cands]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ConfigError(
            f"candidate name(s) {', '.join(twice)} appear twice. Fix: name them, e.g. --candidate int4=ckpt/gptq."
        )
    parse_tasks(",".join(request.tasks))
    if "ab" in request.tasks and not request.settings.ab_config:
        raise ConfigError(
            "task ab needs an A/B config. Fix: add --ab-config FILE (e.g. "
            f"{abconfig.EXAMPLE_NAME}), or drop ab from --tasks."
        )
    if "ab" in request.tasks:
        abconfig.load_config(request.settings.ab_config)
    if "bfcl" in request.tasks:
        bfcl.check_categories(request.settings.bfcl_categories)
    if request.settings.items is not None and request.settings.items < 1:
        raise ConfigError(f"--items {request.settings.items} must be at least 1.")
    if request.settings.tools_design not in toolseval.DESIGN_NAMES:
        raise ConfigError(
            f"tools design {request.settings.tools_design!r} is unknown. Valid: {', '.join(toolseval.DESIGN_NAMES)}."
        )
    if request.repeats < 1:
        raise ConfigError(f"--repeats {request.repeats} must be at least 1.")
    if request.gpu is not None:
        hardware.find_gpu(request.gpu, request.gpu_total_gib)  # an unknown card without its memory is refused
    seen = {}
    for c in cands:
        if c.is_url:
            if c.flags:
                raise ConfigError(
                    f"candidate {c.name}: serve flags ({' '.join(c.flags)}) only apply to a checkpoint "
                    "the compare serves; a running server keeps its own. Fix: drop them."
                )
            card = _reach(c)
            who = (card["id"], card["root"], Client(c.target).base_url, c.thinking)
            if who in seen:
                raise ConfigError(
                    f"candidates {seen[who]} and {c.name} are the same server ({c.target}). Fix: "
                    "give each candidate its own server or checkpoint."
                )
            seen[who] = c.name
        else:
            _checkpoint(c, fetch=False)
            vllm_flags.parse_args(c.flags)


def _reach(c: Candidate) -> dict:
    try:
        return Client(c.target, timeout_s=10).model_card()
    except WorkbenchError as exc:
        raise ConfigError(
            f"candidate {c.name}: {c.target} does not answer as an OpenAI-compatible server "
            f"({str(exc).splitlines()[0]}). Fix: start it (`workbench serve` prints its URL), or "
            "check the host and port."
        ) from None


def _checkpoint(c: Candidate, emit=None, fetch: bool = True) -> Path | None:
    """The candidate's folder, a Hub id's weights downloaded first (`emit` hears the download's progress as the
    engine step's). `fetch=False` only checks: a Hub id's metadata is read and nothing is downloaded (None)."""
    if (
        c.target != models.BUNDLED_MODEL
        and not (Path(c.target).expanduser() / "config.json").is_file()
        and models.hub_id(c.target) is None
    ):
        raise ConfigError(
            f"candidate {c.name}: {c.target!r} is not a checkpoint (no config.json there). Valid: a "
            f"folder with config.json and *.safetensors (`workbench quantize --out` writes one), the "
            f"bundled model's name ({models.BUNDLED_MODEL}), a Hugging Face id (Qwen/Qwen3-14B-FP8, "
            "downloaded first), or an http(s) URL of a running server."
        )
    if not fetch and models.hub_id(c.target) is not None and not Path(c.target).expanduser().exists():
        models.find_model(c.target, c.revision)  # the Hub's own answer for a missing or gated repo (or revision)
        return None
    with hub.watching(lambda d: emit("engine", "downloading", str(d)) if emit else None):
        return models.resolve_model(c.target, c.revision)


# -- identity and the store ----------------------------------------------------------------------------
def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def content_hash(folder: Path, cache: dict) -> str:
    """sha256 over the files vLLM loads (their names and bytes); `cache` remembers files by size and mtime."""
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name in _SKIPPED or path.name.startswith("."):
            continue
        stat = path.stat()
        memo = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if memo not in cache:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            cache[memo] = h.hexdigest()
        parts.append((str(path.relative_to(folder)), cache[memo]))
    return _digest(parts)


def engine_config(c: Candidate, request: CompareRequest) -> EngineConfig:
    """How a checkpoint candidate is served: the tool parser always on (so that adding a tool task does not change
    what was served), the request's context, then the candidate's own flags."""
    return EngineConfig(
        **{
            "model": c.target,
            "revision": c.revision,
            "max_model_len": request.max_model_len,
            "enable_tools": True,
            "startup_timeout_s": 900.0,
            **vllm_flags.parse_args(c.flags),
        }
    )


def identity(c: Candidate, request: CompareRequest, hashes: dict, emit=None) -> dict:
    """What a candidate's results depend on. A checkpoint: its content and how it is served (and by which vLLM).
    A URL: what the server says it serves."""
    if c.is_url:
        client = Client(c.target)
        card = client.model_card()
        return {
            "kind": "url",
            "url": client.base_url,
            "model": card["id"],
            "root": card["root"],
            "max_model_len": card["max_model_len"],
            "vllm": client.server_version(),
            **_thinking(c),
        }
    folder = _checkpoint(c, emit)
    served = {
        k: v
        for k, v in asdict(engine_config(c, request)).items()
        if k not in ("model", "port", "host", "startup_timeout_s")
    }
    build = hardware.vllm_build() or "vllm"
    return {
        "kind": "checkpoint",
        "content": content_hash(folder, hashes),
        "serve": served,
        "vllm": f"{build} {hardware.package_version(build)}",
        **_thinking(c),
    }


def _thinking(c: Candidate) -> dict:
    """The thinking option, where set (left out otherwise, so that results kept before it existed stay valid)."""
    return {} if c.thinking is None else {"thinking": c.thinking}


# -- the tasks -------------------------------------------------------------------------------------------
def _cap(items: list, limit: int | None) -> list:
    return items if limit is None else items[:limit]


def tool_cases(s: TaskSettings) -> list:
    """The project's cases; capped, a stratified draw (round-robin over the categories, seeded)."""
    if s.items is None or s.items >= len(toolseval.CASES):
        return list(toolseval.CASES)
    rng = random.Random(s.seed)
    pools = {
        c: rng.sample([x for x in toolseval.CASES if x.category == c], sum(x.category == c for x in toolseval.CASES))
        for c in toolseval.CATEGORIES
    }
    picked = []
    while len(picked) < s.items:
        for category in toolseval.CATEGORIES:
            if pools[category] and len(picked) < s.items:
                picked.append(pools[category].pop())
    return sorted(picked, key=toolseval.CASES.index)


def _bfcl_per_category(s: TaskSettings) -> int:
    categories = s.bfcl_categories or tuple(bfcl.CATEGORIES)
    return s.bfcl_per_category if s.items is None else max(1, min(s.bfcl_per_category, s.items // len(categories)))


def items_digest(task: str, s: TaskSettings) -> str:
    """The items a task asks about, as a digest: the same items give the same digest on any machine."""
    if task == "ppl":
        return _digest([quality.eval_text(s.ppl_chars), s.chunk_chars, s.items])
    if task == "tools":
        return _digest([(c.category, c.message, c.expected) for c in tool_cases(s)])
    if task == "bfcl":
        return _digest([e.id for e in bfcl.sample(s.bfcl_categories or None, _bfcl_per_category(s), s.seed)])
    if task == "docqa":
        return _digest([s.docqa_count, s.items, "docqa_dataset seed 7"])
    if task == "context":
        return _digest([s.context_lengths, s.context_depths, s.context_facts, s.seed, s.items, context.grid.VERSION])
    if task == "report":
        return _digest([report_accuracy.labelled_days(), s.items, report_accuracy.MEASURES])
    config = abconfig.load_config(s.ab_config)
    return _digest([config.model_dump(mode="json"), [(i.id, i.vars) for i in abconfig.load_items(config)], s.items])


def run_task(task: str, client: Client, s: TaskSettings, workdir: Path, shared: Path) -> dict:
    """One task on one served candidate: {"kind", "items": [...], "summary": {...}}. `workdir` is this result's
    own (audit logs, BFCL's per-entry store), `shared` holds what every candidate reads (the contract set)."""
    if task == "ppl":
        text = quality.eval_text(s.ppl_chars)
        chunks = _cap([text[i : i + s.chunk_chars] for i in range(0, len(text), s.chunk_chars)], s.items)
        items = []
        for k, chunk in enumerate(chunks):
            logprobs = [lp for lp in client.prompt_logprobs(chunk) if lp is not None]
            items.append({"id": f"chunk-{k}", "nll": -sum(logprobs), "tokens": len(logprobs)})
        total, tokens = sum(i["nll"] for i in items), sum(i["tokens"] for i in items)
        return {"kind": "ppl", "items": items, "summary": {"ppl": math.exp(total / tokens), "tokens": tokens}}
    if task == "tools":
        mode, few_shot = toolseval.parse_design(s.tools_design)
        cases = tool_cases(s)
        policy = demo_tools.policy(workdir / "tools-data", workdir / "tools-audit.jsonl")
        result = toolseval.evaluate(client, policy, mode, few_shot, cases)
        items = [
            {
                "id": f"case-{toolseval.CASES.index(case)}",
                "score": float(row["exact"]),
                "category": row["category"],
                "message": row["message"],
                "proposed": row["proposed"],
            }
            for case, row in zip(cases, result["rows"])
        ]
        return {
            "kind": "pass",
            "items": items,
            "summary": {"exact": result["overall"]["exact"], "design": result["design"]},
        }
    if task == "bfcl":
        report = bfcl.evaluate(
            client,
            s.bfcl_categories or None,
            _bfcl_per_category(s),
            [toolseval.parse_design(s.tools_design)],
            s.seed,
            store=workdir / "bfcl",
        )
        items = _cap(
            [{"id": r["id"], "score": float(r["valid"]), "category": r["category"]} for r in report.rows], s.items
        )
        return {
            "kind": "pass",
            "items": items,
            "summary": {"accuracy": sum(i["score"] for i in items) / len(items) if items else None},
        }
    if task == "docqa":
        report = docqa_dataset.evaluate(
            client, shared / f"docqa-set-{s.docqa_count}", limit=s.docqa_count, count=s.docqa_count
        )
        items = _cap(
            [
                {"id": f"{r['document']}:{r['field']}", "score": float(r["value_correct"]), "verified": r["verified"]}
                for r in report["rows"]
            ],
            s.items,
        )
        return {"kind": "pass", "items": items, "summary": report["summary"].get("all", {})}
    if task == "context":
        report = context.run(
            context.ContextRequest(
                lengths=s.context_lengths,
                depths=s.context_depths,
                facts_per_cell=s.context_facts,
                seed=s.seed,
                thinking=(None,),
                store=str(workdir / "cells"),
            ),
            client,
        )
        m = report.maps[0]
        return {
            "kind": "pass",
            "items": _cap(report.items(None), s.items),
            "summary": {
                "recall": m["per_length"][-1]["recall"] if m["per_length"] else None,
                "longest_reliable": (m["longest"] or {}).get("length"),
                "headline": m["headline"],
                "per_length": m["per_length"],
                "grid": m["grid"],
                "memory": m["memory"],
            },
        }
    if task == "report":
        result = report_accuracy.evaluate(client, shared / "report", limit=s.items)
        items = [
            {"id": r["day"], "score": r["fact_share"] or 0.0, "kind": r["kind"], "figures": r["figures"]}
            for r in result["rows"]
        ]
        return {"kind": "score", "items": items, "summary": result["summary"]}
    config = abconfig.load_config(s.ab_config)
    if s.items is not None:
        config = abconfig.with_changes(config, limit=s.items)
    items = abtest.variant_scores(config, s.ab_variant, client.base_url)
    return {
        "kind": "score",
        "items": items,
        "summary": {"pass_rate": sum(i["score"] for i in items) / len(items), "config": config.name},
    }


# -- memory on the target GPU ---------------------------------------------------------------------------
def plan_memory(c: Candidate, ident: dict, request: CompareRequest) -> dict:
    """The candidate sized on the target GPU at the asked context, with its own serve flags."""
    if c.is_url:
        root = ident.get("root")
        model = root if root and (Path(root) / "config.json").is_file() else ident.get("model")
        flags = {}
    else:
        model, flags = str(_checkpoint(c)), vllm_flags.parse_args(c.flags)
    try:  # a model the planner cannot read (not here, not in the catalog, the Hub out of reach) is said, not fatal
        spec = models.find_model(model)
    except WorkbenchError as exc:
        return {"planned": False, "reason": f"{model} cannot be planned: {str(exc).splitlines()[0]}"}
    quant = spec.declared_format or "bf16"  # the checkpoint's own quantization_config, read by models
    settings_ = planner.ServeSettings(
        max_model_len=request.plan_context,
        **{
            k: v
            for k, v in flags.items()
            if k
            in (
                "kv_cache_dtype",
                "gpu_memory_utilization",
                "max_num_seqs",
                "max_num_batched_tokens",
                "tensor_parallel_size",
            )
        },
    )
    answer = planner.plan(
        planner.PlanRequest(
            model=model, gpu=request.gpu, gpu_total_gib=request.gpu_total_gib, quant=quant, settings=settings_
        )
    )
    p = answer.plan
    return {
        "planned": True,
        "gpu": answer.gpu.name,
        "total_gib": answer.gpu.total_gib,
        "quant": quant,
        "context": request.plan_context,
        "fits": p.fits,
        "reason": p.reason,
        "weights_gib": p.gib(p.weights_bytes),
        "kv_cache_gib": p.gib(p.kv_cache_bytes),
        "kv_cache_tokens": p.kv_cache_tokens,
        "max_concurrency": round(p.max_concurrency, 2),
        "requested_gib": p.gib(p.requested_bytes),
        "activation_gib": p.gib(p.activation_bytes),
        "overheads_gib": p.gib(p.non_torch_bytes + p.cuda_graph_bytes),
        "command": p.flags.command(),
    }


# -- the run --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """What the run is doing: `step` is a task, "engine", "bench" or "memory"; `state` starting, done, reused,
    failed. `index` of `total` candidates."""

    candidate: str
    step: str
    state: str
    index: int
    total: int
    detail: str = ""

    def __str__(self) -> str:
        return f"[{self.index + 1}/{self.total}] {self.candidate} · {self.step}: {self.state}" + (
            f" ({self.detail})" if self.detail else ""
        )


def _steps(request: CompareRequest) -> list[str]:
    return list(request.tasks) + (["bench"] if request.workload is not None else [])


def step_key(ident: dict, step: str, request: CompareRequest) -> str:
    if step == "bench":
        what = {
            "workload": asdict(request.workload),
            "concurrency": request.concurrency,
            "rate": request.rate,
            "repeats": request.repeats,
            "slo": asdict(request.slo),
        }
    else:
        what = {"settings": request.settings.of(step), "items": items_digest(step, request.settings)}
    return f"{step}-{_digest({'candidate': ident, 'step': step, **what})[:24]}"


@contextmanager
def _served(c: Candidate, request: CompareRequest, store: Store, emit):
    """A client of the candidate: its server, or an engine started for it here (stopped on the way out)."""
    if c.is_url:
        yield Client(c.target, thinking=c.thinking), None
        return
    emit("engine", "starting", " ".join([c.target, *c.flags]))
    engine = Engine(engine_config(c, request), log_path=store.folder / "logs" / f"{c.name}.log")
    try:
        engine.start()
        store.note_engine(engine.process.pid)
        emit("engine", "done", engine.base_url)
        yield Client(engine.base_url, thinking=c.thinking, parsers=ServerParsers.from_argv(engine.argv)), engine
    finally:
        engine.stop()
        store.note_engine(None)


def _bench(client: Client, request: CompareRequest) -> dict:
    report = bench.run(
        client.server_url,
        request.workload,
        concurrency=list(request.concurrency) or None,
        rate=request.rate,
        slo=request.slo,
        repeats=request.repeats,
        warmup=1,
    )
    return {"kind": "bench", "report": dict(report)}


def _candidate(
    c: Candidate, index: int, request: CompareRequest, store: Store, hashes: dict, run_id: str, on_event
) -> dict:
    def emit(step, state, detail=""):
        if on_event:
            on_event(Event(c.name, step, state, index, len(request.candidates), detail))

    outcome = {
        "candidate": c.as_dict(),
        "identity": None,
        "results": {},
        "keys": {},
        "reused": [],
        "computed": [],
        "errors": {},
        "error": None,
        "log": None,
    }
    try:
        ident = identity(c, request, hashes, emit)
    except WorkbenchError as exc:
        outcome["error"] = f"could not identify it: {str(exc).splitlines()[0]}"
        emit("engine", "failed", outcome["error"])
        return outcome
    outcome["identity"] = ident
    missing = []
    for step in _steps(request):
        key = step_key(ident, step, request)
        outcome["keys"][step] = key
        stored = store.get(key)
        if stored is not None:
            outcome["results"][step] = stored
            outcome["reused"].append(step)
            emit(step, "reused", f"stored {stored.get('finished', '')}")
        else:
            missing.append((step, key))
    if not missing:
        return outcome
    try:
        with _served(c, request, store, emit) as (client, engine):
            outcome["log"] = str(engine.log_path) if engine else None
            for step, key in missing:
                emit(step, "starting")
                started = time.perf_counter()
                try:
                    value = (
                        _bench(client, request)
                        if step == "bench"
                        else run_task(
                            step, client, request.settings, store.folder / "work" / key, store.folder / "shared"
                        )
                    )
                except WorkbenchError as exc:
                    if engine is not None and not engine.running:
                        raise EngineStartupError(
                            f"the engine stopped during {step}: {str(exc).splitlines()[0]}",
                            log_tail=engine.log_tail(),
                            log_path=str(engine.log_path),
                        ) from None
                    outcome["errors"][step] = str(exc).splitlines()[0]
                    emit(step, "failed", outcome["errors"][step])
                    continue
                value.update(
                    step=step,
                    candidate=c.name,
                    run=run_id,
                    seconds=round(time.perf_counter() - started, 1),
                    finished=time.strftime("%Y-%m-%d %H:%M:%S"),
                )
                store.put(key, value)
                outcome["results"][step] = value
                outcome["computed"].append(step)
                emit(step, "done", f"{value['seconds']:.0f} s")
    except EngineStartupError as exc:
        said = error_line(getattr(exc, "log_tail", "") or "")
        outcome["log"] = getattr(exc, "log_path", None) or outcome["log"]
        outcome["error"] = (
            str(exc).splitlines()[0]
            + (f" vLLM said: {said}" if said else "")
            + (f" (log: {outcome['log']})" if outcome["log"] else "")
            + (BASELINE_FIX if index == 0 else "")
        )
        emit("engine", "failed", outcome["error"])
    return outcome


# Every verdict is against the baseline, so a baseline that cannot start leaves no verdict at all: say how to go on.
BASELINE_FIX = (
    " The baseline decides every verdict. Fix: pick a baseline that fits this device (on a 24 GB card, "
    "Qwen's own Qwen/Qwen3-14B-FP8 or Qwen/Qwen3-14B-AWQ instead of bf16; `workbench plan --quant fp8` "
    "says whether it fits), or compare against a baseline served elsewhere by URL "
    "(--candidate bf16=http://big-box:8000)."
)


def run(request: CompareRequest, on_event=None) -> CompareReport:
    """Every candidate in turn: its stored results, the missing ones computed (its engine started only when one is
    missing), then its memory plan. `on_event(Event)` hears each step."""
    check(request)
    store = Store(request.store or settings.cache_dir() / "compare")
    reaped = store.reap()
    if reaped and on_event:
        on_event(Event("-", "engine", "cleaned", 0, len(request.candidates), reaped))
    hashes_path = store.folder / "hashes.json"
    try:
        hashes = json.loads(hashes_path.read_text())
    except (OSError, ValueError):
        hashes = {}
    run_id = uuid.uuid4().hex[:12]
    started = time.perf_counter()
    outcomes = {}
    cands = request.candidates
    order = range(len(cands))
    if gpu_lease.one_engine(detect_device()):  # one engine per device: running servers first (the app's engine
        order = sorted(order, key=lambda i: not cands[i].is_url)  # among them), before any is set aside

    def said(text):
        if on_event:
            on_event(
                Event("-", "engine", "set aside" if "setting aside" in text else "brought back", 0, len(cands), text)
            )

    with gpu_lease.borrowing("the compare run ends", said):
        for index in order:
            c = cands[index]
            outcome = _candidate(c, index, request, store, hashes, run_id, on_event)
            hashes_path.write_text(json.dumps(hashes))
            if request.gpu is not None and outcome["identity"] is not None:
                outcome["memory"] = plan_memory(c, outcome["identity"], request)
            outcomes[index] = outcome
    outcomes = [outcomes[i] for i in range(len(cands))]
    return CompareReport(
        request.summary(), outcomes, run_id=run_id, seconds=time.perf_counter() - started, store=str(store.folder)
    )
