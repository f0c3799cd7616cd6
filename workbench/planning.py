"""planning.py answers what a face asks the planner, in one call each.

`plan(PlanRequest)`: a model on a GPU, with or without a start-up log to calibrate to (GPU or CPU build),
optionally swept over context lengths (the Plan tab's curve) or over tensor × pipeline layouts (`--parallel`).
`compare(url, ...)`: the planner against a running engine. `workbench plan`, the Plan tab and the Jupyter
planner each make one request and print, draw or show the `PlanAnswer`. The arithmetic is memory.py's and the
fitting calibrate.py's; this module only decides which of them a request needs, in one place.
"""

from dataclasses import dataclass, field, replace

from workbench import calibrate, hardware, memory, models
from workbench.client import Client
from workbench.errors import ConfigError, WorkbenchError
from workbench.export import Exportable

DEFAULT_GPU = "RTX 3090"
CONTEXTS = (2048, 4096, 8192, 16384, 24576, 32768, 40960, 65536, 131072)  # the curve's points


@dataclass(frozen=True)
class PlanRequest:
    """What a person asks. `gpu` None: the log's GPU when a log gives its memory, else RTX 3090. `vllm_version`
    None: the log's, else memory.DEFAULT_VLLM_VERSION. A log is a file (`log_path`) or its text (`log_text`)."""

    model: str = "Qwen3-14B"  # a reference models.find_model reads: catalog name, folder or Hub id
    revision: str | None = None  # of a Hub id
    gpu: str | None = None
    gpu_total_gib: float | None = None
    bandwidth_gbs: float | None = None
    quant: str | None = None  # None: the format the checkpoint declares, else bf16
    group_size: int | None = memory.DEFAULT_GROUP_SIZE
    settings: memory.ServeSettings = field(default_factory=memory.ServeSettings)
    vllm_version: str | None = None
    weights_gib: float | None = None
    log_path: str | None = None
    log_text: str | None = None
    log_source: str | None = None  # how errors name the log ("the uploaded log"); default: as the CLI flag
    log_model: str | None = None  # the log's model, when the log's own name for it cannot be resolved here
    kv_space_gib: float | None = None  # with a CPU-build log: the VLLM_CPU_KVCACHE_SPACE to plan
    parallel: bool = False
    gpus_per_node: int = 8
    curve: bool = False  # also sweep max_model_len over CONTEXTS
    claim_tok_s: float | None = None
    claim_ttft_s: float | None = None


@dataclass(frozen=True)
class PlanAnswer(Exportable):
    """One of: a GPU plan (`plan`, with `calibration` when a log was given), a CPU-build log's plan (`cpu`), or a
    parallel sweep (`parallel`); `curve` holds the context sweep when asked for."""

    request: PlanRequest
    spec: models.ModelSpec
    gpu: hardware.GpuSpec | None = None
    plan: memory.Plan | None = None
    calibration: calibrate.Calibration | None = None
    cpu: dict | None = None
    parallel: dict | None = None
    curve: tuple[dict, ...] = ()

    @property
    def claim_flags(self) -> list[str]:
        if self.plan is None:
            return []
        return memory.flag_claims(self.plan, self.plan.max_model_len, self.request.claim_tok_s,
                                  self.request.claim_ttft_s)

    @property
    def command(self) -> str:
        """The `vllm serve` line of the answer."""
        if self.cpu is not None:
            return self.cpu["command"]
        if self.parallel is not None:
            return self.parallel["choice"]["command"] if self.parallel["choice"] else ""
        return self.plan.flags.command()

    @property
    def weights_source(self) -> str:
        """Where the plan's weights come from: measured, the safetensors headers, or the architecture."""
        if self.request.weights_gib is not None:
            return "measured (--weights-gib)"
        return self.spec.weights_source or f"computed from {self.spec.name}'s config facts (the catalog)"

    @property
    def ok(self) -> bool:
        """The answer says yes: the plan fits, or the sweep found a layout."""
        if self.parallel is not None:
            return self.parallel["choice"] is not None
        return True

    def as_dict(self) -> dict:
        """What `workbench plan --json` prints."""
        if self.cpu is not None:
            return self.cpu
        if self.parallel is not None:
            return self.parallel
        out = dict(self.plan.as_dict(), claim_flags=self.claim_flags, weights_source=self.weights_source)
        if self.calibration is not None:
            out.update(self.calibration.json_fields())
        return out

    def csv_rows(self) -> tuple[list[str], list[list]]:
        if self.parallel is not None:
            keys = ["tp", "pp", "gpus", "nodes", "weights_gib_per_gpu", "kv_cache_gib_per_gpu", "kv_cache_tokens",
                    "max_concurrency", "fits", "command"]
            return keys, [[r[k] for k in keys] for r in self.parallel["rows"]]
        d = self.as_dict()
        keys = [k for k, v in d.items() if not isinstance(v, (dict, list))]
        return ["term", "value"], [[k, d[k]] for k in keys]

    def to_markdown(self) -> str:
        if self.cpu is not None:
            out = self.cpu
            return (f"### {'✅ fits' if out['fits'] else '❌ does not fit'}: {self.spec.name} on the CPU build\n"
                    f"VLLM_CPU_KVCACHE_SPACE={out['kv_cache_gib']:g} GiB holds **{out['kv_cache_tokens']:,}** tokens "
                    f"({out['kv_bytes_per_token']:,} B each, blocks of {memory.CPU_BLOCK_SIZE}); max concurrency at "
                    f"{out['max_model_len']:,}: **{out['max_concurrency']:.2f}**. Set another space with "
                    "`workbench plan --calibrate-from LOG --kv-space-gib N`."
                    + _calibration_markdown(out["calibration"]))
        if self.parallel is not None:
            rows = ["| TP | PP | GPUs | nodes | weights GiB | KV GiB | KV tokens | requests | fits |",
                    "|---|---|---|---|---|---|---|---|---|"]
            rows += [f"| {r['tp']} | {r['pp']} | {r['gpus']} | {r['nodes']} | {r['weights_gib_per_gpu']:.2f} | "
                     f"{r['kv_cache_gib_per_gpu']:.2f} | {r['kv_cache_tokens']:,} | {r['max_concurrency']:.2f} | "
                     f"{'yes' if r['fits'] else 'no'} |" for r in self.parallel["rows"]]
            return f"**{self.parallel['verdict']}**\n\n" + "\n".join(rows) + (f"\n\n`{self.command}`" if self.command
                                                                            else "")
        text = self.plan.to_markdown()
        if self.calibration is not None:
            text += _calibration_markdown(self.calibration.as_dict())
        return text

    def to_text(self) -> str:
        """What `workbench plan` prints."""
        if self.cpu is not None:
            out = self.cpu
            lines = [f"{self.spec.name} on the CPU build · VLLM_CPU_KVCACHE_SPACE={out['kv_cache_gib']:g} · "
                     f"max_model_len {out['max_model_len']:,}",
                     f"  kv_cache_tokens {out['kv_cache_tokens']:,} ({out['kv_bytes_per_token']:,} B per token, "
                     f"blocks of {memory.CPU_BLOCK_SIZE}); max concurrency {out['max_concurrency']:.2f}"]
            return "\n".join(lines + _calibration_lines(out["calibration"]))
        if self.parallel is not None:
            return self._parallel_text()
        result, length = self.plan, self.plan.max_model_len
        d = result.as_dict()
        lines = [f"{result.model} · {result.quant} on {result.gpu} · max_model_len {length:,} (per GPU)"]
        lines += [f"  {key:<18} {d[key]:>8.2f}" for key in
                  ("requested_gib", "weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib", "kv_cache_gib")]
        r = result.kv_cache_gib_range
        lines += [f"  {'kv_bytes_per_token':<18} {result.kv_bytes_per_token:>8,}",
                  f"  {'kv_cache_tokens':<18} {result.kv_cache_tokens:>8,}",
                  f"  {'max_concurrency':<18} {result.max_concurrency:>8.2f}",
                  f"  kv_cache_gib range {r.pessimistic:.2f} (pessimistic) to {r.optimistic:.2f} (optimistic)",
                  f"  {result.roofline(length)}",
                  ("FITS: " if result.fits else "DOES NOT FIT: ") + result.reason]
        lines += [f"warning: {line}" for line in result.warnings]
        lines += [f"suggestion: {line}" for line in result.suggestions]
        lines += [f"IMPOSSIBLE CLAIM: {line}" for line in self.claim_flags]
        lines += ["command: " + result.flags.command(), "checkpoint: " + result.checkpoint_note,
                  "weights: " + self.weights_source]
        if self.calibration is not None:
            lines += _calibration_lines(self.calibration.as_dict())
        return "\n".join(lines)

    def _parallel_text(self) -> str:
        sweep, req = self.parallel, self.request
        lines = [f"{self.spec.name} · {req.quant} on {self.gpu.name} · max_model_len {req.settings.max_model_len:,} · "
                 f"{sweep['gpus_per_node']} GPUs per node (memory per GPU)",
                 f"{'TP':>3} {'PP':>3} {'GPUs':>5} {'nodes':>5} {'weights GiB':>12} {'KV GiB':>8} {'KV tokens':>10} "
                 f"{'requests':>9}  fits"]
        lines += [f"{r['tp']:>3} {r['pp']:>3} {r['gpus']:>5} {r['nodes']:>5} {r['weights_gib_per_gpu']:>12.2f} "
                  f"{r['kv_cache_gib_per_gpu']:>8.2f} {r['kv_cache_tokens']:>10,} {r['max_concurrency']:>9.2f}  "
                  f"{'yes' if r['fits'] else 'no'}" for r in sweep["rows"]]
        lines.append(sweep["verdict"])
        if sweep["choice"]:
            lines.append("command: " + sweep["choice"]["command"])
        if self.calibration is not None:
            lines += _calibration_lines(self.calibration.as_dict())
        return "\n".join(lines)


def _calibration_lines(cal: dict) -> list[str]:
    facts = {k: v for k, v in cal["facts"].items() if v is not None}
    lines = ["calibrated from the log: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
             "  fitted: " + ", ".join(f"{k} {v}" for k, v in cal["fitted_terms"].items())]
    lines += [f"  recomputed {line}" for line in _recomputed(cal)]
    if cal["residual"]:
        lines.append("  on the log itself: " + ", ".join(f"{k} {v:+}" for k, v in cal["residual"].items()))
    return lines + [f"  note: {note}" for note in cal["notes"]]


def _calibration_markdown(cal: dict) -> str:
    facts = ", ".join(f"{k} {v}" for k, v in cal["facts"].items() if v is not None)
    lines = ["", "#### Calibrated from your start-up log", f"- the log: {facts}",
             "- fitted: " + ", ".join(f"{k} {v}" for k, v in cal["fitted_terms"].items())]
    lines += [f"- recomputed {line}" for line in _recomputed(cal)]
    if cal["residual"]:
        lines.append("- on the log itself: " + ", ".join(f"{k} {v:+}" for k, v in cal["residual"].items()))
    lines += [f"- ⚠️ {note}" for note in cal["notes"]]
    return "\n".join(lines)


def _recomputed(cal: dict) -> list[str]:
    """The profile peaks computed for the log's run and for the plan (GPU logs), one line each."""
    out = []
    for where, p in cal.get("recomputed_terms", {}).items():
        out.append(f"for the {where} ({p['model']}, vLLM {p['vllm_version']}, {p['model_runner']} model runner): forward "
                   f"{p['forward_gib']} GiB ({p['max_num_batched_tokens']:,} tokens), sampler {p['sampler_gib']} GiB "
                   f"({p['max_num_seqs']:,} rows × {p['sampler_bytes_per_logit']} B per logit), peak {p['peak_gib']} GiB")
    return out


def _log_facts(request: PlanRequest) -> "calibrate.LogFacts | None":
    if request.log_path:
        return calibrate.read_log_file(request.log_path, request.log_source)
    if request.log_text and request.log_text.strip():
        return calibrate.read_log(request.log_text, request.log_source or "the pasted log")
    return None


def _gpu(request: PlanRequest, facts) -> hardware.GpuSpec | None:
    if request.gpu is not None and facts is not None:
        calibrate.check_gpu(facts, request.gpu, request.gpu_total_gib)
    total = request.gpu_total_gib or (facts.total_gib if facts else None)
    if request.gpu is not None or facts is None:
        return hardware.find_gpu(request.gpu or DEFAULT_GPU, total, request.bandwidth_gbs)
    # a log without a GPU named: its own memory; without that either, calibrate.fit says which flag to add
    return hardware.GpuSpec("the log's GPU", total, request.bandwidth_gbs or 0.0, 0.0, "?") if total else None


def checkpoint_format(spec: models.ModelSpec, quant: str | None, weights_gib: float | None = None) -> str:
    """The format to plan: the one the checkpoint declares (its quantization_config), else the asked one, else
    bf16. A declaration the planner cannot read is refused unless the weights are known."""
    if spec.declared_format:
        return spec.declared_format
    if spec.declared_quant and spec.weight_bytes is None and weights_gib is None:
        raise ConfigError(f"{spec.name} declares quant_method {spec.declared_quant!r} in its config.json, a format "
                          f"the planner cannot size. Valid: {', '.join(memory.QUANT_FORMATS)}. Fix: give the measured "
                          "weights with --weights-gib (vLLM's \"Model loading took … GiB\").")
    return quant or "bf16"


def plan(request: PlanRequest) -> PlanAnswer:
    """The one planner call of every face."""
    spec = models.find_model(request.model, request.revision)
    quant = checkpoint_format(spec, request.quant, request.weights_gib)
    if request.quant and request.quant != quant:
        spec = replace(spec, weights_source=(spec.weights_source or "") + f"; the checkpoint declares {quant}, so "
                       f"--quant {request.quant} does not apply")
    request = replace(request, quant=quant, group_size=spec.declared_group_size or request.group_size)
    facts = _log_facts(request)
    if facts is not None and facts.device == "cpu":
        cpu = calibrate.cpu_plan_from_log(spec, facts, request.settings.max_model_len, request.settings.kv_cache_dtype,
                                          request.kv_space_gib, log_model=request.log_model)
        return PlanAnswer(request, spec, cpu=cpu)
    gpu = _gpu(request, facts)
    settings = replace(request.settings, vllm_version=request.vllm_version or memory.DEFAULT_VLLM_VERSION)
    cal = None
    if facts is not None:
        settings = calibrate.as_logged(settings, facts, request.vllm_version)
        cal = calibrate.fit(spec, facts, gpu, settings, request.quant, log_model=request.log_model)

    def plan_at(s: memory.ServeSettings) -> memory.Plan:
        if cal is None:
            return memory.plan(spec, gpu, request.quant, s, request.group_size, request.weights_gib)
        return calibrate.gpu_plan(spec, gpu, request.quant, s, cal, request.group_size, request.weights_gib)

    if request.parallel:
        sweep = memory.sweep_parallel(spec, gpu, request.quant, settings, request.group_size, request.gpus_per_node,
                                      plan_at=plan_at)
        return PlanAnswer(request, spec, gpu, calibration=cal, parallel=sweep)
    curve = ()
    if request.curve:
        limit = spec.max_position_embeddings or max(CONTEXTS)
        curve = tuple(memory.sweep_context(spec, gpu, request.quant, settings, [n for n in CONTEXTS if n <= limit],
                                           plan_at=plan_at))
    return PlanAnswer(request, spec, gpu, plan_at(settings), cal, curve=curve)


@dataclass(frozen=True)
class Comparison(Exportable):
    """The planner against a running engine: each fact planned and reported."""

    url: str
    served: dict
    rows: list[dict]

    @property
    def ok(self) -> bool:
        return all(r["match"] is not False for r in self.rows)

    def as_dict(self) -> dict:
        return {"served": self.served, "rows": self.rows}

    def csv_rows(self) -> tuple[list[str], list[list]]:
        keys = ["fact", "planned", "reported", "match"]
        return keys, [[r[k] for k in keys] for r in self.rows]

    def to_text(self) -> str:
        lines = [f"{self.served['model']} at {self.url} ({self.served['root']})",
                 f"{'fact':<20} {'planned':>12} {'reported':>12}  match"]
        for r in self.rows:
            mark = "" if r["match"] is None else ("yes" if r["match"] else "NO")
            lines.append(f"{r['fact']:<20} {r['planned']!s:>12} {'' if r['reported'] is None else r['reported']!s:>12}"
                         f"  {mark}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        rows = [f"| {r['fact']} | {r['planned']} | {'' if r['reported'] is None else r['reported']} | "
                f"{'' if r['match'] is None else ('✅' if r['match'] else '❌')} |" for r in self.rows]
        return (f"**{self.served['model']}** at {self.url}\n\n| fact | planned | reported | match |\n|---|---|---|---|\n"
                + "\n".join(rows))


def compare(url: str, request: PlanRequest | None = None) -> Comparison:
    """What a running engine built (its metrics and /v1/models) against the plan for it. With a GPU in the
    request, also the GPU plan's KV cache for the served settings."""
    served = Client(url).served_cache()
    if not served.get("root"):
        raise WorkbenchError(f"the server at {url} does not say which folder it serves.")
    spec = models.find_model(served["root"])
    gpu_plan = None
    if request is not None and request.gpu is not None:
        settings = memory.ServeSettings(max_model_len=served["max_model_len"], kv_cache_dtype=served["cache_dtype"],
                                        gpu_memory_utilization=served["gpu_memory_utilization"],
                                        vllm_version=request.vllm_version or memory.DEFAULT_VLLM_VERSION)
        gpu_plan = memory.plan(spec, hardware.find_gpu(request.gpu, request.gpu_total_gib), request.quant, settings,
                               request.group_size, request.weights_gib)
    return Comparison(url, served, memory.compare_with_served(spec, served, gpu_plan))
