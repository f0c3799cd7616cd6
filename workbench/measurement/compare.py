"""compare.py answers the seed's question in one run: is this quantized model, on this GPU, with these flags,
good enough for my tasks?

Candidates are checkpoints (served here by vLLM in turn, one engine at a time, each with its own serve flags) or
URLs of running OpenAI-compatible servers; the first is the baseline. Every candidate runs the same tasks on the
same items with the same seed (held-out perplexity, the project's tool calls, BFCL, document QA, an A/B config's
dataset, facts planted over depth × length: context/), then the benchmark workload; where a target GPU is given
the planner sizes each one on it. What a comparison is asked is `compare_request.py`'s, the tasks are
`compare_tasks.py`'s, the verdicts `verdict.py`'s and the report `compare_report.py`'s.

Nothing lost, nothing repeated: each (candidate, task) result is written to the store the moment it is finished,
under a key made of what it depends on (the checkpoint's content hash and serve flags, or the server's identity;
the task, its items and its settings), so a run that is killed goes on where it stopped, and a changed setting
recomputes only the results it touches. A candidate whose engine fails is reported, and the others go on.

    from workbench.measurement.compare_request import CompareRequest, parse_candidate
    request = CompareRequest(candidates=(parse_candidate("smollm2-135m-instruct"), parse_candidate("ckpt/gptq")),
                             tasks=("ppl", "tools"), gpu="RTX 3090")
    report = run(request)
    report.save_report("report/")
"""

import hashlib
import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench import planner, settings
from workbench.errors import EngineStartupError, WorkbenchError
from workbench.measurement import bench
from workbench.measurement.compare_report import CompareReport
from workbench.measurement.compare_request import Candidate, CompareRequest, check, checkpoint_folder
from workbench.measurement.compare_tasks import items_digest, run_task
from workbench.quantization.quantize import MANIFEST
from workbench.serving import gpu_lease, hardware, models, processes, vllm_flags
from workbench.serving.client import Client, ServerParsers
from workbench.serving.engine import Engine, EngineConfig, detect_device, error_line
from workbench.store import Store

_SKIPPED = {MANIFEST}  # the workbench's note beside a checkpoint (and dot files): not what vLLM loads


# -- identity ------------------------------------------------------------------------------------------
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
    return Store.key(parts)


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
    folder = checkpoint_folder(c, emit)
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


# -- memory on the target GPU ---------------------------------------------------------------------------
def plan_memory(c: Candidate, ident: dict, request: CompareRequest) -> dict:
    """The candidate sized on the target GPU at the asked context, with its own serve flags."""
    if c.is_url:
        root = ident.get("root")
        model = root if root and (Path(root) / "config.json").is_file() else ident.get("model")
        flags = {}
    else:
        model, flags = str(checkpoint_folder(c)), vllm_flags.parse_args(c.flags)
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
    return f"{step}-{Store.key({'candidate': ident, 'step': step, **what})[:24]}"


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
        processes.note_engine(store.folder, engine.process.pid)
        emit("engine", "done", engine.base_url)
        yield Client(engine.base_url, thinking=c.thinking, parsers=ServerParsers.from_argv(engine.argv)), engine
    finally:
        engine.stop()
        processes.note_engine(store.folder, None)


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
    "Qwen's own Qwen/Qwen3-14B-AWQ, or Qwen/Qwen3-14B-FP8 with --max-model-len 16384, instead of bf16; "
    "`workbench plan --quant fp8` says whether and at which length it fits), or compare against a baseline served "
    "elsewhere by URL (--candidate bf16=http://big-box:8000)."
)


def run(request: CompareRequest, on_event=None) -> CompareReport:
    """Every candidate in turn: its stored results, the missing ones computed (its engine started only when one is
    missing), then its memory plan. `on_event(Event)` hears each step."""
    check(request)
    store = Store(request.store or settings.cache_dir() / "compare")
    reaped = processes.reap(store.folder)
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
