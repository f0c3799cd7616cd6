"""tune_plan.py is the tuner's planning half: what to benchmark, before any engine starts.

`propose`: the planner builds candidates around vLLM's defaults (max_num_seqs, max_num_batched_tokens, max_model_len,
the KV cache size; on a GPU also gpu_memory_utilization and the KV cache dtype) and prunes, with the reason, every one
that vLLM would refuse to start or that could not hold one request of the workload. It then merges candidates that
must schedule this workload the same way (for example two max_num_seqs values above the concurrency) and keeps one of
each. `defaults` is vLLM's own defaults as a candidate; `dry_run` (`workbench tune --dry-run`) says what would be
benchmarked, what was pruned and why, and what to change when nothing is kept. Arithmetic over the planner: it starts
nothing and measures nothing (tune.py does).
"""

import math
from dataclasses import dataclass, replace

from workbench import settings
from workbench.errors import ConfigError
from workbench.export import Exportable
from workbench.measurement.bench import Workload
from workbench.planner import budget, gpu_plan, vllm_facts
from workbench.serving import hardware, models, vllm_flags
from workbench.serving.engine import EngineConfig, detect_device
from workbench.serving.vllm_flags import ServeFlags

CPU_KV_GIB_MAX = 64  # a sanity bound for VLLM_CPU_KVCACHE_SPACE candidates


# The knobs a candidate turns; every other flag stays at vLLM's default.
KNOBS = (
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
    "cpu_kv_cache_gib",
    "gpu_memory_utilization",
    "kv_cache_dtype",
)


@dataclass(frozen=True)
class Candidate(ServeFlags):
    """One set of serve flags to try (vllm_flags.ServeFlags, turning only the KNOBS); `vllm_defaults`: none of
    them, so that vLLM picks every value itself."""

    vllm_defaults: bool = False

    def label(self) -> str:
        if self.vllm_defaults:
            kv = f"; VLLM_CPU_KVCACHE_SPACE={self.cpu_kv_cache_gib}" if self.cpu_kv_cache_gib is not None else ""
            return f"vLLM defaults (no flags{kv})"
        kv = (
            f"kv {self.cpu_kv_cache_gib} GiB"
            if self.cpu_kv_cache_gib is not None
            else f"gmu {self.gpu_memory_utilization:.2f}"
            + (f" kv {self.kv_cache_dtype}" if self.kv_cache_dtype != "auto" else "")
        )
        return f"seqs {self.max_num_seqs} · batched {self.max_num_batched_tokens} · len {self.max_model_len} · {kv}"

    def serve_line(self, checkpoint: str) -> str:
        return replace(self, model=checkpoint).command()

    def engine_config(self, model: str, startup_timeout_s: float = 600.0, revision: str | None = None) -> EngineConfig:
        return vllm_flags.flags_of(
            self, EngineConfig, model=model, startup_timeout_s=startup_timeout_s, revision=revision
        )


# Why a candidate is pruned, one key per cause: what `--dry-run` groups the refusals by, with the fix.
CAUSES = {
    "batch below seqs": "raise --max-num-batched-tokens to at least --max-num-seqs",
    "no KV cache": "free memory for the KV cache: quantize the weights (--quant gptq-int4), or a larger GPU",
    "one request does not fit": "shorten the workload, use --kv-cache-dtype fp8, or a larger GPU",
    "context below the workload": "a longer max_model_len is among the candidates; nothing to do",
    "same schedule": "nothing to do: a kept candidate schedules the workload the same way",
}


@dataclass(frozen=True)
class Proposal:
    candidate: Candidate
    kv_cache_tokens: int
    requests_in_kv: float  # workload requests (input + output tokens) the KV cache holds at once
    pruned: str | None  # why it is not benchmarked; None: it is
    note: str  # what the planner expects of it
    cause: str | None = None  # the key in CAUSES of why it is pruned

    def as_dict(self) -> dict:
        knobs = {k: getattr(self.candidate, k) for k in KNOBS}
        return {
            **knobs,
            "label": self.candidate.label(),
            "vllm_defaults": self.candidate.vllm_defaults,
            "kv_cache_tokens": self.kv_cache_tokens,
            "requests_in_kv": round(self.requests_in_kv, 2),
            "pruned": self.pruned,
            "cause": self.cause,
            "note": self.note,
        }


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def propose(
    spec,
    workload: Workload,
    concurrency: int,
    device: str = "cpu",
    gpu=None,
    quant: str = "bf16",
    vllm_version: str = vllm_facts.DEFAULT_VLLM_VERSION,
) -> list[Proposal]:
    """Candidates for serving `workload` at `concurrency` requests in flight, each kept or pruned with its
    reason. `gpu` (a hardware.GpuSpec) is needed when device is "gpu". Pure arithmetic."""
    if concurrency < 1:
        raise ConfigError(f"concurrency {concurrency} is not positive. Fix: give the requests in flight, e.g. 4.")
    if device not in ("cpu", "gpu"):
        raise ConfigError(f"device {device!r} is not one of cpu, gpu.")
    if device == "gpu" and gpu is None:
        raise ConfigError(
            "tuning for a GPU needs the GPU. Fix: pass --gpu with a catalog name (for example "
            '"RTX 3090"), with --gpu-total-gib for a card outside the catalog.'
        )
    need = workload.input_len + workload.output_len
    limit = spec.max_position_embeddings or need
    if need > limit:
        raise ConfigError(
            f"input_len {workload.input_len} + output_len {workload.output_len} = {need} tokens exceeds "
            f"{spec.name}'s context of {limit:,} tokens. Fix: shorten the workload."
        )
    default_batched, default_seqs = vllm_flags.batch_defaults(device, gpu)
    block = vllm_facts.CPU_BLOCK_SIZE if device == "cpu" else vllm_facts.BLOCK_SIZE
    fit_len = min(limit, max(_round_up(need, 256), 1024))
    wave = concurrency * workload.input_len  # the prompt tokens of one wave of arrivals

    # the knobs: vLLM's defaults, and the values the workload suggests
    lens = {fit_len, limit}
    seqs = {concurrency, default_seqs}
    batched = {
        max(concurrency, workload.input_len // 2),
        max(concurrency, workload.input_len),
        max(wave + concurrency, 256),
        default_batched,
    }
    if device == "cpu":
        minimal = max(1, math.ceil(concurrency * _round_up(need, block) * budget.kv_bytes_per_token(spec) / budget.GIB))
        kv_options = [dict(cpu_kv_cache_gib=g, device="cpu") for g in sorted({minimal, 4}) if g <= CPU_KV_GIB_MAX]
    else:
        kv_options = [
            dict(gpu_memory_utilization=g, kv_cache_dtype=d, device="gpu")
            for g in (0.90, 0.95)
            for d in ("auto", "fp8")
        ]

    proposals, seen = [], {}
    for n_len in sorted(lens):
        for n_seqs in sorted(seqs):
            for n_batched in sorted(batched):
                for kv in kv_options:
                    c = Candidate(max_model_len=n_len, max_num_seqs=n_seqs, max_num_batched_tokens=n_batched, **kv)
                    p = _judge(spec, c, workload, concurrency, device, gpu, quant, vllm_version, block)
                    key = _schedule_key(p, workload, concurrency)
                    if p.pruned is None and key in seen:  # same schedule as a kept one: say which
                        p = replace(
                            p,
                            pruned=f"schedules this workload as {seen[key].label()} does ({p.note}); kept that one",
                            cause="same schedule",
                        )
                    elif p.pruned is None:
                        seen[key] = c
                    proposals.append(p)
    return proposals


def _judge(
    spec,
    c: Candidate,
    workload: Workload,
    concurrency: int,
    device: str,
    gpu,
    quant: str,
    vllm_version: str,
    block: int,
) -> Proposal:
    need = workload.input_len + workload.output_len
    if device == "cpu":
        kv_tokens = budget.cpu_kv_cache_tokens(spec, c.cpu_kv_cache_gib, c.kv_cache_dtype)
        fits, why = True, ""
    else:
        p = gpu_plan.plan(spec, gpu, quant, vllm_flags.flags_of(c, vllm_facts.ServeSettings, vllm_version=vllm_version))
        kv_tokens, fits, why = p.kv_cache_tokens, p.fits, p.reason
    per_request = _round_up(need, block)
    in_kv = kv_tokens / per_request
    pruned = cause = None
    if c.max_num_batched_tokens < c.max_num_seqs:  # vllm/config/scheduler.py verify_max_model_len
        pruned = (
            f"vLLM refuses to start: max_num_batched_tokens ({c.max_num_batched_tokens}) must be greater than "
            f"or equal to max_num_seqs ({c.max_num_seqs})"
        )
        cause = "batch below seqs"
    elif not fits:
        pruned = f"vLLM refuses to start: {why}"
        cause = "no KV cache" if kv_tokens == 0 else "one request does not fit"
    elif kv_tokens < c.max_model_len:
        pruned = (
            f"vLLM refuses to start: one request of max_model_len {c.max_model_len:,} needs more KV cache than "
            f"the {kv_tokens:,} tokens it holds"
        )
        cause = "one request does not fit"
    elif c.max_model_len < need:
        pruned = f"max_model_len {c.max_model_len} is below the workload's {need} tokens per request: all rejected"
        cause = "context below the workload"
    chunks = math.ceil(workload.input_len / max(1, c.max_num_batched_tokens - (concurrency - 1)))
    running = min(concurrency, c.max_num_seqs)
    note = (
        f"{running} running at once"
        + (f" ({concurrency - running} queued)" if running < concurrency else "")
        + f"; a prompt prefills in {chunks} step{'s' if chunks > 1 else ''}"
        + ("" if in_kv >= concurrency else f"; the KV cache holds {in_kv:.1f} of {concurrency} requests: vLLM preempts")
    )
    return Proposal(c, kv_tokens, in_kv, pruned, note, cause)


def _schedule_key(p: Proposal, workload: Workload, concurrency: int) -> tuple:
    """What decides how vLLM schedules this closed-loop workload: requests running at once, how many
    prompt tokens one step may take (beyond a whole wave all budgets act alike), and whether the KV
    cache holds every running request. max_model_len and spare KV cache change nothing once it fits."""
    c = p.candidate
    wave = concurrency * workload.input_len + concurrency
    return (
        min(c.max_num_seqs, concurrency),
        min(c.max_num_batched_tokens, wave),
        min(p.requests_in_kv, concurrency) >= concurrency,
        c.kv_cache_dtype,
    )


def kept(proposals: list[Proposal]) -> list[Proposal]:
    return [p for p in proposals if p.pruned is None]


def defaults(
    spec,
    workload: Workload,
    concurrency: int,
    device: str = "cpu",
    gpu=None,
    quant: str = "bf16",
    vllm_version: str = vllm_facts.DEFAULT_VLLM_VERSION,
) -> Proposal:
    """vLLM's own defaults as a candidate: no flag beyond the model (on the CPU build the KV cache size, which the
    engine always sets: unset, vLLM would size it from free memory), judged with the values vLLM then picks
    (vllm_flags.batch_defaults, the model's whole context) so that its note says how it schedules the workload."""
    default_batched, default_seqs = vllm_flags.batch_defaults(device, gpu)
    kv = dict(cpu_kv_cache_gib=settings.cpu_kv_cache_gib()) if device == "cpu" else {}
    picked = Candidate(
        max_model_len=spec.max_position_embeddings or workload.input_len + workload.output_len,
        max_num_seqs=default_seqs,
        max_num_batched_tokens=default_batched,
        device=device,
        **(kv or dict(gpu_memory_utilization=0.90)),
    )
    block = vllm_facts.CPU_BLOCK_SIZE if device == "cpu" else vllm_facts.BLOCK_SIZE
    judged = _judge(spec, picked, workload, concurrency, device, gpu, quant, vllm_version, block)
    note = judged.note + (f"; the planner expects: {judged.pruned}" if judged.pruned else "")
    return replace(
        judged, candidate=Candidate(device=device, vllm_defaults=True, **kv), pruned=None, cause=None, note=note
    )


def target(gpu_name: str | None = None, gpu_total_gib: float | None = None) -> tuple[str, "hardware.GpuSpec | None"]:
    """(device, gpu) to tune for: the GPU named (a catalog name, or any with its memory), else this machine's own
    GPU when the CUDA build runs here, else this machine's CPU build."""
    here = detect_device()
    gpu = hardware.find_gpu(gpu_name, gpu_total_gib) if gpu_name else None
    if gpu is None and here == "gpu":
        gpu = hardware.local_gpu_spec()  # this machine's card, to plan and benchmark on
    return ("gpu" if gpu else here), gpu


@dataclass(frozen=True)
class DryRun(Exportable):
    """`workbench tune --dry-run`: the planner's half, for any GPU in the catalog."""

    proposals: tuple[Proposal, ...]
    hints: tuple[str, ...] = ()

    def rows(self) -> list[dict]:
        return [p.as_dict() for p in self.proposals]

    def as_dict(self) -> dict:
        return {"candidates": self.rows(), "hints": list(self.hints)}

    def csv_rows(self) -> tuple[list[str], list[list]]:
        rows = self.rows()
        header = list(rows[0]) if rows else ["label"]
        return header, [[r[k] for k in header] for r in rows]

    def to_text(self) -> str:
        return proposals_text(list(self.proposals), list(self.hints))

    def to_markdown(self) -> str:
        return "```\n" + self.to_text() + "\n```"


def dry_run(
    model: str,
    workload: Workload,
    concurrency: int,
    gpu_name: str | None = None,
    gpu_total_gib: float | None = None,
    quant: str = "bf16",
    revision: str | None = None,
) -> DryRun:
    """Propose and prune for this machine, or for the GPU named; start nothing. `revision`: of a Hub id."""
    spec = models.find_model(model, revision)
    device, gpu = target(gpu_name, gpu_total_gib)
    proposals = propose(spec, workload, concurrency, device, gpu, quant)
    return DryRun(tuple(proposals), tuple(advice(spec, workload, concurrency, device, gpu, quant, proposals)))


def pruned_lines(pruned: list[dict]) -> list[str]:
    """One line per cause: how many candidates, one of them with vLLM's own words, and the fix."""
    lines = []
    for cause, fix in CAUSES.items():
        group = [p for p in pruned if p["cause"] == cause]
        if not group:
            continue
        if cause == "same schedule":
            lines.append(
                f"  = {len(group)} more schedule this workload exactly as a kept candidate does (spare KV "
                "cache, max_model_len or max_num_seqs above the concurrency change nothing here)"
            )
            continue
        first = group[0]
        count = f"{len(group)} candidates" if len(group) > 1 else "1 candidate"
        lines.append(f"  ✗ {count} ({cause}), e.g. {first['label']}: {first['pruned']}")
        lines.append(f"    fix: {fix}")
    return lines


def advice(
    spec, workload: Workload, concurrency: int, device: str, gpu, quant: str, proposals: list[Proposal]
) -> list[str]:
    """What to change when the planner keeps nothing: a 16-bit model whose weights leave no KV cache is planned
    again as GPTQ INT4, and the answer says how many candidates that keeps."""
    if kept(proposals) or device != "gpu" or budget.quant_format(quant).weight_bits < 16:
        return []
    if not any(p.cause == "no KV cache" for p in proposals):
        return []
    weights = budget.weight_bytes(spec, quant) / budget.GIB
    int4 = kept(propose(spec, workload, concurrency, device, gpu, "gptq-int4"))
    int4_weights = budget.weight_bytes(spec, "gptq-int4") / budget.GIB
    then = (
        f"with --quant gptq-int4 ({int4_weights:.2f} GiB) the planner keeps {len(int4)}"
        if int4
        else f"gptq-int4 ({int4_weights:.2f} GiB) does not fit either: take a smaller model or a larger GPU"
    )
    return [
        f"{spec.name}'s {quant} weights ({weights:.2f} GiB) leave no room for a KV cache on one {gpu.name} "
        f"({gpu.total_gib} GiB); {then}."
    ]


def proposals_text(proposals: list[Proposal], hints: list[str] = ()) -> str:
    """`workbench tune --dry-run`: what would be benchmarked, what was pruned and why (once per cause), and
    what to change when nothing is kept."""
    rows = [p.as_dict() for p in proposals]
    lines = [f"{len(rows)} candidates; the planner keeps {len(kept(proposals))}:"]
    lines += [f"  ✓ {r['label']}: {r['note']}" for r in rows if r["pruned"] is None]
    lines.append("pruned:")
    lines += pruned_lines([r for r in rows if r["pruned"] is not None])
    return "\n".join(lines + [f"hint: {h}" for h in hints])
