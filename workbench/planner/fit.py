"""fit.py calibrates the planner to one vLLM start-up log of the user's own machine.

The planner's fixed overheads (non-torch memory, the V1 workspace, CUDA graphs) were fitted on public logs of other
machines and versions. A log from this machine measures them: vLLM printed how much memory it could use, what the
weights took and what was left for the KV cache. What scales with the model and the settings is recomputed, never
fitted: the profile run's forward (the model's widths × max_num_batched_tokens) and its sampler warm-up (vocabulary
× max_num_seqs at the version's bytes per logit, budget.profile_peak), for the log's own run and again for the plan.
What is left is the machine's own term, fitted once and carried to a plan for another max_model_len, batch budget,
model, quantization or parallel layout (`calibrated_plan`).

On the CPU build there is nothing to fit (the KV cache is VLLM_CPU_KVCACHE_SPACE, set by the user); the log checks
the KV bytes per token and the block rounding instead (`check_cpu`), and cpu_plan.py sizes another space.

It reads logs only through startup_log.py (the one reader, shared with the engine's report) and reads no file.
"""

import re
from dataclasses import asdict, dataclass, replace

from workbench.errors import ConfigError, WorkbenchError
from workbench.planner.budget import (
    CUDA_GRAPH_GIB,
    DEFAULT_GROUP_SIZE,
    GIB,
    ProfilePeak,
    Range,
    kv_bytes_per_token,
    kv_cache_tokens,
    moe_workspace_bytes,
    multi_gpu_gib,
    profile_peak_on,
    weight_bytes,
)
from workbench.planner.gpu_plan import Plan, plan
from workbench.planner.vllm_facts import (
    CPU_BLOCK_SIZE,
    DEFAULT_VLLM_VERSION,
    ServeSettings,
    graphs_in_budget,
    modelled_version,
)
from workbench.serving import hardware, models
from workbench.serving.hardware import GpuSpec
from workbench.serving.model_catalog import ModelSpec
from workbench.serving.startup_log import EngineReport, parse_startup_log


def usable(report: EngineReport, source: str = "the log") -> EngineReport:
    """The report, when it holds the KV cache a fit needs; ConfigError with the lines looked for when not."""
    if report.kv_cache_gib is None and report.kv_cache_tokens is None:
        raise ConfigError(
            f'{source} is not a vLLM start-up log this parser knows: it has none of the lines "Available KV '
            'cache memory: … GiB", "GPU KV cache size: … tokens", "# GPU blocks: …", "Explicitly set (…) GiB '
            'for KV cache" (CPU build) or "the rest of the memory reserved for KV Cache is …". Fix: give the '
            'log of a `vllm serve` run that got as far as "init engine" (e.g. `vllm serve … 2>&1 | tee serve.log`).'
        )
    return report


def read_log(text: str, source: str = "the log") -> EngineReport:
    """The facts of a vLLM start-up log, CPU or GPU build (startup_log.parse_startup_log); ConfigError when it is
    not one."""
    return usable(parse_startup_log(text), source)


# -- what the log ran with, as the fit reads it: vLLM's defaults where the log prints nothing -------------------
def _tp(report: EngineReport) -> int:
    return report.tensor_parallel_size or 1


def _pp(report: EngineReport) -> int:
    return report.pipeline_parallel_size or 1


def _kv_dtype(report: EngineReport) -> str:
    """The log's fp8 KV cache type, else "auto" (its bf16 or fp16 is the model's own)."""
    dtype = report.kv_cache_dtype or ""
    return dtype if dtype.startswith("fp8") else "auto"


def logged_facts(report: EngineReport) -> dict:
    """The log's facts as the fit used them (a log without a device line is a GPU's), for the JSON and the text."""
    return {
        "device": report.device or "gpu",
        "vllm_version": report.vllm_version,
        "model": report.model,
        "weights_gib": report.weights_gib,
        "kv_cache_gib": report.kv_cache_gib,
        "kv_cache_tokens": report.kv_cache_tokens,
        "max_model_len": report.max_model_len,
        "total_gib": report.total_gib,
        "gpu_memory_utilization": report.gpu_memory_utilization,
        "tensor_parallel_size": _tp(report),
        "kv_cache_dtype": _kv_dtype(report),
        "max_num_batched_tokens": report.max_num_batched_tokens,
        "max_num_seqs": report.max_num_seqs,
        "pipeline_parallel_size": _pp(report),
    }


# -- the fits -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Residual:
    """The calibrated planner on the log's own run, less what the log says. None: the log does not say."""

    kv_cache_gib: float | None = None  # GPU: the KV pool
    kv_cache_tokens: int | None = None
    kv_cache_tokens_pct: float | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ProfileTerms:
    """The profile peaks the planner computed (never fits) for a model and settings, in GiB."""

    model: str
    vllm_version: str
    model_runner: str
    max_num_batched_tokens: int
    max_num_seqs: int
    forward_gib: float
    sampler_gib: float
    sampler_bytes_per_logit: int
    peak_gib: float
    compile_gib: float  # a cold torch.compile's peak (0 on a warm start, the V1 runner or an eager engine)
    cuda_graphs_in_budget: bool  # whether the run pays its CUDA graphs from the budget (vllm_facts.graphs_in_budget)

    @classmethod
    def of(cls, spec: ModelSpec, settings: ServeSettings, peak: ProfilePeak) -> "ProfileTerms":
        return cls(
            spec.name,
            settings.vllm_version,
            peak.runner,
            peak.tokens,
            peak.seqs,
            round(peak.forward / GIB, 3),
            round(peak.sampler / GIB, 3),
            peak.sampler_bytes_per_logit,
            round(peak.peak / GIB, 3),
            round(peak.compile / GIB, 3),
            graphs_in_budget(spec, settings),
        )


@dataclass(frozen=True)
class LogFit:
    """What one log measured: its facts (the GPU's memory filled in where the log lacks it), the residual of the
    planner on the log's own run, and what the user should know (another model, facts taken from flags, another
    version). A GPU log fits a term (`Calibration`); a CPU-build log checks the KV arithmetic (`CpuCheck`)."""

    facts: EngineReport
    residual: Residual
    notes: tuple[str, ...]

    def fitted_terms(self) -> dict:
        raise NotImplementedError

    def as_dict(self) -> dict:
        return {
            "facts": logged_facts(self.facts),
            "fitted_terms": self.fitted_terms(),
            "residual": self.residual.as_dict(),
            "notes": list(self.notes),
        }

    def json_fields(self) -> dict:
        """What a plan's JSON gains when it is calibrated."""
        return {"calibrated": True, "calibration": self.as_dict()}


@dataclass(frozen=True)
class Calibration(LogFit):
    """A GPU log's fit: `overhead_gib` (the machine's own memory beyond the computed peaks: non-torch memory, CUDA
    graphs, the profile's workspace) is carried to every plan unchanged; the profile peaks are recomputed for the
    log's model and settings (`log_peaks`) and for the plan's (`plan_peaks`)."""

    overhead_gib: float
    requested_gib: float  # what vLLM could use on the log's run
    log_peaks: ProfileTerms
    plan_peaks: ProfileTerms

    def fitted_terms(self) -> dict:
        return {"overhead_gib": self.overhead_gib, "requested_gib": self.requested_gib}

    def as_dict(self) -> dict:
        recomputed = {"log": asdict(self.log_peaks), "plan": asdict(self.plan_peaks)}
        return super().as_dict() | {"recomputed_terms": recomputed}


@dataclass(frozen=True)
class CpuCheck(LogFit):
    """A CPU-build log: nothing fitted; the KV bytes per token and the block rounding checked against it."""

    kv_bytes_per_token: int
    block_size: int
    kv_cache_space_gib: float | None  # VLLM_CPU_KVCACHE_SPACE as the log printed it

    def fitted_terms(self) -> dict:
        return {
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "block_size": self.block_size,
            "kv_cache_space_gib": self.kv_cache_space_gib,
        }


def _log_spec(log_model: str | None) -> tuple[ModelSpec | None, str]:
    """The served model's architecture, resolved as every model reference is (models.find_model): a catalog name,
    a catalog model's Hub id, a folder here or another Hub id; a path of another machine by its folder's name.
    Returns (spec, why not) so that a refusal can say what failed."""
    if not log_model:
        return None, ""
    why = ""
    for candidate in dict.fromkeys((log_model, _folder_name(log_model))):
        try:
            return models.find_model(candidate), ""
        except WorkbenchError as exc:
            why = why or str(exc)
    return None, why


def _folder_name(path: str) -> str:
    """The last part of a path the log names (a folder of another machine, or a Hub id's name)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _same_model(log_model: str | None, spec: ModelSpec) -> bool:
    if not log_model:
        return True

    def key(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())

    base = key(_folder_name(log_model))
    return key(spec.name) in base or base in key(spec.name)


def _log_run(spec: ModelSpec, report: EngineReport, log_model: str | None) -> tuple[ModelSpec, str | None, list[str]]:
    """The model the log's run served (its own architecture when it resolves, else the plan's), its name, and a note
    when it is not the plan's model. A model that cannot be resolved and is not the plan's is refused."""
    served = log_model or report.model
    log_spec, why = _log_spec(served)
    notes = []
    if not _same_model(served, spec) and not (log_spec is not None and log_spec.name == spec.name):
        if log_spec is None:
            why = why.split(" Fix:")[0].rstrip(".")
            raise ConfigError(
                f"the log served {served!r}, which cannot be resolved here ({why}), so its "
                f"profile peaks cannot be computed and the fit would use {spec.name}'s architecture "
                "for them (wrongly). Fix: name the log's model with --log-model: a catalog name (e.g. "
                "Llama-3.1-8B), a folder with its config.json, or a Hugging Face id the cache or the "
                "Hub has."
            )
        notes.append(
            f"the log served {served}, the plan is for {spec.name}: what the log measured about this "
            "machine and vLLM carries over; the weights, profile peaks and KV bytes per token are "
            f"{spec.name}'s."
        )
    return log_spec or spec, served, notes


# A fitted machine term outside these bounds means the fit read the log wrongly (another model's architecture,
# a partial log): non-torch memory, CUDA graphs and the workspace are never negative, and are a few GiB at most.
_OVERHEAD_MIN_GIB = -0.1  # the log's GiB figures are rounded to 0.01 each


def _overhead_limit_gib(requested_gib: float) -> float:
    return 2.0 + 0.15 * requested_gib


def _check_overhead(overhead: float, requested_gib: float, log_name: str, spec_at_log: ModelSpec) -> None:
    fix = (
        "Fix: name the log's model with --log-model (a catalog name, folder or Hugging Face id) if it is not "
        f"{spec_at_log.name}, and give the whole start-up log of this GPU."
    )
    if overhead < _OVERHEAD_MIN_GIB:
        raise ConfigError(
            f"the fit to the log gives the machine's own memory (non-torch, CUDA graphs, workspace) as "
            f"{overhead:.2f} GiB, below zero: it cannot be, so the log was not read as it ran (its model "
            f"{log_name} planned as {spec_at_log.name}, or settings the log does not print). It is not "
            f"used. {fix}"
        )
    limit = _overhead_limit_gib(requested_gib)
    if overhead > limit:
        raise ConfigError(
            f"the fit to the log gives the machine's own memory (non-torch, CUDA graphs, workspace) as "
            f"{overhead:.2f} GiB, above the {limit:.1f} GiB that is plausible for the "
            f"{requested_gib:.1f} GiB vLLM could use: another process on the GPU, or a log read as "
            f"another model. It is not used. {fix}"
        )


WARM_COMPILE_S = 5.0  # "torch.compile took" under this reads its cache: 0.15-0.45 s warm, 25-39 s cold (public logs)


def compile_cache_of(compile_s: float | None) -> str:
    """Whether a log's start found torch.compile's cache warm, from the time its compile took ("torch.compile took …
    s in total", EngineReport.compile_s); cold where the log does not say."""
    return "warm" if compile_s is not None and compile_s < WARM_COMPILE_S else "cold"


def fit(
    spec: ModelSpec,
    report: EngineReport,
    gpu: GpuSpec | None = None,
    settings: ServeSettings | None = None,
    quant: str = "bf16",
    log_model: str | None = None,
) -> Calibration:
    """Fit the machine's overhead to a GPU log.

    What vLLM could use, less the weights and KV cache the log reports, less the profile peaks computed for the log's
    own model and settings (budget.profile_peak), is the one fitted term: non-torch memory, CUDA graphs and whatever
    the log shows beyond the computed peaks. It does not scale with the model, so a plan for another model, context,
    batch or parallel layout keeps it and recomputes the peaks. `gpu` and `settings` supply what the log does not
    print (its memory, its gpu_memory_utilization) and what the plan is for."""
    assert report.device != "cpu", "a CPU-build log is checked (check_cpu), not fitted"
    spec_at_log, served, notes = _log_run(spec, report, log_model)  # the residual and the fit are the log's run
    if report.weights_gib is None:
        raise ConfigError(
            'the log has no "Model loading took … GiB" line, so the overhead cannot be separated '
            "from the weights. Fix: give the whole start-up log, from the first line."
        )
    settings = settings or ServeSettings()
    total = report.total_gib
    if total is None:
        if gpu is None:
            raise ConfigError(
                "the log does not print the GPU's memory (vLLM 0.11+ prints it in \"Free memory on "
                'device", 0.7-0.10 in "total_gpu_memory"). Fix: add --gpu NAME or --gpu-total-gib.'
            )
        total = gpu.total_gib
        notes.append(f"GPU memory {total} GiB taken from the GPU you named (the log does not print it)")
    version, version_note = modelled_version(report.vllm_version or settings.vllm_version)
    if version_note:
        notes.append(f"the log's {version_note}")
    gmu = report.gpu_memory_utilization
    log_settings = ServeSettings(
        max_model_len=report.max_model_len or settings.max_model_len,
        gpu_memory_utilization=gmu,
        kv_cache_dtype=_kv_dtype(report),
        tensor_parallel_size=_tp(report),
        pipeline_parallel_size=_pp(report),
        max_num_batched_tokens=report.max_num_batched_tokens,
        max_num_seqs=report.max_num_seqs,
        vllm_version=version,
        compile_cache=compile_cache_of(report.compile_s),
        enforce_eager=bool(report.enforce_eager),
    )
    if gmu is None:
        notes.append(
            f"gpu_memory_utilization {log_settings.effective_gmu():.2f} assumed (vLLM "
            f"{log_settings.vllm_version}'s default; the log does not print it)"
        )
    log_gpu = GpuSpec(gpu.name if gpu else "the log's GPU", total, 0.0, 0.0, "?")
    log_peak = profile_peak_on(spec_at_log, log_settings, log_gpu)
    per_token = kv_bytes_per_token(
        spec_at_log, log_settings.kv_cache_dtype, log_settings.tensor_parallel_size, log_settings.pipeline_parallel_size
    )
    kv = report.kv_cache_gib * GIB if report.kv_cache_gib is not None else report.kv_cache_tokens * per_token
    requested = total * log_settings.effective_gmu() * GIB
    buffers = multi_gpu_gib(log_settings) + moe_workspace_bytes(spec_at_log, log_settings, log_peak.tokens) / GIB
    overhead = (requested - report.weights_gib * GIB - kv - log_peak.peak) / GIB - buffers
    if report.compile_s is None and log_peak.compile:  # the log does not say whether its start compiled
        if overhead < 0:  # a cold compile's peak does not fit in what the log leaves: that start read the cache
            log_settings = replace(log_settings, compile_cache="warm")
            warm_peak = profile_peak_on(spec_at_log, log_settings, log_gpu)
            overhead += (log_peak.peak - warm_peak.peak) / GIB
            log_peak = warm_peak
            notes.append(
                "torch.compile's cache taken as warm at the log's start: it prints no \"torch.compile took … s\" "
                "line, and a cold compile's peak would not fit in what it leaves"
            )
        else:
            notes.append(
                "torch.compile's cache taken as cold at the log's start (it prints no \"torch.compile took … s\" "
                "line); if that start read the cache, the fit holds the compile's peak as overhead"
            )
    _check_overhead(overhead, requested / GIB, served or "?", spec_at_log)
    check = plan(
        spec_at_log,
        log_gpu,
        quant,
        log_settings,
        weights_gib=report.weights_gib,
        overhead_gib=Range(overhead, overhead, overhead),
    )
    residual = Residual(kv_cache_gib=round(check.kv_cache_bytes / GIB - kv / GIB, 3) + 0.0)  # + 0.0: no "-0.0"
    if report.kv_cache_tokens:
        tokens = check.kv_cache_tokens - report.kv_cache_tokens
        residual = replace(
            residual, kv_cache_tokens=tokens, kv_cache_tokens_pct=round(100 * tokens / report.kv_cache_tokens, 2)
        )
        notes += _per_token_note(spec_at_log, report, kv, per_token)
    return Calibration(
        facts=replace(report, total_gib=total),
        residual=residual,
        notes=tuple(notes),
        overhead_gib=round(overhead, 3),
        requested_gib=round(requested / GIB, 2),
        log_peaks=ProfileTerms.of(spec_at_log, log_settings, log_peak),
        plan_peaks=ProfileTerms.of(spec, settings, profile_peak_on(spec, settings, gpu or log_gpu)),
    )


def check_cpu(spec: ModelSpec, report: EngineReport, log_model: str | None = None) -> CpuCheck:
    """A CPU-build log: the planner's KV bytes per token and block rounding against the tokens the log reports."""
    spec_at_log, _, notes = _log_run(spec, report, log_model)
    per_token = kv_bytes_per_token(spec_at_log, _kv_dtype(report))
    residual = Residual()
    if report.kv_cache_gib is not None and report.kv_cache_tokens:
        notes += _per_token_note(spec_at_log, report, report.kv_cache_gib * GIB, per_token)
        planned = kv_cache_tokens(int(report.kv_cache_gib * GIB), per_token, CPU_BLOCK_SIZE)
        tokens = planned - report.kv_cache_tokens
        residual = Residual(kv_cache_tokens=tokens, kv_cache_tokens_pct=round(100 * tokens / report.kv_cache_tokens, 2))
    return CpuCheck(
        facts=report,
        residual=residual,
        notes=tuple(notes),
        kv_bytes_per_token=per_token,
        block_size=CPU_BLOCK_SIZE,
        kv_cache_space_gib=report.kv_cache_gib,
    )


def _per_token_note(spec: ModelSpec, report: EngineReport, kv_bytes: float, per_token: int) -> list[str]:
    """The log's KV bytes per token, against the model's: a wide gap means another model or KV dtype."""
    seen = kv_bytes / report.kv_cache_tokens
    if abs(seen - per_token) / per_token <= 0.05:
        return []
    return [
        f"the log stores {seen:,.0f} B of KV cache per token, {spec.name} needs {per_token:,}: the log is "
        "from another model, KV dtype or parallel layout than the one planned, so its token counts do not "
        "carry over (its memory overhead still does)"
    ]


def check_gpu(report: EngineReport, gpu_name: str, total_gib: float | None = None) -> None:
    """A log calibrates the machine it ran on. Refuse a GPU whose memory is not the log's: its non-torch memory
    and overheads would be planned onto another card. A card the catalog does not know is not checked."""
    if report.total_gib is None:
        return
    try:
        named = total_gib or hardware.find_gpu(gpu_name).total_gib
    except ConfigError:
        return
    if abs(named - report.total_gib) <= max(0.5, 0.02 * report.total_gib):
        return
    alike = [
        g.name for g in hardware.GPU_CATALOG.values() if abs(g.total_gib - report.total_gib) <= 0.02 * report.total_gib
    ]
    raise ConfigError(
        f"the log ran on a GPU with {report.total_gib} GiB, but the GPU to plan, {gpu_name!r}, has {named} GiB: a log "
        "calibrates the machine it came from (its non-torch memory, CUDA graphs, vLLM), not another card. Fix: plan "
        "for the GPU the log ran on"
        + (f" (one with {report.total_gib} GiB: {', '.join(alike)})" if alike else "")
        + ", leave the GPU out (`workbench plan` without --gpu plans on the log's own memory), or plan "
        f"{gpu_name} without the log."
    )


def as_logged(settings: ServeSettings, report: EngineReport, vllm_version: str | None) -> ServeSettings:
    """The asked settings, with what was not asked taken as the log ran: its gpu_memory_utilization and vLLM
    version (`vllm_version` is the one the user gave, or None)."""
    logged = modelled_version(report.vllm_version)[0] if report.vllm_version else None
    return replace(
        settings,
        gpu_memory_utilization=settings.gpu_memory_utilization or report.gpu_memory_utilization,
        vllm_version=vllm_version or logged or DEFAULT_VLLM_VERSION,
    )


def calibrated_plan(
    spec: ModelSpec,
    gpu: GpuSpec,
    quant: str,
    settings: ServeSettings,
    calibration: Calibration,
    group_size: int | None = DEFAULT_GROUP_SIZE,
    weights_gib: float | None = None,
) -> Plan:
    """The plan for the asked-for settings with the log's overhead and the peaks recomputed for them. The range
    widens with how far the peak moves from the log's (the part computed, not measured): 0.1 GiB plus a quarter.
    When the log loaded the same checkpoint (same model, and its weights within 3 % of what this format
    computes to), the plan uses the log's measured weights, re-split for this TP × PP."""
    overhead = calibration.overhead_gib  # gpu_plan.plan adds this layout's multi-GPU buffers
    # the log's term holds its CUDA graphs where its run paid them from the budget: an eager log asked about a plan
    # with graphs gains the graph term, and the reverse loses it
    graphs = graphs_in_budget(spec, settings) - calibration.log_peaks.cuda_graphs_in_budget
    overhead += graphs * CUDA_GRAPH_GIB.nominal
    moved = abs(profile_peak_on(spec, settings, gpu).peak / GIB - calibration.log_peaks.peak_gib)
    spread = 0.1 + 0.25 * moved
    if weights_gib is None:
        weights_gib = _measured_weights(spec, quant, group_size, settings, calibration.facts)
    return plan(
        spec,
        gpu,
        quant,
        settings,
        group_size,
        weights_gib,
        overhead_gib=Range(overhead - spread, overhead, overhead + spread),
    )


def _measured_weights(
    spec: ModelSpec, quant: str, group_size: int | None, settings: ServeSettings, report: EngineReport
) -> float | None:
    if report.model is None or not report.weights_gib or not _same_model(report.model, spec):
        return None
    total = report.weights_gib * _tp(report) * _pp(report)  # the log's per-GPU share, times its GPUs
    computed = weight_bytes(spec, quant, group_size) / GIB
    if abs(computed - total) / total > 0.03:
        return None  # another format than the log's (e.g. a bf16 log, a GPTQ plan): computed weights
    return total / (settings.tensor_parallel_size * settings.pipeline_parallel_size)
