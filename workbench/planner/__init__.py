"""The planner: will a model fit vLLM's memory on a GPU (or the CPU build), with which flags, for how many requests
at once, and how fast at best. `plan(PlanRequest(...))` is the one call of every face (`workbench plan`, the Plan
tab, the Jupyter planner): a GPU plan, calibrated to a start-up log when one is given (GPU or CPU build), optionally
swept over context lengths or over tensor × pipeline layouts. `compare(served, request)` sets a plan beside what a
running server built, from the data the face read from that server.

One concept per module, leaves first:
  vllm_facts.py  what each vLLM release does that the budget depends on; ServeSettings (flags + version)
  budget.py      the budget's terms: weights per format, KV bytes per token and tokens, profile peaks, overheads
  roofline.py    speed bounds from bandwidth and FLOP/s, and the claims that beat them
  gpu_plan.py    one GPU's budget added up: Plan, fits or not and why, the `vllm serve` line
  cpu_plan.py    the CPU build's exact KV cache for a VLLM_CPU_KVCACHE_SPACE
  sweeps.py      many plans: over context lengths, over TP × PP layouts
  fit.py         the planner calibrated to one start-up log (read by startup_log.py)
  request.py     what a person asks: PlanRequest
  answer.py      what the planner answers: GpuAnswer, CpuAnswer, ParallelAnswer
  served.py      the plan against a running server's own numbers
This module decides which of them a request needs, in one place. It reads the log a request names (through
startup_log.py) and the model (through models.py); everything below it is arithmetic.
"""

from dataclasses import replace

from workbench.planner.answer import CpuAnswer, GpuAnswer, ParallelAnswer, PlanAnswer
from workbench.planner.budget import QUANT_FORMATS

# aliased, so that `planner.cpu_plan`, `planner.fit` and `planner.gpu_plan` stay the modules of those names
from workbench.planner.cpu_plan import cpu_plan as plan_cpu
from workbench.planner.fit import as_logged, calibrated_plan, check_cpu, check_gpu, read_log, usable
from workbench.planner.fit import fit as fit_log
from workbench.planner.gpu_plan import Plan, fit_free
from workbench.planner.gpu_plan import plan as plan_gpu
from workbench.planner.request import DEFAULT_GPU, PlanRequest, checkpoint_format
from workbench.planner.served import Comparison, compare
from workbench.planner.sweeps import CONTEXTS, sweep_context, sweep_parallel
from workbench.planner.vllm_facts import COMPILE_CACHES, DEFAULT_VLLM_VERSION, ServeSettings
from workbench.serving import hardware, models, startup_log
from workbench.serving.startup_log import EngineReport

__all__ = [
    "CONTEXTS",
    "DEFAULT_GPU",
    "DEFAULT_VLLM_VERSION",
    "QUANT_FORMATS",
    "Comparison",
    "CpuAnswer",
    "GpuAnswer",
    "ParallelAnswer",
    "Plan",
    "PlanAnswer",
    "PlanRequest",
    "ServeSettings",
    "COMPILE_CACHES",
    "compare",
    "plan",
]


def _log_report(request: PlanRequest) -> EngineReport | None:
    """The start-up log the request names, read (a file or pasted text), or None."""
    if request.log_path:
        source = request.log_source or f"--calibrate-from {request.log_path!r}"
        return usable(startup_log.read_startup_log(request.log_path, source), source)
    if request.log_text and request.log_text.strip():
        return read_log(request.log_text, request.log_source or "the pasted log")
    return None


def _gpu(request: PlanRequest, report: EngineReport | None) -> hardware.GpuSpec | None:
    if request.gpu is not None and report is not None:
        check_gpu(report, request.gpu, request.gpu_total_gib)
    total = request.gpu_total_gib or (report.total_gib if report else None)
    if request.gpu is not None or report is None:
        return hardware.find_gpu(request.gpu or DEFAULT_GPU, total, request.bandwidth_gbs)
    # a log without a GPU named: its own memory; without that either, fit.fit says which flag to add
    return hardware.GpuSpec("the log's GPU", total, request.bandwidth_gbs or 0.0, 0.0, "?") if total else None


def plan(request: PlanRequest) -> PlanAnswer:
    """The one planner call of every face."""
    spec = models.find_model(request.model, request.revision)
    quant = checkpoint_format(spec, request.quant, request.weights_gib)
    if request.quant and request.quant != quant:
        spec = replace(
            spec,
            weights_source=(spec.weights_source or "") + f"; the checkpoint declares {quant}, so "
            f"--quant {request.quant} does not apply",
        )
    request = replace(request, quant=quant, group_size=spec.declared_group_size or request.group_size)
    report = _log_report(request)
    if report is not None and report.device == "cpu":
        space = request.kv_space_gib if request.kv_space_gib is not None else report.kv_cache_gib
        on_cpu = plan_cpu(spec, space, request.settings.max_model_len, request.settings.kv_cache_dtype)
        return CpuAnswer(request, spec, on_cpu, check_cpu(spec, report, log_model=request.log_model))
    gpu = _gpu(request, report)
    settings = replace(request.settings, vllm_version=request.vllm_version or DEFAULT_VLLM_VERSION)
    cal = None
    if report is not None:
        settings = as_logged(settings, report, request.vllm_version)
        cal = fit_log(spec, report, gpu, settings, request.quant, log_model=request.log_model)
    lowered = None
    if request.fit_free:
        settings, lowered = fit_free(settings, gpu)

    def plan_at(s: ServeSettings) -> Plan:
        if cal is None:
            return plan_gpu(spec, gpu, request.quant, s, request.group_size, request.weights_gib)
        return calibrated_plan(spec, gpu, request.quant, s, cal, request.group_size, request.weights_gib)

    if request.parallel:
        sweep = sweep_parallel(
            spec, gpu, request.quant, settings, request.group_size, request.gpus_per_node, plan_at=plan_at
        )
        return ParallelAnswer(request, spec, gpu, sweep, cal)
    curve = ()
    if request.curve:
        limit = spec.max_position_embeddings or max(CONTEXTS)
        curve = tuple(
            sweep_context(spec, gpu, request.quant, settings, [n for n in CONTEXTS if n <= limit], plan_at=plan_at)
        )
    at = plan_at(settings)
    return GpuAnswer(request, spec, gpu, replace(at, warnings=(lowered, *at.warnings)) if lowered else at, cal, curve)
