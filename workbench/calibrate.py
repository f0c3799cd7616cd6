"""Calibrate the planner from one vLLM start-up log of the user's own machine.

The planner's fixed overheads (non-torch memory, the V1 workspace, CUDA graphs) were fitted on public
logs of other machines and versions. A log from this machine measures them: vLLM printed how much memory
it could use, what the weights took and what was left for the KV cache, so everything the planner does
not compute from the architecture falls out as one residual term. The activations are still computed,
so a plan for another max_model_len, batch budget, model or quantization moves them as vLLM would.

On the CPU build there is nothing to fit (the KV cache is VLLM_CPU_KVCACHE_SPACE, set by the user); the
log checks the KV bytes per token and the block rounding instead, and the plan sizes another space.
"""

import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from workbench import memory, models, startup_log
from workbench.errors import ConfigError
from workbench.hardware import GpuSpec
from workbench.models import ModelSpec
from workbench.vllm_flags import ServeFlags

GIB = memory.GIB

# Lines that carry the memory budget, by vLLM version: (total GiB, gpu_memory_utilization).
_BUDGET = [
    r"total_gpu_memory \((?P<total>[\d.]+) ?GiB\) x gpu_memory_utilization \((?P<gmu>[\d.]+)\)",  # 0.7-0.10
    r"Free memory on device \([\d.]+/(?P<total>[\d.]+) GiB\) on startup\. Desired GPU memory utilization is "
    r"\((?P<gmu>[\d.]+)",  # 0.11 and later
    r"total_gpu_memory=(?P<total>[\d.]+) ?GiB.*?gpu_memory_utilization=(?P<gmu>[\d.]+)",  # 0.6.4
    r"total_gpu_memory\s+(?P<total>[\d.]+) ?GiB\s*\n.*?gpu_memory_utilization\s+(?P<gmu>[\d.]+)",  # 0.6.5 table
]
_SETTINGS = {
    "model": [r"LLM engine \(v?[\w.+-]+\) with config: model='([^']+)'", r"'model': '([^']+)'"],
    "gpu_memory_utilization": [r"'gpu_memory_utilization': ([\d.]+)", r"gpu_memory_utilization=([\d.]+)"],
    "tensor_parallel_size": [r"tensor_parallel_size=(\d+)", r"'tensor_parallel_size': (\d+)"],
    "kv_cache_dtype": [r"kv_cache_dtype=(\w+)", r"'kv_cache_dtype': '(\w+)'"],
    "max_num_batched_tokens": [r"max_num_batched_tokens=(\d+)", r"'max_num_batched_tokens': (\d+)"],
    "max_num_seqs": [r"'max_num_seqs': (\d+)", r"max_num_seqs=(\d+)"],
    "max_model_len": [r"Using max model len (\d+)", r"max_seq_len=(\d+)", r"'max_model_len': (\d+)"],
}


@dataclass(frozen=True)
class LogFacts:
    """What one start-up log says about the memory budget. Missing facts are None."""

    device: str  # "cpu" or "gpu"
    vllm_version: str | None
    model: str | None  # the path or repo the engine served
    weights_gib: float | None
    kv_cache_gib: float | None  # the pool (GPU) or VLLM_CPU_KVCACHE_SPACE (CPU)
    kv_cache_tokens: int | None
    max_model_len: int | None
    total_gib: float | None
    gpu_memory_utilization: float | None
    tensor_parallel_size: int
    kv_cache_dtype: str
    max_num_batched_tokens: int | None
    max_num_seqs: int | None


def read_log(text: str, source: str = "the log") -> LogFacts:
    """The facts of a vLLM start-up log, CPU or GPU build; ConfigError when it is not one."""
    report = startup_log.parse_startup_log(text)
    if report.kv_cache_gib is None and report.kv_cache_tokens is None:
        raise ConfigError(
            f"{source} is not a vLLM start-up log this parser knows: it has none of the lines \"Available KV "
            "cache memory: … GiB\", \"GPU KV cache size: … tokens\", \"# GPU blocks: …\", \"Explicitly set (…) GiB "
            "for KV cache\" (CPU build) or \"the rest of the memory reserved for KV Cache is …\". Fix: give the "
            "log of a `vllm serve` run that got as far as \"init engine\" (e.g. `vllm serve … 2>&1 | tee serve.log`).")
    found = {}
    for key, patterns in _SETTINGS.items():
        m = next((m for p in patterns if (m := re.search(p, text))), None)
        found[key] = m.group(1) if m else None
    budget = next((m for p in _BUDGET if (m := re.search(p, text))), None)
    device = report.device or "gpu"
    gmu = float(budget.group("gmu")) if budget else _float(found["gpu_memory_utilization"])
    return LogFacts(
        device=device, vllm_version=report.vllm_version, model=found["model"], weights_gib=report.weights_gib,
        kv_cache_gib=report.kv_cache_gib, kv_cache_tokens=report.kv_cache_tokens,
        max_model_len=report.max_model_len or _int(found["max_model_len"]),
        total_gib=float(budget.group("total")) if budget else None, gpu_memory_utilization=gmu,
        tensor_parallel_size=_int(found["tensor_parallel_size"]) or 1,
        kv_cache_dtype=found["kv_cache_dtype"] if (found["kv_cache_dtype"] or "").startswith("fp8") else "auto",
        max_num_batched_tokens=_int(found["max_num_batched_tokens"]), max_num_seqs=_int(found["max_num_seqs"]))


def read_log_file(path: str, source: str | None = None) -> LogFacts:
    """`source` names the file in errors (default: as the CLI flag)."""
    source = source or f"--calibrate-from {path!r}"
    try:
        text = Path(path).expanduser().read_text(errors="replace")
    except OSError as e:
        raise ConfigError(f"{source}: cannot read it ({e.strerror}). Fix: give the path of a saved `vllm serve` "
                          "log.") from None
    return read_log(text, source)


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def _float(value: str | None) -> float | None:
    return float(value) if value else None


@dataclass(frozen=True)
class Calibration:
    facts: LogFacts
    terms: dict  # what was fitted (GPU: the overhead; CPU: nothing, the KV bytes per token checked)
    residual: dict  # the calibrated planner on the log's own settings, against what the log says
    notes: tuple[str, ...]  # what the user should know: another model, facts taken from flags

    def as_dict(self) -> dict:
        return {"facts": asdict(self.facts), "fitted_terms": self.terms, "residual": self.residual,
                "notes": list(self.notes)}

    def json_fields(self) -> dict:
        """What a plan's JSON gains when it is calibrated."""
        return {"calibrated": True, "calibration": self.as_dict()}


def _log_spec(log_model: str | None) -> ModelSpec | None:
    """The served model's architecture when it can be found here: a catalog name or a folder."""
    if not log_model:
        return None
    for candidate in (log_model, Path(log_model.rstrip("/")).name):
        try:
            return models.find_model(candidate)
        except ConfigError:
            continue
    return None


def _same_model(log_model: str | None, spec: ModelSpec) -> bool:
    if not log_model:
        return True
    def key(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())
    base = key(Path(log_model.rstrip("/")).name)
    return key(spec.name) in base or base in key(spec.name)


def fit(spec: ModelSpec, facts: LogFacts, gpu: GpuSpec | None = None, settings: memory.ServeSettings | None = None,
        quant: str = "bf16") -> Calibration:
    """Fit the overhead term to the log (GPU), or check the KV arithmetic against it (CPU).
    `gpu` and `settings` supply what the log does not print (its memory, its gpu_memory_utilization)."""
    notes = []
    log_spec = _log_spec(facts.model)
    if not _same_model(facts.model, spec):
        notes.append(f"the log served {facts.model}, the plan is for {spec.name}: what the log measured about this "
                     "machine and vLLM carries over; the weights, activations and KV bytes per token are "
                     f"{spec.name}'s.")
        if log_spec is None:
            notes.append("the log's model is not in the catalog nor a folder here, so the fit uses "
                         f"{spec.name}'s architecture for the log's activations too")
    spec_at_log = log_spec or spec  # the residual and the fit are about the log's own run
    if facts.device == "cpu":
        return _fit_cpu(spec_at_log, facts, tuple(notes))
    if facts.weights_gib is None:
        raise ConfigError("the log has no \"Model loading took … GiB\" line, so the overhead cannot be separated "
                          "from the weights. Fix: give the whole start-up log, from the first line.")
    settings = settings or memory.ServeSettings()
    total = facts.total_gib
    if total is None:
        if gpu is None:
            raise ConfigError("the log does not print the GPU's memory (vLLM 0.11+ prints it in \"Free memory on "
                              "device\", 0.7-0.10 in \"total_gpu_memory\"). Fix: add --gpu NAME or --gpu-total-gib.")
        total = gpu.total_gib
        notes.append(f"GPU memory {total} GiB taken from the GPU you named (the log does not print it)")
    gmu = facts.gpu_memory_utilization
    log_settings = memory.ServeSettings(
        max_model_len=facts.max_model_len or settings.max_model_len, gpu_memory_utilization=gmu,
        kv_cache_dtype=facts.kv_cache_dtype, tensor_parallel_size=facts.tensor_parallel_size,
        max_num_batched_tokens=facts.max_num_batched_tokens, max_num_seqs=facts.max_num_seqs,
        vllm_version=facts.vllm_version or settings.vllm_version)
    if gmu is None:
        notes.append(f"gpu_memory_utilization {log_settings.effective_gmu():.2f} assumed (vLLM "
                     f"{log_settings.vllm_version}'s default; the log does not print it)")
    log_gpu = GpuSpec(gpu.name if gpu else "the log's GPU", total, 0.0, 0.0, "?")
    tokens, seqs = log_settings.batch(log_gpu)
    activation = memory.activation_bytes(spec_at_log, tokens, log_settings, seqs)
    per_token = memory.kv_bytes_per_token(spec_at_log, log_settings.kv_cache_dtype, log_settings.tensor_parallel_size)
    kv = facts.kv_cache_gib * GIB if facts.kv_cache_gib is not None else facts.kv_cache_tokens * per_token
    requested = total * log_settings.effective_gmu() * GIB
    overhead = (requested - facts.weights_gib * GIB - kv - activation) / GIB
    terms = {"overhead_gib": round(overhead, 3), "activation_gib_at_log_settings": round(activation / GIB, 3),
             "profile_batch_tokens": tokens, "max_num_seqs": seqs, "requested_gib": round(requested / GIB, 2)}
    check = memory.plan(spec_at_log, log_gpu, quant, log_settings, weights_gib=facts.weights_gib,
                        overhead_gib=memory.Range(overhead, overhead, overhead))
    residual = {"kv_cache_gib": round(check.kv_cache_bytes / GIB - kv / GIB, 3)}
    if facts.kv_cache_tokens:
        residual["kv_cache_tokens"] = check.kv_cache_tokens - facts.kv_cache_tokens
        residual["kv_cache_tokens_pct"] = round(100 * residual["kv_cache_tokens"] / facts.kv_cache_tokens, 2)
        notes += _per_token_note(spec_at_log, facts, kv, per_token)
    return Calibration(replace(facts, total_gib=total), terms, residual, tuple(notes))


def _fit_cpu(spec: ModelSpec, facts: LogFacts, notes: tuple[str, ...]) -> Calibration:
    per_token = memory.kv_bytes_per_token(spec, facts.kv_cache_dtype)
    terms = {"kv_bytes_per_token": per_token, "block_size": memory.CPU_BLOCK_SIZE,
             "kv_cache_space_gib": facts.kv_cache_gib}
    residual = {}
    if facts.kv_cache_gib is not None and facts.kv_cache_tokens:
        notes += tuple(_per_token_note(spec, facts, facts.kv_cache_gib * GIB, per_token))
        planned = memory.kv_cache_tokens(int(facts.kv_cache_gib * GIB), per_token, memory.CPU_BLOCK_SIZE)
        residual = {"kv_cache_tokens": planned - facts.kv_cache_tokens,
                    "kv_cache_tokens_pct": round(100 * (planned - facts.kv_cache_tokens) / facts.kv_cache_tokens, 2)}
    return Calibration(facts, terms, residual, notes)


def _per_token_note(spec: ModelSpec, facts: LogFacts, kv_bytes: float, per_token: int) -> list[str]:
    """The log's KV bytes per token, against the model's: a wide gap means another model or KV dtype."""
    seen = kv_bytes / facts.kv_cache_tokens
    if abs(seen - per_token) / per_token <= 0.05:
        return []
    return [f"the log stores {seen:,.0f} B of KV cache per token, {spec.name} needs {per_token:,}: the log is "
            "from another model, KV dtype or parallel layout than the one planned, so its token counts do not "
            "carry over (its memory overhead still does)"]


def gpu_plan(spec: ModelSpec, gpu: GpuSpec, quant: str, settings: memory.ServeSettings, calibration: Calibration,
             group_size: int | None = memory.DEFAULT_GROUP_SIZE, weights_gib: float | None = None) -> memory.Plan:
    """The plan for the asked-for settings with the log's overhead. The range widens with how far the
    activations move from the log's (the part still computed, not measured): 0.1 GiB plus a quarter of it.
    When the log loaded the same checkpoint (same model, and its weights within 3 % of what this format
    computes to), the plan uses the log's measured weights, re-split for this TP × PP."""
    overhead = calibration.terms["overhead_gib"]
    tokens, seqs = settings.batch(gpu)
    moved = abs(memory.activation_bytes(spec, tokens, settings, seqs) / GIB
                - calibration.terms["activation_gib_at_log_settings"])
    spread = 0.1 + 0.25 * moved
    if weights_gib is None:
        weights_gib = _measured_weights(spec, quant, group_size, settings, calibration.facts)
    return memory.plan(spec, gpu, quant, settings, group_size, weights_gib,
                       overhead_gib=memory.Range(overhead - spread, overhead, overhead + spread))


def _measured_weights(spec, quant, group_size, settings, facts: LogFacts) -> float | None:
    if facts.model is None or not facts.weights_gib or not _same_model(facts.model, spec):
        return None
    log_split = facts.tensor_parallel_size  # the log's per-GPU share
    total = facts.weights_gib * log_split
    computed = memory.weight_bytes(spec, quant, group_size) / GIB
    if abs(computed - total) / total > 0.03:
        return None  # another format than the log's (e.g. a bf16 log, a GPTQ plan): computed weights
    return total / (settings.tensor_parallel_size * settings.pipeline_parallel_size)


def as_logged(settings: memory.ServeSettings, facts: LogFacts, vllm_version: str | None) -> memory.ServeSettings:
    """The asked settings, with what was not asked taken as the log ran: its gpu_memory_utilization and vLLM
    version (`vllm_version` is the one the user gave, or None)."""
    return replace(settings, gpu_memory_utilization=settings.gpu_memory_utilization or facts.gpu_memory_utilization,
                   vllm_version=vllm_version or facts.vllm_version or memory.DEFAULT_VLLM_VERSION)


def plan_from_log(spec: ModelSpec, facts: LogFacts, gpu: GpuSpec, quant: str, settings: memory.ServeSettings,
                  group_size: int | None = memory.DEFAULT_GROUP_SIZE,
                  weights_gib: float | None = None) -> tuple[memory.Plan, Calibration]:
    """Fit to a GPU log and plan the asked settings with it."""
    cal = fit(spec, facts, gpu, settings, quant)
    return gpu_plan(spec, gpu, quant, settings, cal, group_size, weights_gib), cal


def cpu_plan_from_log(spec: ModelSpec, facts: LogFacts, max_model_len: int, kv_cache_dtype: str = "auto",
                      space_gib: float | None = None) -> dict:
    """A CPU-build log: the KV arithmetic checked against it, and the plan for `space_gib` (default: the log's)."""
    space = space_gib if space_gib is not None else facts.kv_cache_gib
    return dict(cpu_plan(spec, space, max_model_len, kv_cache_dtype), **fit(spec, facts).json_fields())


def cpu_plan(spec: ModelSpec, space_gib: float, max_model_len: int, kv_cache_dtype: str = "auto") -> dict:
    """What vLLM's CPU build will report for VLLM_CPU_KVCACHE_SPACE=space_gib."""
    if not space_gib > 0 or space_gib != int(space_gib):
        raise ConfigError(f"--kv-space-gib {space_gib:g} is not a whole, positive number of GiB (vLLM's CPU build "
                          "reads VLLM_CPU_KVCACHE_SPACE with int()). Fix: give the KV cache space in whole GiB, "
                          "e.g. 2.")
    per_token = memory.kv_bytes_per_token(spec, kv_cache_dtype)
    tokens = memory.kv_cache_tokens(int(space_gib * GIB), per_token, memory.CPU_BLOCK_SIZE)
    flags = ServeFlags(model=spec.checkpoint or spec.name, max_model_len=max_model_len, kv_cache_dtype=kv_cache_dtype,
                       cpu_kv_cache_gib=int(space_gib), device="cpu")
    return {"device": "cpu", "model": spec.name, "kv_cache_gib": space_gib, "kv_bytes_per_token": per_token,
            "kv_cache_tokens": tokens, "max_model_len": max_model_len,
            "max_concurrency": round(memory.max_concurrency(tokens, max_model_len, memory.CPU_BLOCK_SIZE), 2),
            "fits": tokens >= max_model_len, "env": {"VLLM_CPU_KVCACHE_SPACE": f"{space_gib:g}"},
            "command": flags.command()}
