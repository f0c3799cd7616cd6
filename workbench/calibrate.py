"""Calibrate the planner from one vLLM start-up log of the user's own machine.

The planner's fixed overheads (non-torch memory, the V1 workspace, CUDA graphs) were fitted on public
logs of other machines and versions. A log from this machine measures them: vLLM printed how much memory
it could use, what the weights took and what was left for the KV cache. What scales with the model and the
settings is recomputed, never fitted: the profile run's forward (the model's widths × max_num_batched_tokens)
and its sampler warm-up (vocabulary × max_num_seqs at the version's bytes per logit, memory.profile_peak),
for the log's own run and again for the plan. What is left is the machine's own term, fitted once and
carried to a plan for another max_model_len, batch budget, model, quantization or parallel layout.

On the CPU build there is nothing to fit (the KV cache is VLLM_CPU_KVCACHE_SPACE, set by the user); the
log checks the KV bytes per token and the block rounding instead, and the plan sizes another space.
"""

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from workbench import hardware, memory, models, startup_log
from workbench.errors import ConfigError, WorkbenchError
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
    "pipeline_parallel_size": [r"pipeline_parallel_size=(\d+)", r"'pipeline_parallel_size': (\d+)"],
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
    pipeline_parallel_size: int = 1


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
        max_num_batched_tokens=_int(found["max_num_batched_tokens"]), max_num_seqs=_int(found["max_num_seqs"]),
        pipeline_parallel_size=_int(found["pipeline_parallel_size"]) or 1)


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
    """What one log measured, split into what was fitted and what is recomputed.

    GPU: `terms["overhead_gib"]` is fitted (the machine's own memory beyond the computed peaks: non-torch
    memory, CUDA graphs, the profile's workspace) and carried to every plan unchanged; `recomputed` holds the
    profile peaks (forward and sampler) computed for the log's model and settings, and again for the plan's.
    CPU: nothing is fitted; the log checks the KV bytes per token and the block rounding."""

    facts: LogFacts
    terms: dict  # fitted (GPU: the overhead; CPU: nothing, the KV bytes per token checked)
    residual: dict  # the calibrated planner on the log's own settings, against what the log says
    notes: tuple[str, ...]  # what the user should know: another model, facts taken from flags, another version
    recomputed: dict = field(default_factory=dict)  # GPU: {"log": peaks, "plan": peaks}

    def as_dict(self) -> dict:
        out = {"facts": asdict(self.facts), "fitted_terms": self.terms, "residual": self.residual,
               "notes": list(self.notes)}
        if self.recomputed:
            out["recomputed_terms"] = self.recomputed
        return out

    def json_fields(self) -> dict:
        """What a plan's JSON gains when it is calibrated."""
        return {"calibrated": True, "calibration": self.as_dict()}


def _described(spec: ModelSpec, settings: memory.ServeSettings, peak: memory.ProfilePeak) -> dict:
    """The profile peaks the planner computed (never fits) for a model and settings, in GiB, for the JSON."""
    return {"model": spec.name, "vllm_version": settings.vllm_version, "model_runner": peak.runner,
            "max_num_batched_tokens": peak.tokens, "max_num_seqs": peak.seqs,
            "forward_gib": round(peak.forward / GIB, 3),
            "sampler_gib": round(peak.sampler / GIB, 3), "sampler_bytes_per_logit": peak.sampler_bytes_per_logit,
            "peak_gib": round(peak.peak / GIB, 3)}


def _log_spec(log_model: str | None) -> tuple[ModelSpec | None, str]:
    """The served model's architecture, resolved as every model reference is (models.find_model): a catalog name,
    a catalog model's Hub id, a folder here or another Hub id; a path of another machine by its folder's name.
    Returns (spec, why not) so that a refusal can say what failed."""
    if not log_model:
        return None, ""
    why = ""
    for candidate in dict.fromkeys((log_model, Path(log_model.rstrip("/")).name)):
        try:
            return models.find_model(candidate), ""
        except WorkbenchError as exc:
            why = why or str(exc)
    return None, why


# A fitted machine term outside these bounds means the fit read the log wrongly (another model's architecture,
# a partial log): non-torch memory, CUDA graphs and the workspace are never negative, and are a few GiB at most.
_OVERHEAD_MIN_GIB = -0.1  # the log's GiB figures are rounded to 0.01 each


def _overhead_limit_gib(requested_gib: float) -> float:
    return 2.0 + 0.15 * requested_gib


def _check_overhead(overhead: float, requested_gib: float, log_name: str, spec_at_log: ModelSpec) -> None:
    fix = ("Fix: name the log's model with --log-model (a catalog name, folder or Hugging Face id) if it is not "
           f"{spec_at_log.name}, and give the whole start-up log of this GPU.")
    if overhead < _OVERHEAD_MIN_GIB:
        raise ConfigError(f"the fit to the log gives the machine's own memory (non-torch, CUDA graphs, workspace) as "
                          f"{overhead:.2f} GiB, below zero: it cannot be, so the log was not read as it ran (its model "
                          f"{log_name} planned as {spec_at_log.name}, or settings the log does not print). It is not "
                          f"used. {fix}")
    limit = _overhead_limit_gib(requested_gib)
    if overhead > limit:
        raise ConfigError(f"the fit to the log gives the machine's own memory (non-torch, CUDA graphs, workspace) as "
                          f"{overhead:.2f} GiB, above the {limit:.1f} GiB that is plausible for the {requested_gib:.1f} "
                          f"GiB vLLM could use: another process on the GPU, or a log read as another model. It is not "
                          f"used. {fix}")


def _same_model(log_model: str | None, spec: ModelSpec) -> bool:
    if not log_model:
        return True
    def key(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())
    base = key(Path(log_model.rstrip("/")).name)
    return key(spec.name) in base or base in key(spec.name)


def fit(spec: ModelSpec, facts: LogFacts, gpu: GpuSpec | None = None, settings: memory.ServeSettings | None = None,
        quant: str = "bf16", log_model: str | None = None) -> Calibration:
    """Fit the machine's overhead to the log (GPU), or check the KV arithmetic against it (CPU).

    GPU: what vLLM could use, less the weights and KV cache the log reports, less the profile peaks computed for
    the log's own model and settings (memory.profile_peak), is the one fitted term: non-torch memory, CUDA graphs
    and whatever the log shows beyond the computed peaks. It does not scale with the model, so a plan for another
    model, context, batch or parallel layout keeps it and recomputes the peaks. `gpu` and `settings` supply what
    the log does not print (its memory, its gpu_memory_utilization) and what the plan is for."""
    notes = []
    served = log_model or facts.model
    log_spec, why = _log_spec(served)
    if not _same_model(served, spec) and not (log_spec is not None and log_spec.name == spec.name):
        if log_spec is None:
            why = why.split(" Fix:")[0].rstrip(".")
            raise ConfigError(f"the log served {served!r}, which cannot be resolved here ({why}), so its "
                              f"profile peaks cannot be computed and the fit would use {spec.name}'s architecture "
                              "for them (wrongly). Fix: name the log's model with --log-model: a catalog name (e.g. "
                              "Llama-3.1-8B), a folder with its config.json, or a Hugging Face id the cache or the "
                              "Hub has.")
        notes.append(f"the log served {served}, the plan is for {spec.name}: what the log measured about this "
                     "machine and vLLM carries over; the weights, profile peaks and KV bytes per token are "
                     f"{spec.name}'s.")
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
    version, version_note = memory.modelled_version(facts.vllm_version or settings.vllm_version)
    if version_note:
        notes.append(f"the log's {version_note}")
    gmu = facts.gpu_memory_utilization
    log_settings = memory.ServeSettings(
        max_model_len=facts.max_model_len or settings.max_model_len, gpu_memory_utilization=gmu,
        kv_cache_dtype=facts.kv_cache_dtype, tensor_parallel_size=facts.tensor_parallel_size,
        pipeline_parallel_size=facts.pipeline_parallel_size, max_num_batched_tokens=facts.max_num_batched_tokens,
        max_num_seqs=facts.max_num_seqs, vllm_version=version)
    if gmu is None:
        notes.append(f"gpu_memory_utilization {log_settings.effective_gmu():.2f} assumed (vLLM "
                     f"{log_settings.vllm_version}'s default; the log does not print it)")
    log_gpu = GpuSpec(gpu.name if gpu else "the log's GPU", total, 0.0, 0.0, "?")
    log_peak = memory.profile_peak_on(spec_at_log, log_settings, log_gpu)
    activation = log_peak.peak
    per_token = memory.kv_bytes_per_token(spec_at_log, log_settings.kv_cache_dtype, log_settings.tensor_parallel_size,
                                          log_settings.pipeline_parallel_size)
    kv = facts.kv_cache_gib * GIB if facts.kv_cache_gib is not None else facts.kv_cache_tokens * per_token
    requested = total * log_settings.effective_gmu() * GIB
    overhead = (requested - facts.weights_gib * GIB - kv - activation) / GIB - memory.multi_gpu_gib(log_settings)
    _check_overhead(overhead, requested / GIB, served or "?", spec_at_log)
    terms = {"overhead_gib": round(overhead, 3), "requested_gib": round(requested / GIB, 2)}
    recomputed = {"log": _described(spec_at_log, log_settings, log_peak),
                  "plan": _described(spec, settings, memory.profile_peak_on(spec, settings, gpu or log_gpu))}
    check = memory.plan(spec_at_log, log_gpu, quant, log_settings, weights_gib=facts.weights_gib,
                        overhead_gib=memory.Range(overhead, overhead, overhead))
    residual = {"kv_cache_gib": round(check.kv_cache_bytes / GIB - kv / GIB, 3) + 0.0}  # + 0.0: no "-0.0"
    if facts.kv_cache_tokens:
        residual["kv_cache_tokens"] = check.kv_cache_tokens - facts.kv_cache_tokens
        residual["kv_cache_tokens_pct"] = round(100 * residual["kv_cache_tokens"] / facts.kv_cache_tokens, 2)
        notes += _per_token_note(spec_at_log, facts, kv, per_token)
    return Calibration(replace(facts, total_gib=total), terms, residual, tuple(notes), recomputed)


def check_gpu(facts: LogFacts, gpu_name: str, total_gib: float | None = None) -> None:
    """A log calibrates the machine it ran on. Refuse a GPU whose memory is not the log's: its non-torch memory
    and overheads would be planned onto another card. A card the catalog does not know is not checked."""
    if facts.total_gib is None:
        return
    try:
        named = total_gib or hardware.find_gpu(gpu_name).total_gib
    except ConfigError:
        return
    if abs(named - facts.total_gib) <= max(0.5, 0.02 * facts.total_gib):
        return
    alike = [g.name for g in hardware.GPU_CATALOG.values() if abs(g.total_gib - facts.total_gib) <= 0.02 * facts.total_gib]
    raise ConfigError(
        f"the log ran on a GPU with {facts.total_gib} GiB, but the GPU to plan, {gpu_name!r}, has {named} GiB: a log "
        "calibrates the machine it came from (its non-torch memory, CUDA graphs, vLLM), not another card. Fix: plan "
        "for the GPU the log ran on" + (f" (one with {facts.total_gib} GiB: {', '.join(alike)})" if alike else "")
        + ", leave the GPU out (`workbench plan` without --gpu plans on the log's own memory), or plan "
        f"{gpu_name} without the log.")


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
    """The plan for the asked-for settings with the log's overhead and the peaks recomputed for them. The range
    widens with how far the peak moves from the log's (the part computed, not measured): 0.1 GiB plus a quarter.
    When the log loaded the same checkpoint (same model, and its weights within 3 % of what this format
    computes to), the plan uses the log's measured weights, re-split for this TP × PP."""
    overhead = calibration.terms["overhead_gib"]  # memory.plan adds this layout's multi-GPU buffers
    moved = abs(memory.profile_peak_on(spec, settings, gpu).peak / GIB - calibration.recomputed["log"]["peak_gib"])
    spread = 0.1 + 0.25 * moved
    if weights_gib is None:
        weights_gib = _measured_weights(spec, quant, group_size, settings, calibration.facts)
    return memory.plan(spec, gpu, quant, settings, group_size, weights_gib,
                       overhead_gib=memory.Range(overhead - spread, overhead, overhead + spread))


def _measured_weights(spec, quant, group_size, settings, facts: LogFacts) -> float | None:
    if facts.model is None or not facts.weights_gib or not _same_model(facts.model, spec):
        return None
    log_split = facts.tensor_parallel_size * facts.pipeline_parallel_size  # the log's per-GPU share
    total = facts.weights_gib * log_split
    computed = memory.weight_bytes(spec, quant, group_size) / GIB
    if abs(computed - total) / total > 0.03:
        return None  # another format than the log's (e.g. a bf16 log, a GPTQ plan): computed weights
    return total / (settings.tensor_parallel_size * settings.pipeline_parallel_size)


def as_logged(settings: memory.ServeSettings, facts: LogFacts, vllm_version: str | None) -> memory.ServeSettings:
    """The asked settings, with what was not asked taken as the log ran: its gpu_memory_utilization and vLLM
    version (`vllm_version` is the one the user gave, or None)."""
    logged = memory.modelled_version(facts.vllm_version)[0] if facts.vllm_version else None
    return replace(settings, gpu_memory_utilization=settings.gpu_memory_utilization or facts.gpu_memory_utilization,
                   vllm_version=vllm_version or logged or memory.DEFAULT_VLLM_VERSION)


def plan_from_log(spec: ModelSpec, facts: LogFacts, gpu: GpuSpec, quant: str, settings: memory.ServeSettings,
                  group_size: int | None = memory.DEFAULT_GROUP_SIZE,
                  weights_gib: float | None = None) -> tuple[memory.Plan, Calibration]:
    """Fit to a GPU log and plan the asked settings with it."""
    cal = fit(spec, facts, gpu, settings, quant)
    return gpu_plan(spec, gpu, quant, settings, cal, group_size, weights_gib), cal


def cpu_plan_from_log(spec: ModelSpec, facts: LogFacts, max_model_len: int, kv_cache_dtype: str = "auto",
                      space_gib: float | None = None, log_model: str | None = None) -> dict:
    """A CPU-build log: the KV arithmetic checked against it, and the plan for `space_gib` (default: the log's)."""
    space = space_gib if space_gib is not None else facts.kv_cache_gib
    return dict(cpu_plan(spec, space, max_model_len, kv_cache_dtype),
                **fit(spec, facts, log_model=log_model).json_fields())


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
