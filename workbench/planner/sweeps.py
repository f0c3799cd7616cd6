"""sweeps.py plans one deployment many times: over context lengths (the concurrency-vs-context curve) and over
tensor × pipeline layouts (the fewest GPUs that hold the model, TP inside a node and PP across nodes). Each point is
one plan from `plan_at(settings)`, so a calibrated planner (fit.py) sweeps as the uncalibrated one does. Pure; the
plan itself is gpu_plan.py's.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from workbench.errors import ConfigError
from workbench.planner.budget import DEFAULT_GROUP_SIZE, GIB
from workbench.planner.gpu_plan import Plan, plan
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving.model_catalog import ModelSpec

CONTEXTS = (2048, 4096, 8192, 16384, 24576, 32768, 40960, 65536, 131072)  # the curve's points
PARALLEL_SIZES = (1, 2, 4, 8)
PlanAt = Callable[[ServeSettings], Plan]


@dataclass(frozen=True)
class ContextPoint:
    """One point of the curve: the plan at one max_model_len."""

    max_model_len: int
    kv_one_request_gib: float  # one full-length request's KV cache
    kv_cache_gib: float
    max_concurrency: float
    fits: bool


def sweep_context(
    spec: ModelSpec,
    gpu,
    quant: str,
    settings: ServeSettings,
    lengths: list[int],
    group_size: int | None = DEFAULT_GROUP_SIZE,
    weights_gib: float | None = None,
    plan_at: PlanAt | None = None,
) -> list[ContextPoint]:
    """Memory and concurrency against max_model_len: one point per length. `plan_at(settings) -> Plan`
    replaces gpu_plan.plan (a calibrated planner, for one)."""
    plan_at = plan_at or (lambda s: plan(spec, gpu, quant, s, group_size, weights_gib))
    points = []
    for length in lengths:
        p = plan_at(replace(settings, max_model_len=length))
        points.append(
            ContextPoint(
                length,
                round(length * p.kv_bytes_per_token / GIB, 2),
                p.gib(p.kv_cache_bytes),
                p.max_concurrency,
                p.fits,
            )
        )
    return points


@dataclass(frozen=True)
class Layout:
    """One tensor × pipeline layout, planned per GPU, and the command that runs it."""

    tp: int
    pp: int
    gpus: int
    nodes: int
    weights_gib_per_gpu: float
    kv_cache_gib_per_gpu: float
    kv_cache_tokens: int
    max_concurrency: float
    fits: bool
    vllm_args: tuple[str, ...]
    command: str


@dataclass(frozen=True)
class ParallelSweep:
    """Every layout planned, the one chosen (None: none holds the model) and the verdict in words."""

    rows: tuple[Layout, ...]
    choice: Layout | None
    verdict: str
    gpus_per_node: int


def sweep_parallel(
    spec: ModelSpec,
    gpu,
    quant: str,
    settings: ServeSettings,
    group_size: int | None = DEFAULT_GROUP_SIZE,
    gpus_per_node: int = 8,
    max_gpus: int = 64,
    plan_at: PlanAt | None = None,
) -> ParallelSweep:
    """Tensor × pipeline parallel layouts, each planned per GPU, and the `choice`: the fewest GPUs that fit, with TP
    inside a node (it needs the fast links) and PP across nodes, as vLLM's docs advise
    (docs/serving/parallelism_scaling.md). Sizes the model's heads do not divide are skipped. PP is taken as an even
    split of the layers; in vLLM the first and last stages also hold the embeddings and lm_head, so those two GPUs
    carry slightly more. `plan_at(settings) -> Plan` replaces gpu_plan.plan (a calibrated planner, for one)."""
    plan_at = plan_at or (lambda s: plan(spec, gpu, quant, s, group_size))
    if gpus_per_node < 1:
        raise ConfigError(f"gpus_per_node={gpus_per_node} must be at least 1.")
    rows = []
    for tp in [t for t in PARALLEL_SIZES if t <= gpus_per_node]:
        for pp in [p for p in (1, 2, 3, 4, 6, 8, 16) if p <= spec.num_layers and tp * p <= max_gpus]:
            try:
                p_ = plan_at(replace(settings, tensor_parallel_size=tp, pipeline_parallel_size=pp))
            except ConfigError:
                continue  # TP does not divide the heads
            gpus, nodes = tp * pp, -(-tp * pp // gpus_per_node)
            flags = replace(p_.flags, distributed_executor_backend="ray") if nodes > 1 else p_.flags
            rows.append(
                Layout(
                    tp,
                    pp,
                    gpus,
                    nodes,
                    p_.gib(p_.weights_bytes),
                    p_.gib(p_.kv_cache_bytes),
                    p_.kv_cache_tokens,
                    p_.max_concurrency,
                    p_.fits,
                    tuple(flags.serve_argv()),
                    flags.command(),
                )
            )
    fitting = sorted((r for r in rows if r.fits), key=lambda r: (r.gpus, -r.tp))
    choice = fitting[0] if fitting else None
    if choice is None:
        verdict = (
            f"no layout of up to {max_gpus} {gpu.name} GPUs holds {spec.name} ({quant}) at "
            f"{settings.max_model_len:,} tokens: quantize further or shorten the context."
        )
    elif choice.nodes > 1:
        verdict = (
            f"{spec.name} ({quant}) needs {choice.gpus} {gpu.name} GPUs: more than one node of "
            f"{gpus_per_node}. Use TP {choice.tp} inside each node and PP {choice.pp} across "
            f"{choice.nodes} nodes, with vLLM's Ray backend (--distributed-executor-backend ray)."
        )
    else:
        verdict = (
            f"{spec.name} ({quant}) fits on {choice.gpus} {gpu.name} GPU{'s' if choice.gpus > 1 else ''}"
            f" of one node: TP {choice.tp}" + (f" × PP {choice.pp}" if choice.pp > 1 else "") + "."
        )
    return ParallelSweep(tuple(rows), choice, verdict, gpus_per_node)
