"""gpu_plan.py adds the budget up for one GPU: `plan` takes a model, a GPU, a weights format and the serve settings
and returns a `Plan` with each term (weights, activation, non-torch memory, CUDA graphs, KV cache), whether it
fits and why, the KV cache's range over the fitted overheads, the roofline's bounds, what it assumed, and the
`vllm serve` line that runs it (`serve_checkpoint`: what to load for the format). Pure: no I/O. The terms are
budget.py's, the release's behaviour vllm_facts.py's; fitting to a log is fit.py's, several layouts sweeps.py's.
"""

import math
from dataclasses import asdict, dataclass, replace

from workbench.errors import ConfigError
from workbench.planner.budget import (
    COLD_COMPILE_BYTES,
    CUDA_GRAPH_GIB,
    DEFAULT_GROUP_SIZE,
    GIB,
    NON_TORCH_GIB,
    V2_WORKSPACE_GIB,
    ProfilePeak,
    Range,
    fixed_overheads,
    kv_bytes_per_token,
    kv_cache_tokens,
    max_concurrency,
    moe_workspace_bytes,
    multi_gpu_gib,
    profile_peak_on,
    quant_format,
    weight_bytes,
    workspace_term,
)
from workbench.planner.roofline import decode_tokens_per_s_bound, prefill_seconds_bound
from workbench.planner.vllm_facts import BLOCK_SIZE, ServeSettings, graphs_in_budget, modelled_version
from workbench.serving import hardware, vllm_flags
from workbench.serving.model_catalog import ModelSpec
from workbench.serving.vllm_flags import ServeFlags


@dataclass(frozen=True)
class Plan:
    """One GPU's share of a deployment. Bytes are per GPU."""

    model: str
    gpu: str
    quant: str
    requested_bytes: int
    weights_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int  # counted in the budget only from v0.21
    kv_bytes_per_token: int
    kv_cache_bytes: int
    kv_cache_tokens: int
    max_concurrency: float
    fits: bool
    reason: str
    suggested_max_model_len: int
    kv_cache_gib_range: Range
    warnings: tuple[str, ...]
    suggestions: tuple[str, ...]
    flags: ServeFlags  # the `vllm serve` line that runs this plan
    checkpoint_note: str  # where the checkpoint in the flags comes from, or how to make it
    decode_tok_s_bound: float | None  # None: the GPU's bandwidth is not known
    prefill_s_bound: float | None  # None: the GPU's FLOP/s are not known
    assumptions: tuple[str, ...] = ()  # the defaults and overheads it used, each with why: what to override

    def gib(self, value: int) -> float:
        return round(value / GIB, 2)

    def roofline(self, context_tokens: int) -> str:
        """The bounds in one line, or what is missing for them."""
        decode = (
            f"decode ≤ {self.decode_tok_s_bound} tok/s at {context_tokens:,} tokens of context"
            if self.decode_tok_s_bound is not None
            else f"no decode bound: {self.gpu}'s memory bandwidth is not known (give it with --bandwidth-gbs)"
        )
        prefill = (
            f"prefill of {context_tokens:,} tokens ≥ {self.prefill_s_bound} s"
            if self.prefill_s_bound is not None
            else f"no prefill bound: {self.gpu}'s FLOP/s are not known"
        )
        return f"{decode}; {prefill}"

    @property
    def vllm_args(self) -> tuple[str, ...]:
        """`vllm serve CHECKPOINT --flag value ...`, as a list."""
        return tuple(self.flags.serve_argv())

    def as_dict(self) -> dict:
        d = asdict(self)
        del d["flags"]
        d["vllm_args"] = list(self.vllm_args)
        for key in ("requested", "weights", "activation", "non_torch", "cuda_graph", "kv_cache"):
            d[f"{key}_gib"] = self.gib(d[f"{key}_bytes"])
        r = self.kv_cache_gib_range
        d["kv_cache_gib_range"] = [round(r.pessimistic, 2), round(r.optimistic, 2)]  # [pessimistic, optimistic]
        d["kv_cache_gib_scenarios"] = {k: round(v, 2) for k, v in asdict(r).items()}
        d["assumptions"] = list(self.assumptions)
        return d

    def terms(self) -> list[tuple[str, str]]:
        """The budget's terms as (as_dict key, what a person reads), the budget first and the KV cache last."""
        gmu = self.flags.gpu_memory_utilization
        return [
            ("requested_gib", f"vLLM's budget (total × {gmu:.2f})" if gmu else "vLLM's budget"),
            ("weights_gib", "weights"),
            ("activation_gib", "activation peak (profile run)"),
            ("non_torch_gib", "non-torch memory"),
            ("cuda_graph_gib", "CUDA graphs"),
            ("kv_cache_gib", "KV cache"),
        ]

    @property
    def max_model_len(self) -> int:
        """The context the plan was made for."""
        return self.flags.max_model_len

    def to_markdown(self) -> str:
        """The verdict, the budget per term, the KV cache, the roofline, warnings and the command."""
        d = self.as_dict()
        length = self.max_model_len
        lines = [
            f"### {'✅ fits' if self.fits else '❌ does not fit'}: {self.model} ({self.quant}) on {self.gpu}",
            self.reason,
            "",
            "| term (per GPU) | GiB |",
            "|---|---|",
        ]
        lines += [f"| {label} | {d[key]:.2f} |" for key, label in self.terms()]
        r = self.kv_cache_gib_range
        lines += [
            "",
            f"- KV bytes per token: **{self.kv_bytes_per_token:,}**; KV cache tokens: "
            f"**{self.kv_cache_tokens:,}**; max concurrency at {length:,}: **{self.max_concurrency:.2f}**",
            f"- KV cache range (pessimistic / nominal / optimistic overheads): {r.pessimistic:.2f} / "
            f"{r.nominal:.2f} / {r.optimistic:.2f} GiB",
            f"- Roofline: {self.roofline(length)}",
        ]
        lines += [f"- ⚠️ {w}" for w in self.warnings] + [f"- 💡 {s}" for s in self.suggestions]
        lines += ["", f"**Checkpoint:** {self.checkpoint_note}", "", f"`{self.flags.command()}`"]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:  # a notebook shows the plan, not the dataclass
        return self.to_markdown()


def free_gmu(gpu) -> float:
    """The highest --gpu-memory-utilization (in hundredths) vLLM's start-up check passes on `gpu` now."""
    return math.floor(100 * hardware.free_to_vllm_gib(gpu) / gpu.total_gib) / 100


def fit_free(settings: ServeSettings, gpu) -> tuple[ServeSettings, str | None]:
    """`settings` with --gpu-memory-utilization lowered to what is free on `gpu` now, and a line that says so;
    unchanged (and None) where the asked one already fits. Needs the local GPU's free memory (--gpu local)."""
    if gpu is None or gpu.free_gib is None:
        raise ConfigError(
            f"--fit-free plans with the memory free now on this machine's GPU, and {gpu.name if gpu else 'no GPU'!r} "
            "has no such reading. Fix: add --gpu local (nvidia-ml-py reads the first GPU), or drop --fit-free."
        )
    asked, fits = settings.effective_gmu(), free_gmu(gpu)
    if fits >= asked:
        return settings, None
    return replace(settings, gpu_memory_utilization=fits), (
        f"--gpu-memory-utilization lowered from {asked:.2f} to {fits:.2f}: {gpu.free_gib:.2f} of {gpu.total_gib:.2f} "
        f"GiB of {gpu.name} is free now ({hardware.CUDA_CONTEXT_GIB} GiB of it goes to vLLM's CUDA context); a desktop "
        "or another process holds the rest, and the KV cache shrinks by the difference"
    )


def plan(
    spec: ModelSpec,
    gpu,
    quant: str = "bf16",
    settings: ServeSettings | None = None,
    group_size: int | None = DEFAULT_GROUP_SIZE,
    weights_gib: float | None = None,
    overhead_gib: Range | None = None,
) -> Plan:
    """Plan one deployment on `gpu` (a hardware.GpuSpec). Pure; raises ConfigError on bad input.
    `overhead_gib`: the fixed overheads fitted to a start-up log (planner.fit), in place of the
    non-torch, workspace and CUDA-graph terms fitted on public logs."""
    settings = settings or ServeSettings()
    fmt = quant_format(quant)
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    if spec.num_kv_heads % tp and tp % spec.num_kv_heads:
        raise ConfigError(
            f"tensor_parallel_size={tp} does not divide {spec.name}'s {spec.num_kv_heads} KV heads "
            f"(nor the reverse). Valid: {', '.join(str(d) for d in _divisors(spec.num_kv_heads))}."
        )
    if spec.num_heads % tp:
        raise ConfigError(
            f"tensor_parallel_size={tp} does not divide {spec.name}'s {spec.num_heads} attention heads. "
            f"Valid: {', '.join(str(d) for d in _divisors(spec.num_heads))}."
        )
    if fmt.uses_group_size and group_size not in (None, -1) and group_size <= 0:
        raise ConfigError(f"group_size={group_size} must be positive (or -1 for per-channel).")

    requested = int(gpu.total_gib * settings.effective_gmu() * GIB)
    weights = int(weights_gib * GIB) if weights_gib is not None else weight_bytes(spec, quant, group_size) // (tp * pp)
    kv_per_token = kv_bytes_per_token(spec, settings.kv_cache_dtype, tp, pp)
    page = BLOCK_SIZE * kv_per_token

    checkpoint, note, online_quant = serve_checkpoint(spec, quant)
    # the runner vLLM picks reads the served checkpoint's config: a quantized one declares its method
    quantized_checkpoint = not online_quant and not spec.declared_quant and fmt.weight_bits < 16
    served = replace(spec, declared_quant=quant) if quantized_checkpoint else spec
    # torch.compile's cache decides the peak on the V2 runner: the nominal is the settings' start, and the range spans
    # both (optimistic warm, pessimistic cold: a cache is lost to an upgrade)
    warm, cold = (profile_peak_on(served, replace(settings, compile_cache=c), gpu) for c in ("warm", "cold"))
    peak = warm if settings.compile_cache == "warm" else cold
    tokens, seqs = peak.tokens, peak.seqs
    computed = peak.peak  # the part the overheads do not hold
    peaks = (warm.peak, computed, cold.peak)
    # computed too: the layout and the model decide them, not the machine
    buffers = int(multi_gpu_gib(settings) * GIB) + moe_workspace_bytes(spec, settings, tokens)
    in_budget = graphs_in_budget(served, settings)
    overheads = overhead_gib or fixed_overheads(settings, graphs=in_budget, runner=peak.runner)

    def pool(scenario: int) -> int:
        return (
            requested
            - weights
            - peaks[scenario]
            - buffers
            - int((overheads.optimistic, overheads.nominal, overheads.pessimistic)[scenario] * GIB)
        )

    kv_pool = pool(1)
    free = hardware.free_to_vllm_gib(gpu)  # a desktop or another process holds the rest
    short_of_free = free is not None and requested / GIB > free
    kv_tokens = kv_cache_tokens(kv_pool, kv_per_token)
    need_one = math.ceil(settings.max_model_len / BLOCK_SIZE) * page
    suggested = max(0, min(kv_tokens, spec.max_position_embeddings or kv_tokens))
    if overhead_gib is None:  # the breakdown shown: the workspace with the activations, graphs apart
        activation = computed + (int(workspace_term(peak.runner, settings).nominal * GIB) if settings.v1 else 0)
        graphs = int(CUDA_GRAPH_GIB.nominal * GIB) if in_budget else 0
        non_torch = int(NON_TORCH_GIB.nominal * GIB) + buffers
    else:  # one fitted term holds the non-torch memory, the workspace and the graphs
        activation, graphs, non_torch = computed, 0, int(overhead_gib.nominal * GIB) + buffers

    if short_of_free:
        fits = False
        reason = (
            f"vLLM asks for {requested / GIB:.2f} GiB ({gpu.total_gib} GiB × {settings.effective_gmu():.2f}) but only "
            f"{gpu.free_gib:.2f} GiB of {gpu.name} is free now, about {free:.2f} GiB once vLLM has made its CUDA "
            f'context ({hardware.CUDA_CONTEXT_GIB} GiB). vLLM would stop with: "Free memory on device '
            f"({free:.2f}/{gpu.total_gib:.2f} GiB) on startup is less than desired GPU memory utilization "
            f'({settings.effective_gmu():.2f}, {requested / GIB:.2f} GiB)."'
        )
    elif kv_pool <= 0:
        fits = False
        reason = (
            f"the weights ({weights / GIB:.2f} GiB) and overheads leave no KV cache in the "
            f"{requested / GIB:.2f} GiB vLLM may use ({gpu.total_gib} GiB × {settings.effective_gmu():.2f}). "
            'vLLM would stop with: "No available memory for the cache blocks. Try increasing '
            '`gpu_memory_utilization` when initializing the engine."'
        )
    elif need_one > kv_pool:
        fits = False
        reason = (
            f"max_model_len={settings.max_model_len:,} needs {need_one / GIB:.2f} GiB of KV cache but "
            f'{kv_pool / GIB:.2f} GiB is left. vLLM would stop with: "To serve at least one request with '
            f"the models's max seq len ({settings.max_model_len}), ({need_one / GIB:.2f} GiB KV cache is "
            f"needed, which is larger than the available KV cache memory ({kv_pool / GIB:.2f} GiB). Based "
            f'on the available memory, the estimated maximum model length is {kv_tokens}."'
        )
    else:
        fits = True
        reason = (
            f"{kv_pool / GIB:.2f} GiB of KV cache holds {kv_tokens:,} tokens, "
            f"{max_concurrency(kv_tokens, settings.max_model_len):.2f} requests of "
            f"{settings.max_model_len:,} tokens"
        )
    warnings = []
    version_note = modelled_version(settings.vllm_version)[1]
    if version_note:
        warnings.append(version_note)
    if spec.sliding_window:
        warnings.append(
            f"{spec.name} mixes sliding-window and full attention: vLLM keeps several KV groups "
            "and the single formula used here does not hold."
        )
    if settings.max_model_len > (spec.max_position_embeddings or settings.max_model_len):
        warnings.append(
            f"max_model_len {settings.max_model_len:,} exceeds the model's "
            f"max_position_embeddings {spec.max_position_embeddings:,} (needs RoPE scaling)."
        )
    suggestions = []
    if settings.kv_cache_dtype == "auto":
        suggestions.append(
            f"--kv-cache-dtype fp8 halves the KV cache per token ({kv_per_token:,} → {kv_per_token // 2:,} B)"
        )
    if peaks[0] < peaks[2] and settings.compile_cache == "cold" and kv_pool > 0:
        warm_pool = kv_pool + computed - peaks[0]
        warm_tokens = kv_cache_tokens(warm_pool, kv_per_token)
        suggestions.append(
            f"a restart reads torch.compile's cache and peaks lower: {warm_pool / GIB:.2f} GiB of KV cache, "
            f"{warm_tokens:,} tokens, {max_concurrency(warm_tokens, settings.max_model_len):.2f} requests of "
            f"{settings.max_model_len:,} tokens (--compile-cache warm plans it)"
        )
    if short_of_free:
        suggestions.append(
            f"--gpu-memory-utilization {free_gmu(gpu):.2f} fits what is free now (the KV cache shrinks by the "
            "difference; `workbench plan --gpu local --fit-free` plans it), or close what holds the rest (a desktop "
            "session, another engine: nvidia-smi lists them)"
        )
    elif settings.effective_gmu() < 0.95 and free is not None and settings.effective_gmu() >= free_gmu(gpu):
        suggestions.append(
            f"close what holds the other {gpu.total_gib - gpu.free_gib:.2f} GiB of {gpu.name} (a desktop session, another "
            "engine: nvidia-smi lists them), then raise --gpu-memory-utilization toward 0.95"
        )
    elif settings.effective_gmu() < 0.95:
        suggestions.append("raise --gpu-memory-utilization toward 0.95 if nothing else uses the GPU")
    if not fits and kv_pool <= 0 and tp == 1:
        suggestions.append(
            "split the weights with --tensor-parallel-size 2 (two GPUs)"
            + (", or quantize (gptq-int4)" if fmt.weight_bits >= 16 else ", or take a smaller model")
        )

    flags = vllm_flags.flags_of(
        settings,
        model=checkpoint,
        gpu_memory_utilization=settings.effective_gmu(),
        quantization=quant if online_quant else settings.quantization,
        device="gpu",
        **{k: getattr(settings, k) or v for k, v in family_parsers(spec).items()},
    )

    ranges = Range(*(max(0, pool(i)) / GIB for i in range(3)))
    assumptions = _assumptions(
        settings, gpu, tokens, seqs, weights_gib is not None, overhead_gib, peak, in_budget, (peaks[0], peaks[2])
    )
    return Plan(
        assumptions=assumptions,
        model=spec.name,
        gpu=gpu.name,
        quant=quant,
        requested_bytes=requested,
        weights_bytes=weights,
        activation_bytes=activation,
        non_torch_bytes=non_torch,
        cuda_graph_bytes=graphs,
        kv_bytes_per_token=kv_per_token,
        kv_cache_bytes=max(0, kv_pool),
        kv_cache_tokens=kv_tokens,
        max_concurrency=round(max_concurrency(kv_tokens, settings.max_model_len), 2),
        fits=fits,
        reason=reason,
        suggested_max_model_len=suggested,
        kv_cache_gib_range=ranges,
        warnings=tuple(warnings),
        suggestions=tuple(suggestions),
        flags=flags,
        checkpoint_note=note,
        decode_tok_s_bound=_rounded(
            decode_tokens_per_s_bound(
                spec, gpu, weights * tp * pp, settings.max_model_len, kv_per_token * tp * pp, tp=tp * pp
            ),
            1,
        ),
        prefill_s_bound=_rounded(prefill_seconds_bound(spec, gpu, settings.max_model_len, tp=tp * pp), 2),
    )


def _assumptions(
    settings: ServeSettings,
    gpu,
    tokens: int,
    seqs: int,
    weights_measured: bool,
    overhead_gib: Range | None = None,
    peak: ProfilePeak | None = None,
    in_budget: bool | None = None,
    compile_peaks: tuple[int, int] | None = None,
) -> tuple[str, ...]:
    """What the plan took for granted, each with where it comes from: the flags to set if it is wrong."""
    out = []
    in_budget = settings.graphs_in_budget if in_budget is None else in_budget
    if settings.graphs_in_budget and not in_budget:
        out.append(
            f"CUDA graphs outside the budget: vLLM {settings.vllm_version}'s V2 model runner does not estimate "
            "them before sizing the KV cache (profile_cudagraph_memory returns 0 in 0.22-0.28; planner/vllm_facts.py cites "
            "the lines), so they come out of the (1 - gpu_memory_utilization) headroom; leave room for them."
        )
    if compile_peaks and compile_peaks[0] != compile_peaks[1]:
        warm, cold = (p / GIB for p in compile_peaks)
        out.append(
            f"torch.compile's cache {settings.compile_cache}: on vLLM's V2 model runner a first start compiles the "
            f"model inside the profile window, which then peaks at {COLD_COMPILE_BYTES} B per token × hidden_size "
            f"({cold:.2f} GiB); a later start reads the cache and peaks at {warm:.2f} GiB "
            "(planner/budget.py, COLD_COMPILE_BYTES). The range spans both; "
            + (
                "--compile-cache warm plans a restart."
                if settings.compile_cache == "cold"
                else "--compile-cache cold plans a first start."
            )
        )
    if peak is not None and peak.runner != "V0":
        larger = (
            "cold torch.compile"
            if peak.compile > max(peak.forward, peak.sampler)
            else "sampler warm-up"
            if peak.sampler > peak.forward
            else "forward"
        )
        out.append(
            f"profile peak {peak.peak / GIB:.2f} GiB, the {larger}: vLLM {settings.vllm_version} runs this "
            f"model on its {peak.runner} model runner, whose sampler warm-up holds "
            f"{peak.sampler_bytes_per_logit} B per logit of max_num_seqs × vocab ({peak.sampler / GIB:.2f} GiB) "
            "beside a forward of "
            f"{peak.forward / GIB:.2f} GiB (planner/vllm_facts.py cites the vLLM lines). VLLM_USE_V2_MODEL_RUNNER=0/1 "
            "changes the runner."
        )
    if settings.gpu_memory_utilization is None:
        out.append(
            f"gpu_memory_utilization {settings.effective_gmu():.2f}: vLLM {settings.vllm_version}'s default "
            "(0.92 from v0.21, when CUDA-graph memory joined the budget; 0.90 before). Set "
            "--gpu-memory-utilization to yours."
        )
    if settings.max_num_batched_tokens is None:
        why = (
            f"V1 profiles one batch of max_num_batched_tokens; vLLM's default for a GPU of {gpu.total_gib} GiB"
            if settings.v1
            else "V0 profiles a whole max_model_len prompt"
        )
        out.append(f"profile batch {tokens:,} tokens: {why}. Set --max-num-batched-tokens to yours.")
    if settings.max_num_seqs is None:
        why = (
            f"vLLM {settings.vllm_version}'s default for a GPU of {gpu.total_gib} GiB"
            if settings.v1
            else "V0's default"
        )
        out.append(
            f"max_num_seqs {seqs}: {why}; it sizes the sampler's logits in the profile. Set --max-num-seqs to yours."
        )
    if overhead_gib is not None:
        out.append(
            f"overheads {overhead_gib.nominal:.2f} GiB ({overhead_gib.optimistic:.2f}–"
            f"{overhead_gib.pessimistic:.2f}): "
            "fitted to the start-up log given with --calibrate-from (non-torch memory, workspace and CUDA "
            "graphs in one term); the activations are recomputed for these settings."
        )
    else:
        runner = peak.runner if peak is not None else "V1"
        ws = workspace_term(runner, settings)
        out.append(
            "overheads (nominal, with the range from optimistic to pessimistic): non-torch "
            f"{NON_TORCH_GIB.nominal} GiB ({NON_TORCH_GIB.optimistic}–{NON_TORCH_GIB.pessimistic}), "
            f"{'V2' if ws is V2_WORKSPACE_GIB else 'V1'}-runner workspace {ws.nominal} GiB "
            f"({ws.optimistic}–{ws.pessimistic})"
            + (
                f", CUDA graphs {CUDA_GRAPH_GIB.nominal} GiB ({CUDA_GRAPH_GIB.optimistic}–{CUDA_GRAPH_GIB.pessimistic})"
                if in_budget
                else ""
            )
            + "; (min, median, max) of what public start-up logs imply (tests/data/public_logs.json)."
        )
    if not weights_measured:
        out.append(
            "weights computed from the architecture and the format; give --weights-gib with vLLM's "
            '"Model loading took" to use the measured value.'
        )
    return tuple(out)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def family_parsers(spec: ModelSpec) -> dict:
    """The parsers a plan's command carries: every one known for the model's family (vllm_flags), so that tool
    calls and Qwen3's reasoning come back as fields; a family with none gets none."""
    fmt = spec.chat_format or vllm_flags.chat_format(spec.family)
    return vllm_flags.parsers(
        spec.family, fmt, tools=fmt in vllm_flags.TOOL_PARSERS, reasoning=spec.family in vllm_flags.REASONING_PARSERS
    )


def serve_checkpoint(spec: ModelSpec, quant: str) -> tuple[str, str, bool]:
    """What `vllm serve` should load for this model in this format: (checkpoint, note, online).
    `online` is True when vLLM quantizes the 16-bit checkpoint itself at load (`--quantization fp8`)."""
    fmt = quant_format(quant)
    published = dict(spec.quantized_checkpoints)
    if spec.checkpoint is None:
        return spec.name, f"{spec.name} names no checkpoint; pass the folder or repo id of yours.", False
    if spec.declared_quant is not None or quant in ("bf16", "fp16"):
        return spec.checkpoint, f"{spec.checkpoint}: the checkpoint as published (or your folder).", False
    if quant in published:
        return published[quant], f"{published[quant]}: the authors' own {quant} checkpoint.", False
    if not fmt.uses_group_size and not fmt.quantizes_embeddings:  # fp8, w8a8: vLLM quantizes at load time
        return (
            spec.checkpoint,
            (
                f"{spec.checkpoint} quantized to {quant} by vLLM while loading "
                "(`--quantization`); no published checkpoint needed."
            ),
            True,
        )
    folder = f"./{spec.name}-{quant}"
    others = ", ".join(f"{q} ({r})" for q, r in published.items())
    how = (
        f"`workbench quantize {spec.checkpoint} --bits {int(fmt.weight_bits)} --group-size 128 --out {folder}`"
        if quant.startswith("gptq")
        else f"a {quant} tool of its own"
    )
    return (
        folder,
        (
            f"No {quant} checkpoint of {spec.name} is published: make {folder} with {how}"
            + (f", or plan one that is: {others}." if others else ".")
        ),
        False,
    )
