"""tune.py finds the engine flags that serve a stated workload best.

1. `propose`: the planner builds candidates around vLLM's defaults (max_num_seqs, max_num_batched_tokens,
   max_model_len, the KV cache size; on a GPU also gpu_memory_utilization and the KV cache dtype) and
   prunes, with the reason, every one that vLLM would refuse to start or that could not hold one request
   of the workload. It then merges candidates that must schedule this workload the same way (for
   example two max_num_seqs values above the concurrency) and keeps one of each.
2. `tune`: vLLM's own defaults (no flag beyond the model, and on the CPU build the KV cache size the engine
   must set) and each remaining candidate are started, warmed up, benchmarked with bench.run (repeated for
   intervals), stopped, and ranked by goodput under the SLOs, then by output tokens/s. The winner's `vllm serve`
   line is printed, and `vs_defaults` says how much better it is than vLLM's defaults: the ratio of its goodput
   and throughput over theirs, with a 95 % interval over the repeats.

vLLM's own benchmarks/auto_tune/auto_tune.sh sweeps max_num_seqs × max_num_batched_tokens blindly and
starts every point; here the planner removes what cannot start, and what cannot change the schedule,
before any engine starts. Knows nothing about the UI.
"""

import math
import os
from dataclasses import asdict, dataclass, replace

from workbench import bench, hardware, models, settings, stats, vllm_flags
from workbench.bench import SLO, Workload
from workbench.engine import Engine, EngineConfig, detect_device
from workbench.errors import ConfigError
from workbench.export import Exportable
from workbench.planner import budget, gpu_plan, vllm_facts
from workbench.vllm_flags import ServeFlags

CPU_KV_GIB_MAX = 64  # a sanity bound for VLLM_CPU_KVCACHE_SPACE candidates
GOAL = 0.20  # the gain over vLLM's defaults worth tuning for


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


class TuneReport(Exportable, dict):
    """tune's result, a plain dict: what was pruned, the benchmarked candidates ranked, why, the winner's line."""

    def as_dict(self) -> dict:
        return dict(self)

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = ["rank", "label", "goodput_req_s", "output_tok_s", "ttft_p50_ms", "tpot_p50_ms", "error"]
        rows = []
        for n, e in enumerate(self["ranked"], 1):
            lv = e["level"] or {}
            rows.append(
                [
                    n,
                    e["label"],
                    lv.get("goodput_req_s"),
                    lv.get("output_tok_s"),
                    (lv.get("ttft_ms") or {}).get("p50"),
                    (lv.get("tpot_ms") or {}).get("p50"),
                    e["error"],
                ]
            )
        return header, rows

    def to_markdown(self) -> str:
        return "```\n" + self.to_text() + "\n```"

    def to_text(self) -> str:
        lines = [
            f"{self['model']} on {self['gpu'] or self['device']} · {self['workload']['input_len']} in / "
            f"{self['workload']['output_len']} out tokens · concurrency {self['concurrency']}",
            f"pruned by the planner ({len(self['pruned'])}):",
            *_pruned_lines(self["pruned"]),
        ]
        lines.append(f"{'rank':<5} {'candidate':<52} {'goodput':>8} {'tok/s':>7} {'TTFT p50':>9} {'TPOT p50':>9}")
        for n, e in enumerate(self["ranked"], 1):
            lv = e["level"]
            if lv is None:
                lines.append(f"{n:<5} {e['label']:<52} failed: {e['error']}")
            else:
                lines.append(
                    f"{n:<5} {e['label']:<52} {lv['goodput_req_s']:>8.3f} {lv['output_tok_s']:>7.1f} "
                    f"{lv['ttft_ms']['p50']:>9.0f} {lv['tpot_ms']['p50']:>9.1f}"
                )
        lines += ["", self["explanation"]]
        where = next((e["placement"] for e in self["ranked"] if e.get("placement")), None)
        if where:
            lines += [
                "",
                f"CPUs: {where['note']}" + ("; give tune --server-cpus to pin its engines" if where["overlap"] else ""),
            ]
        vs = self.get("vs_defaults")
        if vs:
            tok = vs.get("output_tok_s")
            lines += [
                "",
                f"over {vs['defaults']}: {vs['verdict']}"
                + (
                    f" Output tokens/s ×{tok['ratio']:.3f}"
                    + (f" ({tok['ci_low']:.3f}–{tok['ci_high']:.3f})." if tok["ci_low"] is not None else ".")
                    if tok and not vs.get("winner_is_defaults")
                    else ""
                ),
            ]
        if self["serve"]:
            lines += ["", "winner:", f"  {self['serve']}"]
        return "\n".join(lines)


def tune(
    model: str,
    workload: Workload,
    concurrency: int,
    slo: SLO,
    gpu_name: str | None = None,
    gpu_total_gib: float | None = None,
    quant: str = "bf16",
    max_candidates: int | None = None,
    warmup: int = 2,
    on_event=print,
    repeats: int = 1,
    client_cpus: "set[int] | None" = None,
    server_cpus: "set[int] | None" = None,
    revision: str | None = None,
) -> TuneReport:
    """Start, benchmark and rank vLLM's defaults and every kept candidate (or the first `max_candidates`), each
    level `repeats` times. A candidate that fails to start is reported, never fatal. `on_event(str)` hears what
    happens. `server_cpus` pins the engines it starts and `client_cpus` the benchmark (one given, the other gets
    the rest of this process's CPUs). A GPU named on a machine without one is refused: nothing could be benchmarked
    (`dry_run` plans for it). `revision`: of a Hub id, for every engine it starts."""
    spec = models.find_model(model, revision)
    device, gpu = target(gpu_name, gpu_total_gib)
    if gpu_name and detect_device() != "gpu":
        raise ConfigError(
            f"--gpu {gpu_name} plans for a GPU, but this machine has none to benchmark on. "
            "Fix: add --dry-run to see the planner's candidates, or run it on that GPU."
        )
    if repeats < 1:
        raise ConfigError(f"repeats {repeats} is not positive. Fix: 1, or 3 for intervals over the runs.")
    here = os.sched_getaffinity(0)  # one side given: the other gets the rest (engines started here inherit ours)
    if server_cpus and not client_cpus:
        client_cpus = (here - set(server_cpus)) or None
    elif client_cpus and not server_cpus:
        server_cpus = (here - set(client_cpus)) or None
    version = _vllm_version()
    proposals = propose(spec, workload, concurrency, device, gpu, quant, version)
    runs = [
        defaults(spec, workload, concurrency, device, gpu, quant, version),
        *(kept(proposals)[:max_candidates] if max_candidates else kept(proposals)),
    ]
    on_event(
        f"{len(proposals)} candidates, {len(proposals) - len(kept(proposals))} pruned by the planner; "
        f"benchmarking {len(runs) - 1} and vLLM's defaults" + (f", {repeats} runs each" if repeats > 1 else "")
    )
    results = []
    for i, p in enumerate(runs, 1):
        c = p.candidate
        on_event(f"[{i}/{len(runs)}] starting {c.label()} ...")
        entry = {**p.as_dict(), "error": None, "level": None}
        engine = None
        try:
            engine = Engine(c.engine_config(model, revision=revision))
            with bench.pinned(server_cpus):  # the engine and its children inherit these CPUs
                engine.start()
            if warmup:
                bench.run(
                    engine.base_url,
                    replace(workload, num_prompts=warmup, seed=workload.seed + 1),
                    concurrency=[min(warmup, concurrency)],
                    warmup=0,
                    client_cpus=client_cpus,
                )
            report = bench.run(
                engine.base_url,
                workload,
                concurrency=[concurrency],
                slo=slo,
                repeats=repeats,
                client_cpus=client_cpus,
                server_pid=engine.process.pid,
            )
            entry["level"] = report["levels"][0]
            entry["server"] = report["server"]
            entry["placement"] = report["placement"]
        except Exception as exc:  # noqa: BLE001 - one candidate failing is a result, not the end of the run
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            if engine is not None:
                engine.stop()
        lv = entry["level"]
        on_event(
            f"[{i}/{len(runs)}] "
            + (
                f"failed: {entry['error']}"
                if lv is None
                else f"goodput {lv['goodput_req_s']:.3f} req/s, {lv['output_tok_s']:.1f} tok/s, "
                f"TTFT p50 {lv['ttft_ms']['p50']:.0f} ms, TPOT p50 {lv['tpot_ms']['p50']:.1f} ms"
            )
        )
        results.append(entry)
    order = sorted(range(len(results)), key=lambda n: _rank_key(results[n]))
    ranked = [results[n] for n in order]
    winner = runs[order[0]].candidate if ranked and ranked[0]["level"] else None
    return TuneReport(
        model=spec.name,
        device=device,
        gpu=getattr(gpu, "name", None),
        workload=asdict(workload),
        concurrency=concurrency,
        slo=asdict(slo),
        repeats=repeats,
        pruned=[p.as_dict() for p in proposals if p.pruned is not None],
        ranked=ranked,
        explanation=explain(ranked, slo),
        vs_defaults=vs_defaults(ranked),
        serve=winner.serve_line(_checkpoint(spec, model, quant, revision)) if winner else None,
    )


def _runs(entry: dict, key: str) -> list[float]:
    """A benchmarked candidate's value of `key` in each repeated run (one value without repeats)."""
    ci = entry["level"].get("repeat_ci")
    return list(ci[key]["runs"]) if ci else [entry["level"][key]]


def vs_defaults(ranked: list[dict], goal: float = GOAL) -> dict | None:
    """The winner's goodput and output throughput over vLLM's defaults': the ratio of their means over the repeats,
    with a 95 % interval (stats.ratio_interval; None with a single run), and a sentence saying whether the gain
    reaches `goal`, or that the workload leaves no room. None when vLLM's defaults were not benchmarked."""
    base = next((e for e in ranked if e.get("vllm_defaults")), None)
    done = [e for e in ranked if e["level"]]
    if base is None:
        return None
    if not base["level"] or not done:
        return {
            "defaults": base["label"],
            "winner": done[0]["label"] if done else None,
            "goodput_req_s": None,
            "output_tok_s": None,
            "verdict": f"vLLM's defaults did not finish ({base['error']}): no ratio.",
        }
    win = done[0]
    out = {"defaults": base["label"], "winner": win["label"], "winner_is_defaults": win is base}
    for key in ("goodput_req_s", "output_tok_s"):
        ratio, low, high = stats.ratio_interval(_runs(base, key), _runs(win, key))
        out[key] = (
            None
            if ratio != ratio
            else {  # NaN: the defaults' mean was 0 (no request met the SLOs)
                "ratio": round(ratio, 4),
                "ci_low": None if low is None else round(low, 4),
                "ci_high": None if high is None else round(high, 4),
            }
        )
    g = out["goodput_req_s"]
    if win is base:
        verdict = "vLLM's defaults win: no candidate beat them on this workload, so there is nothing to tune here."
    elif g is None:
        verdict = (
            f"vLLM's defaults met no SLO and {win['label']} did: tuning is what makes this workload servable here."
        )
    else:
        shown = f"×{g['ratio']:.3f}" + (
            f" ({g['ci_low']:.3f}–{g['ci_high']:.3f})" if g["ci_low"] is not None else " (one run: no interval)"
        )
        if g["ci_low"] is not None and g["ci_low"] <= 1 <= g["ci_high"]:
            verdict = (
                f"goodput {shown} of vLLM's defaults: no measurable gain, the workload leaves no room beyond "
                "what vLLM picks itself."
            )
        elif g["ratio"] >= 1 + goal:
            verdict = f"goodput {shown} of vLLM's defaults: at least the {goal:.0%} gain aimed for."
        else:
            verdict = (
                f"goodput {shown} of vLLM's defaults: below the {goal:.0%} gain aimed for; the workload "
                "leaves little room beyond what vLLM picks itself."
            )
    out["verdict"] = verdict
    return out


def _vllm_version() -> str:
    build = hardware.vllm_build()
    return (hardware.package_version(build) if build else None) or vllm_facts.DEFAULT_VLLM_VERSION


def _rank_key(entry: dict):
    lv = entry["level"]
    if lv is None:
        return (1, 0.0, 0.0)
    return (0, -lv["goodput_req_s"], -lv["output_tok_s"])


def _checkpoint(spec, model: str, quant: str, revision: str | None = None) -> str:
    try:
        return str(models.resolve_model(model, revision))
    except Exception:  # noqa: BLE001 - not on this machine: the catalog's checkpoint
        return gpu_plan.serve_checkpoint(spec, quant)[0]


def explain(ranked: list[dict], slo: SLO) -> str:
    """Why the winner won, in a sentence or two."""
    done = [e for e in ranked if e["level"]]
    if not done:
        return "no candidate finished its benchmark; see each one's error."
    slos = (
        ", ".join(
            s
            for s in (
                f"TTFT ≤ {slo.ttft_ms:g} ms" if slo.ttft_ms else "",
                f"TPOT ≤ {slo.tpot_ms:g} ms" if slo.tpot_ms else "",
            )
            if s
        )
        or "no SLO given"
    )
    w = done[0]
    lv = w["level"]
    text = (
        f"Ranked by goodput ({slos}), then output tokens/s. {w['label']} wins with "
        f"{lv['goodput_req_s']:.3f} req/s goodput ({lv['met_slo']}/{lv['completed']} requests met the SLOs) and "
        f"{lv['output_tok_s']:.1f} tok/s; the planner expected: {w['note']}."
    )
    if len(done) > 1:
        r = done[1]["level"]
        gain = (lv["goodput_req_s"] / r["goodput_req_s"] - 1) * 100 if r["goodput_req_s"] else None
        text += (
            f" Runner-up {done[1]['label']}: {r['goodput_req_s']:.3f} req/s"
            + (f" ({gain:+.1f} % for the winner)" if gain is not None else "")
            + f", TTFT p50 {r['ttft_ms']['p50']:.0f} vs {lv['ttft_ms']['p50']:.0f} ms, TPOT p50 "
            f"{r['tpot_ms']['p50']:.1f} vs {lv['tpot_ms']['p50']:.1f} ms."
        )
    return text


def _pruned_lines(pruned: list[dict]) -> list[str]:
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
    lines += _pruned_lines([r for r in rows if r["pruned"] is not None])
    return "\n".join(lines + [f"hint: {h}" for h in hints])
