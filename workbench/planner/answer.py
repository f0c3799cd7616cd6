"""answer.py is what the planner answers a face, one dataclass per kind: a GPU plan (`GpuAnswer`, with the context
curve when asked), the CPU build's plan from its log (`CpuAnswer`), or a tensor × pipeline sweep (`ParallelAnswer`).
Each says the same things its own way: `command`, `ok`, `to_text()` (what `workbench plan` prints),
`to_markdown()` (the Plan tab, a notebook), `as_dict()` (`--json`) and `csv_rows()` (export.py writes them). It
formats; it computes nothing (gpu_plan.py, cpu_plan.py, sweeps.py, fit.py do) and draws nothing (plots.py does).
"""

from dataclasses import asdict, dataclass

from workbench.export import Exportable
from workbench.planner.cpu_plan import CpuPlan
from workbench.planner.fit import Calibration, CpuCheck, LogFit
from workbench.planner.gpu_plan import Plan
from workbench.planner.request import PlanRequest
from workbench.planner.roofline import flag_claims
from workbench.planner.sweeps import ContextPoint, ParallelSweep
from workbench.planner.vllm_facts import CPU_BLOCK_SIZE
from workbench.serving.hardware import GpuSpec
from workbench.serving.model_catalog import ModelSpec


class PlanAnswer(Exportable):
    """What every answer offers a face. `ok` is the answer's yes for the exit status: a plan always answers (it says
    whether it fits); a sweep answers yes when a layout holds the model."""

    @property
    def ok(self) -> bool:
        return True

    @property
    def command(self) -> str:
        """The `vllm serve` line of the answer ("" when there is none)."""
        raise NotImplementedError

    def to_text(self) -> str:
        """What `workbench plan` prints."""
        raise NotImplementedError


def _term_rows(d: dict) -> tuple[list[str], list[list]]:
    """A plan's JSON as (term, value) rows: the scalar terms, not the lists and tables."""
    return ["term", "value"], [[k, v] for k, v in d.items() if not isinstance(v, (dict, list))]


@dataclass(frozen=True)
class GpuAnswer(PlanAnswer):
    """A plan on one GPU (per GPU of its TP × PP layout), calibrated when a log was given, with the curve over
    context lengths when asked for."""

    request: PlanRequest
    spec: ModelSpec
    gpu: GpuSpec
    plan: Plan
    calibration: Calibration | None = None
    curve: tuple[ContextPoint, ...] = ()

    @property
    def claim_flags(self) -> list[str]:
        return flag_claims(self.plan, self.plan.max_model_len, self.request.claim_tok_s, self.request.claim_ttft_s)

    @property
    def command(self) -> str:
        return self.plan.flags.command()

    @property
    def weights_source(self) -> str:
        """Where the plan's weights come from: measured, the safetensors headers, or the architecture."""
        if self.request.weights_gib is not None:
            return "measured (--weights-gib)"
        return self.spec.weights_source or f"computed from {self.spec.name}'s config facts (the catalog)"

    def as_dict(self) -> dict:
        out = dict(self.plan.as_dict(), claim_flags=self.claim_flags, weights_source=self.weights_source)
        if self.calibration is not None:
            out.update(self.calibration.json_fields())
        return out

    def csv_rows(self) -> tuple[list[str], list[list]]:
        return _term_rows(self.as_dict())

    def to_markdown(self) -> str:
        text = self.plan.to_markdown()
        if self.calibration is not None:
            text += _calibration_markdown(self.calibration)
        return text

    def to_text(self) -> str:
        result, length = self.plan, self.plan.max_model_len
        d = result.as_dict()
        lines = [f"{result.model} · {result.quant} on {result.gpu} · max_model_len {length:,} (per GPU)"]
        lines += [f"  {label:<31} {d[key]:>6.2f} GiB" for key, label in result.terms()]
        r = result.kv_cache_gib_range
        lines += [
            f"  {'KV cache tokens':<31} {result.kv_cache_tokens:>6,} ({result.kv_bytes_per_token:,} B each)",
            f"  {f'requests of {length:,} at once':<31} {result.max_concurrency:>6.2f}",
            f"  KV cache from {r.pessimistic:.2f} GiB (pessimistic overheads) to {r.optimistic:.2f} GiB (optimistic)",
            f"  {result.roofline(length)}",
            ("FITS: " if result.fits else "DOES NOT FIT: ") + result.reason,
        ]
        lines += [f"warning: {line}" for line in result.warnings]
        lines += [f"suggestion: {line}" for line in result.suggestions]
        lines += [f"IMPOSSIBLE CLAIM: {line}" for line in self.claim_flags]
        lines += [
            "command: " + result.flags.command(),
            "checkpoint: " + result.checkpoint_note,
            "weights: " + self.weights_source,
        ]
        if self.calibration is not None:
            lines += _calibration_lines(self.calibration)
        return "\n".join(lines)


@dataclass(frozen=True)
class CpuAnswer(PlanAnswer):
    """The CPU build's plan for a KV cache space, from its start-up log, with the log's check of the arithmetic."""

    request: PlanRequest
    spec: ModelSpec
    plan: CpuPlan
    calibration: CpuCheck

    @property
    def command(self) -> str:
        return self.plan.flags.command()

    def as_dict(self) -> dict:
        return self.plan.as_dict() | self.calibration.json_fields()

    def csv_rows(self) -> tuple[list[str], list[list]]:
        return _term_rows(self.as_dict())

    def to_markdown(self) -> str:
        p = self.plan
        return (
            f"### {'✅ fits' if p.fits else '❌ does not fit'}: {self.spec.name} on the CPU build\n"
            f"VLLM_CPU_KVCACHE_SPACE={p.kv_cache_gib:g} GiB holds **{p.kv_cache_tokens:,}** tokens "
            f"({p.kv_bytes_per_token:,} B each, blocks of {CPU_BLOCK_SIZE}); max concurrency at "
            f"{p.max_model_len:,}: **{p.max_concurrency:.2f}**. Set another space with "
            "`workbench plan --calibrate-from LOG --kv-space-gib N`." + _calibration_markdown(self.calibration)
        )

    def to_text(self) -> str:
        p = self.plan
        lines = [
            f"{self.spec.name} on the CPU build · VLLM_CPU_KVCACHE_SPACE={p.kv_cache_gib:g} · "
            f"max_model_len {p.max_model_len:,}",
            f"  kv_cache_tokens {p.kv_cache_tokens:,} ({p.kv_bytes_per_token:,} B per token, "
            f"blocks of {CPU_BLOCK_SIZE}); max concurrency {p.max_concurrency:.2f}",
        ]
        return "\n".join(lines + _calibration_lines(self.calibration))


@dataclass(frozen=True)
class ParallelAnswer(PlanAnswer):
    """Tensor × pipeline layouts on one GPU model, each planned per GPU, and the one chosen."""

    request: PlanRequest
    spec: ModelSpec
    gpu: GpuSpec
    sweep: ParallelSweep
    calibration: Calibration | None = None

    @property
    def ok(self) -> bool:
        return self.sweep.choice is not None

    @property
    def command(self) -> str:
        return self.sweep.choice.command if self.sweep.choice else ""

    def as_dict(self) -> dict:
        return asdict(self.sweep)

    def csv_rows(self) -> tuple[list[str], list[list]]:
        keys = [
            "tp",
            "pp",
            "gpus",
            "nodes",
            "weights_gib_per_gpu",
            "kv_cache_gib_per_gpu",
            "kv_cache_tokens",
            "max_concurrency",
            "fits",
            "command",
        ]
        return keys, [[getattr(r, k) for k in keys] for r in self.sweep.rows]

    def to_markdown(self) -> str:
        rows = [
            "| TP | PP | GPUs | nodes | weights GiB | KV GiB | KV tokens | requests | fits |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        rows += [
            f"| {r.tp} | {r.pp} | {r.gpus} | {r.nodes} | {r.weights_gib_per_gpu:.2f} | "
            f"{r.kv_cache_gib_per_gpu:.2f} | {r.kv_cache_tokens:,} | {r.max_concurrency:.2f} | "
            f"{'yes' if r.fits else 'no'} |"
            for r in self.sweep.rows
        ]
        return f"**{self.sweep.verdict}**\n\n" + "\n".join(rows) + (f"\n\n`{self.command}`" if self.command else "")

    def to_text(self) -> str:
        sweep, req = self.sweep, self.request
        lines = [
            f"{self.spec.name} · {req.quant} on {self.gpu.name} · max_model_len "
            f"{req.settings.max_model_len:,} · {sweep.gpus_per_node} GPUs per node (memory per GPU)",
            f"{'TP':>3} {'PP':>3} {'GPUs':>5} {'nodes':>5} {'weights GiB':>12} {'KV GiB':>8} {'KV tokens':>10} "
            f"{'requests':>9}  fits",
        ]
        lines += [
            f"{r.tp:>3} {r.pp:>3} {r.gpus:>5} {r.nodes:>5} {r.weights_gib_per_gpu:>12.2f} "
            f"{r.kv_cache_gib_per_gpu:>8.2f} {r.kv_cache_tokens:>10,} {r.max_concurrency:>9.2f}  "
            f"{'yes' if r.fits else 'no'}"
            for r in sweep.rows
        ]
        lines.append(sweep.verdict)
        if sweep.choice:
            lines.append("command: " + sweep.choice.command)
        if self.calibration is not None:
            lines += _calibration_lines(self.calibration)
        return "\n".join(lines)


# -- a calibration, in words --------------------------------------------------------------------------------
def _calibration_lines(fit: LogFit) -> list[str]:
    cal = fit.as_dict()
    facts = {k: v for k, v in cal["facts"].items() if v is not None}
    lines = [
        "calibrated from the log: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
        "  fitted: " + ", ".join(f"{k} {v}" for k, v in cal["fitted_terms"].items()),
    ]
    lines += [f"  recomputed {line}" for line in _recomputed(cal)]
    if cal["residual"]:
        lines.append("  on the log itself: " + ", ".join(f"{k} {v:+}" for k, v in cal["residual"].items()))
    return lines + [f"  note: {note}" for note in cal["notes"]]


def _calibration_markdown(fit: LogFit) -> str:
    cal = fit.as_dict()
    facts = ", ".join(f"{k} {v}" for k, v in cal["facts"].items() if v is not None)
    lines = [
        "",
        "#### Calibrated from your start-up log",
        f"- the log: {facts}",
        "- fitted: " + ", ".join(f"{k} {v}" for k, v in cal["fitted_terms"].items()),
    ]
    lines += [f"- recomputed {line}" for line in _recomputed(cal)]
    if cal["residual"]:
        lines.append("- on the log itself: " + ", ".join(f"{k} {v:+}" for k, v in cal["residual"].items()))
    lines += [f"- ⚠️ {note}" for note in cal["notes"]]
    return "\n".join(lines)


def _recomputed(cal: dict) -> list[str]:
    """The profile peaks computed for the log's run and for the plan (GPU logs), one line each."""
    out = []
    for where, p in cal.get("recomputed_terms", {}).items():
        out.append(
            f"for the {where} ({p['model']}, vLLM {p['vllm_version']}, {p['model_runner']} model runner): "
            f"forward {p['forward_gib']} GiB ({p['max_num_batched_tokens']:,} tokens), sampler "
            f"{p['sampler_gib']} GiB ({p['max_num_seqs']:,} rows × {p['sampler_bytes_per_logit']} B per "
            f"logit), peak {p['peak_gib']} GiB"
        )
    return out
