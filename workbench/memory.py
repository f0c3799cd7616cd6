"""memory.py plans vLLM's memory: weights, activation, overheads, the KV cache, concurrency and the
roofline. Pure arithmetic over frozen dataclasses, and no I/O: the catalog and the reading of local
checkpoints (`ModelSpec`, `find_model`, `spec_from_folder`) live in models.py.

The budget follows vLLM's own code (vllm/v1/worker/gpu_worker.py, vllm/v1/core/kv_cache_utils.py):

    requested  = total_gpu_memory × gpu_memory_utilization
    kv_pool    = requested − weights − peak_activation − non_torch (− cuda_graphs, from v0.21)
    num_blocks = floor(kv_pool / (block_size × kv_bytes_per_token))        block_size = 16
    kv_tokens  = num_blocks × block_size
    max_concurrency = num_blocks / ceil(max_model_len / block_size)

On vLLM's CPU build the pool is exactly VLLM_CPU_KVCACHE_SPACE GiB and blocks hold 128 tokens
(its metrics say `block_size="128"`), so the token count is exact.
This module knows nothing about processes or the UI.
"""

import math
import re
from dataclasses import asdict, dataclass, replace

from workbench import vllm_flags
from workbench.errors import ConfigError
from workbench.models import ModelSpec
from workbench.vllm_flags import ServeFlags

GIB = 2**30
BLOCK_SIZE = 16  # vLLM's default block size on GPUs
CPU_BLOCK_SIZE = 128  # vLLM's CPU build pages the KV cache in blocks of 128 tokens


# --------------------------------------------------------------------------------------------
# Quantization formats: bytes per parameter of the quantized (linear) layers; the rest stay 16-bit.
@dataclass(frozen=True)
class QuantFormat:
    name: str
    weight_bits: float  # per quantized weight
    group_overhead_bytes: float = 0.0  # per group: scale (+ packed zero)
    uses_group_size: bool = False
    quantizes_embeddings: bool = False  # GGUF quantizes the embeddings too
    note: str = ""

    def linear_bytes_per_param(self, group_size: int | None) -> float:
        extra = self.group_overhead_bytes / group_size if self.uses_group_size and group_size else 0.0
        return self.weight_bits / 8 + extra


QUANT_FORMATS: dict[str, QuantFormat] = {q.name: q for q in [
    QuantFormat("bf16", 16),
    QuantFormat("fp16", 16),
    QuantFormat("fp8", 8, note="per-channel scales; embeddings stay 16-bit"),
    QuantFormat("gptq-int4", 4, 2.5, True, note="fp16 scale + packed 4-bit zero per group"),
    QuantFormat("gptq-int8", 8, 3.0, True, note="fp16 scale + packed 8-bit zero per group"),
    QuantFormat("awq-int4", 4, 2.5, True, note="fp16 scale + packed 4-bit zero per group"),
    QuantFormat("w4a16", 4, 2.0, True, note="compressed-tensors, symmetric: fp16 scale per group"),
    QuantFormat("w8a8", 8, note="int8 weights and activations, per-channel scales"),
    QuantFormat("bnb-nf4", 4.5, note="bitsandbytes NF4/FP4: an fp32 absmax per block of 64"),
    QuantFormat("bnb-int8", 8, note="bitsandbytes LLM.int8(): int8 weights, per-row scales"),
    QuantFormat("gguf-q4_k_m", 4.85, quantizes_embeddings=True, note="mixed Q4_K/Q6_K, ~4.85 bits per weight"),
    QuantFormat("gguf-q8_0", 8.5, quantizes_embeddings=True, note="34 bytes per block of 32"),
]}
DEFAULT_GROUP_SIZE = 128


def quant_format(name: str) -> QuantFormat:
    try:
        return QUANT_FORMATS[name.lower()]
    except KeyError:
        raise ConfigError(f"quantization format {name!r} is unknown. Valid: {', '.join(QUANT_FORMATS)}.") from None


def weight_bytes(spec: ModelSpec, quant: str = "bf16", group_size: int | None = DEFAULT_GROUP_SIZE) -> int:
    """Bytes of weights in the checkpoint (exact from safetensors when the spec carries them)."""
    if spec.weight_bytes is not None:
        return spec.weight_bytes
    fmt = quant_format(spec.declared_format or quant)  # a checkpoint's own quantization_config wins
    linear = spec.linear_params() * fmt.linear_bytes_per_param(group_size)
    other = spec.other_params() * (fmt.weight_bits / 8 if fmt.quantizes_embeddings else 2)
    return int(linear + other)


def kv_bytes_per_token(spec: ModelSpec, kv_cache_dtype: str = "auto", tp: int = 1, pp: int = 1) -> int:
    """Per GPU: 2 × layers/PP × max(1, kv_heads/TP) × head_dim × bytes; MLA stores one latent."""
    dtype_bytes = 1 if kv_cache_dtype.startswith("fp8") else 2
    layers = math.ceil(spec.num_layers / pp)
    if spec.is_mla:
        return layers * (spec.kv_lora_rank + spec.qk_rope_head_dim) * dtype_bytes
    heads = max(1, spec.num_kv_heads // tp)
    return 2 * layers * heads * spec.head_dim * dtype_bytes


def kv_cache_tokens(pool_bytes: int, kv_bytes_per_token_: int, block_size: int = BLOCK_SIZE) -> int:
    """Whole blocks that fit in the pool, in tokens ("GPU/CPU KV cache size: N tokens")."""
    return max(0, pool_bytes // (block_size * kv_bytes_per_token_)) * block_size


def cpu_kv_cache_tokens(spec: ModelSpec, space_gib: int, kv_cache_dtype: str = "auto") -> int:
    """What vLLM's CPU build reports for VLLM_CPU_KVCACHE_SPACE=space_gib: exact."""
    return kv_cache_tokens(space_gib * GIB, kv_bytes_per_token(spec, kv_cache_dtype), CPU_BLOCK_SIZE)


def max_concurrency(kv_tokens: int, max_model_len: int, block_size: int = BLOCK_SIZE) -> float:
    """vLLM's "Maximum concurrency for L tokens per request": blocks / blocks per request."""
    return (kv_tokens // block_size) / math.ceil(max_model_len / block_size)


def vllm_batch_defaults(device: str, gpu=None) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) that `vllm serve` picks when neither is given, per device,
    as vllm/engine/arg_utils.py's get_batch_defaults has them for the OpenAI server (V1 engine, v0.9 to
    v0.32): CPU 2048 / 128; a GPU with 160 GiB or more (B200) 16384 / 1024; 70 GiB or more, A100 excepted
    (H100, H200), 8192 / 1024 (vLLM PR #17073 sized batches by memory, #17885 keeps the A100 lower); any
    other GPU 2048 / 256. For one process: vLLM multiplies the CPU values by TP × PP. v0.8 (the first V1
    default) gave every GPU max_num_seqs 1024 (PR #15357); the planner uses the later table for it too."""
    if device == "cpu":
        return 2048, 128
    total = getattr(gpu, "total_gib", 0.0)
    if total >= 160:
        return 16384, 1024
    if total >= 70 and "a100" not in getattr(gpu, "name", "").lower():
        return 8192, 1024
    return 2048, 256


# --------------------------------------------------------------------------------------------
# The GPU plan
DEFAULT_VLLM_VERSION = "0.32.0"  # the release both targets install (pyproject.toml), and the newest the tables know


MODELLED_VERSIONS = ("0.6.0", "0.33.0")  # the releases whose defaults, budget and profile run the planner follows


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def modelled_version(version: str) -> tuple[str, str | None]:
    """The vLLM version a plan follows for `version`, and a note when that is not `version` itself: a release
    older or newer than MODELLED_VERSIONS is planned with the nearest one the planner models."""
    parsed = _version_tuple(version)
    if len(parsed) < 2:
        raise ConfigError(f"vLLM version {version!r} is not a version number. Fix: give it as printed by "
                          f"`vllm --version`, e.g. {DEFAULT_VLLM_VERSION}.")
    oldest, newest = MODELLED_VERSIONS
    nearest = oldest if parsed[:2] < _version_tuple(oldest)[:2] else newest if parsed[:2] > _version_tuple(newest)[:2] \
        else None
    if nearest is None:
        return version, None
    return nearest, (f"vLLM {version} is outside the releases the planner models ({oldest[:-2]} to {newest[:-2]}): "
                     f"planned as {nearest}, the nearest one it knows. Its defaults, budget and profile run may "
                     f"differ from {version}'s; compare the plan with what that vLLM prints at start-up.")


@dataclass(frozen=True)
class ServeSettings(ServeFlags):
    """The flags a plan is for (vllm_flags.ServeFlags; `None` leaves vLLM's default for the version and GPU),
    and the vLLM version whose defaults and profile the plan follows. The model is the plan's ModelSpec."""

    max_model_len: int | None = 32_768
    vllm_version: str = DEFAULT_VLLM_VERSION

    def __post_init__(self):
        super().__post_init__()
        if self.max_model_len is None:
            raise ConfigError("max_model_len is needed to plan. Fix: give the context length, e.g. 32768.")
        modelled_version(self.vllm_version)  # a version number, or a clear error

    @property
    def version(self) -> tuple[int, ...]:
        return _version_tuple(self.vllm_version)

    @property
    def v1(self) -> bool:
        """The V1 engine (default from 0.8): profiles a fixed batch of tokens, not max_model_len."""
        return self.version >= (0, 8)

    @property
    def graphs_in_budget(self) -> bool:
        """From v0.21 vLLM profiles CUDA-graph memory by default and pays it from the budget (PR #38284), and its
        default gpu_memory_utilization is 0.92; none when eager. Whether the model runner the model gets estimates
        its graphs is `memory.graphs_in_budget(spec, settings)`: the V2 runner of 0.22-0.28 does not."""
        return self.version >= (0, 21) and not self.enforce_eager

    def effective_gmu(self) -> float:
        if self.gpu_memory_utilization is not None:
            return self.gpu_memory_utilization
        return 0.92 if self.graphs_in_budget else 0.90

    def batch(self, gpu) -> tuple[int, int]:
        """(max_num_batched_tokens, max_num_seqs) the engine will run with: the ones given, else vLLM's
        defaults for this version and GPU. The profile's activations and sampler scale with both."""
        if self.v1:
            tokens, seqs = vllm_batch_defaults("gpu", gpu)
        else:  # V0 profiled a whole max_model_len prompt unless chunked prefill was on (above 32K)
            tokens, seqs = (max(self.max_model_len, 2048) if self.max_model_len <= 32_768 else 2048), 256
        return self.max_num_batched_tokens or tokens, self.max_num_seqs or seqs


@dataclass(frozen=True)
class Range:
    optimistic: float
    nominal: float
    pessimistic: float


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
        decode = (f"decode ≤ {self.decode_tok_s_bound} tok/s at {context_tokens:,} tokens of context"
                  if self.decode_tok_s_bound is not None else
                  f"no decode bound: {self.gpu}'s memory bandwidth is not known (give it with --bandwidth-gbs)")
        prefill = (f"prefill of {context_tokens:,} tokens ≥ {self.prefill_s_bound} s"
                   if self.prefill_s_bound is not None else f"no prefill bound: {self.gpu}'s FLOP/s are not known")
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

    @property
    def max_model_len(self) -> int:
        """The context the plan was made for."""
        return self.flags.max_model_len

    def to_markdown(self) -> str:
        """The verdict, the budget per term, the KV cache, the roofline, warnings and the command."""
        d = self.as_dict()
        length = self.max_model_len
        lines = [f"### {'✅ fits' if self.fits else '❌ does not fit'}: {self.model} ({self.quant}) on {self.gpu}",
                 self.reason, "", "| term (per GPU) | GiB |", "|---|---|"]
        lines += [f"| {k.removesuffix('_gib')} | {d[k]:.2f} |" for k in
                  ("requested_gib", "weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib", "kv_cache_gib")]
        r = self.kv_cache_gib_range
        lines += ["", f"- KV bytes per token: **{self.kv_bytes_per_token:,}**; KV cache tokens: "
                  f"**{self.kv_cache_tokens:,}**; max concurrency at {length:,}: **{self.max_concurrency:.2f}**",
                  f"- KV cache range (pessimistic / nominal / optimistic overheads): {r.pessimistic:.2f} / "
                  f"{r.nominal:.2f} / {r.optimistic:.2f} GiB",
                  f"- Roofline: {self.roofline(length)}"]
        lines += [f"- ⚠️ {w}" for w in self.warnings] + [f"- 💡 {s}" for s in self.suggestions]
        lines += ["", f"**Checkpoint:** {self.checkpoint_note}", "", f"`{self.flags.command()}`"]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:  # a notebook shows the plan, not the dataclass
        return self.to_markdown()


# Overheads (GiB) the profile adds beside the computed activations: optimistic / nominal / pessimistic,
# i.e. (min, median, max) of what the fit rows of tests/data/public_logs.json imply. Refit with
# `python bench/planner_calibration.py` (bench/results/planner_calibration.json); tests/test_memory.py
# checks that these equal the fit.
_NON_TORCH_GIB = Range(0.01, 0.21, 2.14)  # V0 rows: NCCL/cuBLAS buffers and the CUDA context's growth
_V1_WORKSPACE_GIB = Range(-0.25, -0.02, -0.01)  # V1-runner rows, beyond non-torch: torch.compile buffers and the like
# V2-runner rows (0.22 on), beyond non-torch: what vLLM's "consumed memory" holds beyond the weights once the profile
# run is over (0.28: gpu_worker.py line 541, mem_utils.py lines 317-326 count the drop in free memory since the
# start-up snapshot) and its peak beyond the computed one. Fitted per runner because the V2 logs leave 1-3 GiB here
# where the V1 logs leave none (tests/data/public_logs.json; README, "Where it is weakest").
_V2_WORKSPACE_GIB = Range(0.3, 1.81, 2.92)
# CUDA graphs of the default capture sizes (1, 2, 4, 8-248 by 8, then by 16 to 512: config/compilation.py 0.28.0
# line 692), where the runner pays them from the budget (graphs_in_budget); the public logs print 0.09-0.81 GiB.
_CUDA_GRAPH_GIB = Range(0.2, 0.8, 1.0)
# Non-torch memory a multi-GPU layout adds (NCCL's and the custom all-reduce's buffers), per GPU: llm-d-benchmark's
# H100 logs of one vLLM (tests/data/public_logs.json) print 0.13-0.14 GiB of non-torch memory at TP 1 and
# 0.54-0.55 GiB at TP 2. Counted whenever TP × PP > 1; measured for TP 2 only.
MULTI_GPU_NON_TORCH_GIB = 0.41


def multi_gpu_gib(settings: ServeSettings) -> float:
    return MULTI_GPU_NON_TORCH_GIB if settings.tensor_parallel_size * settings.pipeline_parallel_size > 1 else 0.0


# --------------------------------------------------------------------------------------------
# The profile peak. vLLM sizes the KV cache after one profile run: a forward of max_num_batched_tokens,
# then on the last pipeline rank a sampler warm-up of max_num_seqs rows of logits. The forward has freed
# all but its output hidden states when the sampler runs, so the peak is the larger of the two.
# What the sampler holds depends on which model runner the version picks for the model, and on the
# sampler code of that version. The line numbers are from the released wheels (scripts/vllm_source.py
# fetches any of them): vllm/v1/worker/gpu_model_runner.py is the V1 runner, vllm/v1/worker/gpu/ the V2 one.

# Model runner V2 as the default, by version (vllm/config/vllm.py: `use_v2_model_runner` and
# DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES): 0.22.1 line 69 (Qwen3 only), 0.23.0 line 69 (Llama, Mistral,
# Qwen3), 0.24.0 line 68 (those and three MoE); from 0.25.1 (line 68, `_is_default_v2_model_runner_model`)
# every dense model and the listed MoE; from 0.29.0 (line 645) every model. Given as config.json model_type.
_V2_RUNNER_FAMILIES = {
    (0, 22): {"qwen3"},
    (0, 23): {"qwen3", "llama", "mistral"},
    (0, 24): {"qwen3", "llama", "mistral", "deepseek_v2", "qwen2_moe", "granitemoe"},
}
_V2_RUNNER_MOE = {"deepseek_v2", "qwen2_moe", "granitemoe"}  # 0.25-0.28: the MoE families on the list


def model_runner(spec: ModelSpec, settings: ServeSettings) -> str:
    """Which GPU model runner vLLM's version picks for this model when VLLM_USE_V2_MODEL_RUNNER is unset:
    "V0" (before 0.8), "V1" (vllm/v1/worker/gpu_model_runner.py) or "V2" (vllm/v1/worker/gpu/model_runner.py)."""
    version = settings.version[:2]
    if not settings.v1:
        return "V0"
    if version < (0, 22):
        return "V1"
    if version >= (0, 29):
        return "V2"
    if version >= (0, 25):
        return "V2" if not spec.num_experts or spec.family in _V2_RUNNER_MOE else "V1"
    return "V2" if spec.family in _V2_RUNNER_FAMILIES[version] else "V1"


# Bytes the sampler warm-up holds per element of max_num_seqs × vocab, at its peak, with the source it is
# counted from. Each V1 release's _dummy_sampler_run samples with temperature 0.5, top-p 0.9 and top-k
# vocab - 1 (gpu_model_runner.py: 0.8.5.post1 line 1512, 0.10.2 line 2840, 0.16.0 line 4944, 0.21.0 line 5702),
# so the top-k/top-p path runs; the V2 runner's dummy batch has temperature 0, top-k = vocab, top-p 1
# (gpu/sample/states.py 0.27.1 lines 22-35), so its sampler skips every logits step until 0.33.
_SAMPLER_BYTES = (
    # (runner, first version, bytes per logit, what is alive at the peak)
    ("V1", (0, 8), 38, "V1 runner, PyTorch top-k/top-p (sample/ops/topk_topp_sampler.py apply_top_k_top_p, "
                       "0.8.5.post1 line 170, 0.16.0 line 243), peaking inside its logits.sort: the model-dtype "
                       "logits 2 B, their fp32 copy 4 B (sample/sampler.py 0.8.5.post1 line 39, 0.11.2 line 87), "
                       "the sorted values 4 B and int64 indices 8 B, and torch.sort's CUDA segmented sort beside "
                       "them (an int64 iota of the indices 8 B, a radix-sort buffer for keys and values 12 B). "
                       "llm-d-benchmark's H100 logs (tests/data/public_logs.json) report 4.76, 5.56 and 5.64 GiB of "
                       "peak activation for 1024 rows of Llama-3.1-8B, Qwen3-0.6B and Qwen3-32B: 38.2-38.4 B per "
                       "logit. With FlashInfer installed (vLLM's Docker image), 0.8-0.10 sample with FlashInfer "
                       "instead and hold less; from 0.11 FlashInfer is opt-in (VLLM_USE_FLASHINFER_SAMPLER=1)"),
    ("V1", (0, 17), 14, "V1 runner, Triton top-k/top-p in place (topk_topp_sampler.py 0.17.1 line 251: batches "
                        "of 8 or more; its buffer is at most SMs × vocab): the model-dtype logits 2 B, the fp32 "
                        "copy 4 B, the probabilities 4 B and the exponential noise 4 B (random_sample, 0.17.1 "
                        "line 325); from 0.21 a second call (gpu_model_runner.py 0.21.0 line 5758) takes the "
                        "same path"),
    ("V2", (0, 22), 2, "V2 runner: the model-dtype logits only (gpu/model_runner.py 0.27.1 line 683, 0.32.0 "
                       "line 972; gpu/sample/sampler.py 0.27.1 line 200 skips the fp32 copy when no request "
                       "needs processing, and gumbel_sample keeps one value per block)"),
    ("V2", (0, 33), 14, "V2 runner with the warm-up pass (gpu/model_runner.py 0.33.0 line 993: "
                        "SamplingParams.for_sampler_warmup): the model-dtype logits 2 B, the fp32 copy 4 B "
                        "(gpu/sample/sampler.py 0.33.0 line 242), the min-p probabilities 4 B and the logprobs' "
                        "log-softmax 4 B"),
)


@dataclass(frozen=True)
class ProfilePeak:
    """The two peaks of vLLM's profile run on one GPU, in bytes, and what they were counted from."""

    forward: int
    sampler: int  # 0 before V1: V0 profiled no sampler warm-up
    runner: str
    sampler_bytes_per_logit: int
    sampler_source: str
    tokens: int  # the profile batch (max_num_batched_tokens)
    seqs: int  # max_num_seqs

    @property
    def peak(self) -> int:
        return max(self.forward, self.sampler)


def profile_peak(spec: ModelSpec, tokens: int, settings: ServeSettings, seqs: int = 256) -> ProfilePeak:
    """The profile run's peaks. The forward (profile_run → _dummy_run(max_num_tokens): gpu_model_runner.py
    0.32.0 line 6193, gpu/model_runner.py 0.32.0 line 1003): per token, the residual stream and the MLP's
    gate/up/act outputs in 16 bits, 2 × (4·hidden + 3·intermediate) B, split by TP. The sampler: min(tokens,
    max_num_seqs) rows of the full vocabulary (the logits are gathered to every TP rank, so TP does not
    divide it) at _SAMPLER_BYTES per element, plus the forward's hidden states it keeps alive."""
    inter = spec.experts_per_token * spec.moe_intermediate_size if spec.num_experts else spec.intermediate_size
    forward = tokens * 2 * (4 * spec.hidden_size + 3 * inter) // settings.tensor_parallel_size
    runner = model_runner(spec, settings)
    if runner == "V0":
        return ProfilePeak(forward, 0, runner, 0, "V0 profiles no sampler warm-up", tokens, seqs)
    version = settings.version[:2]
    _, _, per_logit, source = [row for row in _SAMPLER_BYTES if row[0] == runner and version >= row[1]][-1]
    rows = min(tokens, seqs)
    sampler = rows * spec.vocab_size * per_logit + tokens * spec.hidden_size * 2
    return ProfilePeak(forward, sampler, runner, per_logit, source, tokens, seqs)


def profile_peak_on(spec: ModelSpec, settings: ServeSettings, gpu) -> ProfilePeak:
    """profile_peak with the batch the engine will run on `gpu` (ServeSettings.batch: given, else vLLM's defaults)."""
    tokens, seqs = settings.batch(gpu)
    return profile_peak(spec, tokens, settings, seqs)


def graphs_in_budget(spec: ModelSpec, settings: ServeSettings) -> bool:
    """Whether vLLM pays this model's CUDA graphs from the gpu_memory_utilization budget. From v0.21 (not eager)
    determine_available_memory subtracts `model_runner.profile_cudagraph_memory()` from the KV pool
    (vllm/v1/worker/gpu_worker.py 0.22.1 lines 425-450, 0.28.0 lines 527-563, 0.32.0 lines 707-743). The V1 runner
    estimates its graphs there; the V2 runner's profile_cudagraph_memory is `return 0` in 0.22-0.28
    (gpu/model_runner.py 0.22.1 line 620, 0.25.1 line 680, 0.28.0 line 843), so its graphs are captured after the
    KV cache is sized and come out of the (1 - gpu_memory_utilization) headroom, as before v0.21: the 0.28 logs
    of an RTX 5090 print KV = budget - consumed - peak, the "CUDAGraph memory" beside it (tests/data/public_logs.json).
    From 0.29 the V2 runner estimates them too (gpu/model_runner.py 0.29.0 line 896, 0.32.0 line 1038)."""
    if not settings.graphs_in_budget:
        return False
    return not (model_runner(spec, settings) == "V2" and settings.version[:2] < (0, 29))


def workspace_term(runner: str, settings: ServeSettings) -> Range:
    """The fitted workspace of the V1 engine for the model runner the plan runs on: the V2 term where its fit rows
    are (the V2 runner of 0.22-0.28, whose graphs stay outside the budget); the V1 term elsewhere, the V2 runner of
    0.29 and later included, which no public log in the table shows yet (README, "Where it is weakest")."""
    return _V2_WORKSPACE_GIB if runner == "V2" and settings.version[:2] < (0, 29) else _V1_WORKSPACE_GIB


def fixed_overheads(settings: ServeSettings, non_torch: Range | None = None, workspace: Range | None = None,
                    graphs: bool | None = None, runner: str = "V1") -> Range:
    """The overheads beside the computed activations and multi-GPU buffers, per scenario: non-torch memory, in V1
    the workspace of the model runner (`runner`), and the CUDA graphs where vLLM pays them from the budget
    (`graphs`: graphs_in_budget for the model; default, the version's rule). `non_torch`/`workspace` replace the
    fitted terms (the fit does)."""
    parts = [non_torch or _NON_TORCH_GIB]
    if settings.v1:
        parts.append(workspace or workspace_term(runner, settings))
    if settings.graphs_in_budget if graphs is None else graphs:
        parts.append(_CUDA_GRAPH_GIB)
    return Range(*(sum(getattr(p, f) for p in parts) for f in ("optimistic", "nominal", "pessimistic")))


def plan(spec: ModelSpec, gpu, quant: str = "bf16", settings: ServeSettings | None = None,
         group_size: int | None = DEFAULT_GROUP_SIZE, weights_gib: float | None = None,
         overhead_gib: Range | None = None) -> Plan:
    """Plan one deployment on `gpu` (a hardware.GpuSpec). Pure; raises ConfigError on bad input.
    `overhead_gib`: the fixed overheads fitted to a start-up log (workbench.calibrate), in place of the
    non-torch, workspace and CUDA-graph terms fitted on public logs."""
    settings = settings or ServeSettings()
    fmt = quant_format(quant)
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    if spec.num_kv_heads % tp and tp % spec.num_kv_heads:
        raise ConfigError(f"tensor_parallel_size={tp} does not divide {spec.name}'s {spec.num_kv_heads} KV heads "
                          f"(nor the reverse). Valid: {', '.join(str(d) for d in _divisors(spec.num_kv_heads))}.")
    if spec.num_heads % tp:
        raise ConfigError(f"tensor_parallel_size={tp} does not divide {spec.name}'s {spec.num_heads} attention heads. "
                          f"Valid: {', '.join(str(d) for d in _divisors(spec.num_heads))}.")
    if fmt.uses_group_size and group_size not in (None, -1) and group_size <= 0:
        raise ConfigError(f"group_size={group_size} must be positive (or -1 for per-channel).")

    requested = int(gpu.total_gib * settings.effective_gmu() * GIB)
    weights = int(weights_gib * GIB) if weights_gib is not None else weight_bytes(spec, quant, group_size) // (tp * pp)
    kv_per_token = kv_bytes_per_token(spec, settings.kv_cache_dtype, tp, pp)
    page = BLOCK_SIZE * kv_per_token

    peak = profile_peak_on(spec, settings, gpu)
    tokens, seqs = peak.tokens, peak.seqs
    computed = peak.peak  # the part the overheads do not hold
    buffers = int(multi_gpu_gib(settings) * GIB)  # computed too: the layout decides it, not the machine
    in_budget = graphs_in_budget(spec, settings)
    overheads = overhead_gib or fixed_overheads(settings, graphs=in_budget, runner=peak.runner)

    def pool(scenario: int) -> int:
        return requested - weights - computed - buffers - int((overheads.optimistic, overheads.nominal,
                                                               overheads.pessimistic)[scenario] * GIB)

    kv_pool = pool(1)
    kv_tokens = kv_cache_tokens(kv_pool, kv_per_token)
    need_one = math.ceil(settings.max_model_len / BLOCK_SIZE) * page
    suggested = max(0, min(kv_tokens, spec.max_position_embeddings or kv_tokens))
    if overhead_gib is None:  # the breakdown shown: the workspace with the activations, graphs apart
        activation = computed + (int(workspace_term(peak.runner, settings).nominal * GIB) if settings.v1 else 0)
        graphs = int(_CUDA_GRAPH_GIB.nominal * GIB) if in_budget else 0
        non_torch = int(_NON_TORCH_GIB.nominal * GIB) + buffers
    else:  # one fitted term holds the non-torch memory, the workspace and the graphs
        activation, graphs, non_torch = computed, 0, int(overhead_gib.nominal * GIB) + buffers

    if kv_pool <= 0:
        fits = False
        reason = (f"the weights ({weights / GIB:.2f} GiB) and overheads leave no KV cache in the "
                  f"{requested / GIB:.2f} GiB vLLM may use ({gpu.total_gib} GiB × {settings.effective_gmu():.2f}). "
                  "vLLM would stop with: \"No available memory for the cache blocks. Try increasing "
                  "`gpu_memory_utilization` when initializing the engine.\"")
    elif need_one > kv_pool:
        fits = False
        reason = (f"max_model_len={settings.max_model_len:,} needs {need_one / GIB:.2f} GiB of KV cache but "
                  f"{kv_pool / GIB:.2f} GiB is left. vLLM would stop with: \"To serve at least one request with "
                  f"the models's max seq len ({settings.max_model_len}), ({need_one / GIB:.2f} GiB KV cache is "
                  f"needed, which is larger than the available KV cache memory ({kv_pool / GIB:.2f} GiB). Based "
                  f"on the available memory, the estimated maximum model length is {kv_tokens}.\"")
    else:
        fits = True
        reason = (f"{kv_pool / GIB:.2f} GiB of KV cache holds {kv_tokens:,} tokens, "
                  f"{max_concurrency(kv_tokens, settings.max_model_len):.2f} requests of {settings.max_model_len:,} tokens")
    warnings = []
    version_note = modelled_version(settings.vllm_version)[1]
    if version_note:
        warnings.append(version_note)
    if spec.sliding_window:
        warnings.append(f"{spec.name} mixes sliding-window and full attention: vLLM keeps several KV groups "
                        "and the single formula used here does not hold.")
    if settings.max_model_len > (spec.max_position_embeddings or settings.max_model_len):
        warnings.append(f"max_model_len {settings.max_model_len:,} exceeds the model's "
                        f"max_position_embeddings {spec.max_position_embeddings:,} (needs RoPE scaling).")
    suggestions = []
    if settings.kv_cache_dtype == "auto":
        suggestions.append("--kv-cache-dtype fp8 halves the KV cache per token "
                           f"({kv_per_token:,} → {kv_per_token // 2:,} B)")
    if settings.effective_gmu() < 0.95:
        suggestions.append("raise --gpu-memory-utilization toward 0.95 if nothing else uses the GPU")
    if not fits and kv_pool <= 0 and tp == 1:
        suggestions.append("split the weights with --tensor-parallel-size 2 (two GPUs)" +
                           (", or quantize (gptq-int4)" if fmt.weight_bits >= 16 else ", or take a smaller model"))

    checkpoint, note, online_quant = serve_checkpoint(spec, quant)
    flags = vllm_flags.flags_of(settings, model=checkpoint, gpu_memory_utilization=settings.effective_gmu(),
                                quantization=quant if online_quant else settings.quantization, device="gpu",
                                **{k: getattr(settings, k) or v for k, v in family_parsers(spec).items()})

    ranges = Range(*(max(0, pool(i)) / GIB for i in range(3)))
    assumptions = _assumptions(settings, gpu, tokens, seqs, weights_gib is not None, overhead_gib, peak, in_budget)
    return Plan(assumptions=assumptions,
        model=spec.name, gpu=gpu.name, quant=quant, requested_bytes=requested, weights_bytes=weights,
        activation_bytes=activation, non_torch_bytes=non_torch, cuda_graph_bytes=graphs,
        kv_bytes_per_token=kv_per_token, kv_cache_bytes=max(0, kv_pool), kv_cache_tokens=kv_tokens,
        max_concurrency=round(max_concurrency(kv_tokens, settings.max_model_len), 2), fits=fits, reason=reason,
        suggested_max_model_len=suggested, kv_cache_gib_range=ranges, warnings=tuple(warnings),
        suggestions=tuple(suggestions), flags=flags, checkpoint_note=note,
        decode_tok_s_bound=_rounded(decode_tokens_per_s_bound(spec, gpu, weights * tp * pp, settings.max_model_len,
                                                              kv_per_token * tp * pp, tp=tp * pp), 1),
        prefill_s_bound=_rounded(prefill_seconds_bound(spec, gpu, settings.max_model_len, tp=tp * pp), 2),
    )


def _assumptions(settings: ServeSettings, gpu, tokens: int, seqs: int, weights_measured: bool,
                 overhead_gib: Range | None = None, peak: ProfilePeak | None = None,
                 in_budget: bool | None = None) -> tuple[str, ...]:
    """What the plan took for granted, each with where it comes from: the flags to set if it is wrong."""
    out = []
    in_budget = settings.graphs_in_budget if in_budget is None else in_budget
    if settings.graphs_in_budget and not in_budget:
        out.append(f"CUDA graphs outside the budget: vLLM {settings.vllm_version}'s V2 model runner does not estimate "
                   "them before sizing the KV cache (profile_cudagraph_memory returns 0 in 0.22-0.28; memory.py cites "
                   "the lines), so they come out of the (1 - gpu_memory_utilization) headroom; leave room for them.")
    if peak is not None and peak.runner != "V0":
        larger = "sampler warm-up" if peak.sampler > peak.forward else "forward"
        out.append(f"profile peak {peak.peak / GIB:.2f} GiB, the {larger}: vLLM {settings.vllm_version} runs this model "
                   f"on its {peak.runner} model runner, whose sampler warm-up holds {peak.sampler_bytes_per_logit} B "
                   f"per logit of max_num_seqs × vocab ({peak.sampler / GIB:.2f} GiB) beside a forward of "
                   f"{peak.forward / GIB:.2f} GiB (memory.py cites the vLLM lines). VLLM_USE_V2_MODEL_RUNNER=0/1 "
                   "changes the runner.")
    if settings.gpu_memory_utilization is None:
        out.append(f"gpu_memory_utilization {settings.effective_gmu():.2f}: vLLM {settings.vllm_version}'s default "
                   "(0.92 from v0.21, when CUDA-graph memory joined the budget; 0.90 before). Set "
                   "--gpu-memory-utilization to yours.")
    if settings.max_num_batched_tokens is None:
        why = ("V1 profiles one batch of max_num_batched_tokens; vLLM's default for a GPU of "
               f"{gpu.total_gib} GiB" if settings.v1 else "V0 profiles a whole max_model_len prompt")
        out.append(f"profile batch {tokens:,} tokens: {why}. Set --max-num-batched-tokens to yours.")
    if settings.max_num_seqs is None:
        why = (f"vLLM {settings.vllm_version}'s default for a GPU of {gpu.total_gib} GiB" if settings.v1
               else "V0's default")
        out.append(f"max_num_seqs {seqs}: {why}; it sizes the sampler's logits in the profile. Set --max-num-seqs "
                   "to yours.")
    if overhead_gib is not None:
        out.append(f"overheads {overhead_gib.nominal:.2f} GiB ({overhead_gib.optimistic:.2f}–{overhead_gib.pessimistic:.2f}): "
                   "fitted to the start-up log given with --calibrate-from (non-torch memory, workspace and CUDA "
                   "graphs in one term); the activations are recomputed for these settings.")
    else:
        runner = peak.runner if peak is not None else "V1"
        ws = workspace_term(runner, settings)
        out.append("overheads (nominal, with the range from optimistic to pessimistic): non-torch "
                   f"{_NON_TORCH_GIB.nominal} GiB ({_NON_TORCH_GIB.optimistic}–{_NON_TORCH_GIB.pessimistic}), "
                   f"{'V2' if ws is _V2_WORKSPACE_GIB else 'V1'}-runner workspace {ws.nominal} GiB ({ws.optimistic}–{ws.pessimistic})" + (f", CUDA graphs {_CUDA_GRAPH_GIB.nominal} GiB "
                                                         f"({_CUDA_GRAPH_GIB.optimistic}–{_CUDA_GRAPH_GIB.pessimistic})"
                                                         if in_budget else "")
                   + "; (min, median, max) of what public start-up logs imply (tests/data/public_logs.json).")
    if not weights_measured:
        out.append("weights computed from the architecture and the format; give --weights-gib with vLLM's "
                   "\"Model loading took\" to use the measured value.")
    return tuple(out)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def family_parsers(spec: ModelSpec) -> dict:
    """The parsers a plan's command carries: every one known for the model's family (vllm_flags), so that tool
    calls and Qwen3's reasoning come back as fields; a family with none gets none."""
    fmt = spec.chat_format or vllm_flags.chat_format(spec.family)
    return vllm_flags.parsers(spec.family, fmt, tools=fmt in vllm_flags.TOOL_PARSERS,
                              reasoning=spec.family in vllm_flags.REASONING_PARSERS)


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
        return spec.checkpoint, (f"{spec.checkpoint} quantized to {quant} by vLLM while loading "
                                 "(`--quantization`); no published checkpoint needed."), True
    folder = f"./{spec.name}-{quant}"
    others = ", ".join(f"{q} ({r})" for q, r in published.items())
    how = (f"`workbench quantize {spec.checkpoint} --bits {int(fmt.weight_bits)} --group-size 128 --out {folder}`"
           if quant.startswith("gptq") else f"a {quant} tool of its own")
    return folder, (f"No {quant} checkpoint of {spec.name} is published: make {folder} with {how}" +
                    (f", or plan one that is: {others}." if others else ".")), False


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# --------------------------------------------------------------------------------------------
# Roofline
def decode_tokens_per_s_bound(spec: ModelSpec, gpu, weights_bytes_total: int, context_tokens: int,
                              kv_bytes_per_token_total: int, batch: int = 1, tp: int = 1) -> float | None:
    """Upper bound on decode speed per sequence: every step reads all weights once and each sequence's
    KV cache; bandwidth is the limit at small batch. tokens/s ≤ B / (W + batch × ctx × kv) × batch / batch.
    None when the GPU's bandwidth is not known."""
    if not gpu.bandwidth_gb_s:
        return None
    bytes_per_step = weights_bytes_total + batch * context_tokens * kv_bytes_per_token_total
    return gpu.bandwidth_gb_s * 1e9 * tp / bytes_per_step


def prefill_seconds_bound(spec: ModelSpec, gpu, prompt_tokens: int, tp: int = 1) -> float | None:
    """Lower bound on prefill time: 2 × active params × tokens FLOPs, plus attention's
    2 × 2 × layers × tokens² × heads × head_dim / 2 (causal), at the GPU's dense fp16 rate.
    None when the GPU's FLOP/s are not known."""
    if not gpu.fp16_tflops:
        return None
    active = spec.total_params() - spec.vocab_size * spec.hidden_size  # the input embedding is a lookup
    if spec.num_experts:
        active -= spec.num_layers * (spec.num_experts - spec.experts_per_token) * 3 * spec.hidden_size \
            * spec.moe_intermediate_size
    flops = 2 * active * prompt_tokens + 2 * spec.num_layers * prompt_tokens**2 * spec.num_heads * spec.head_dim
    return flops / (gpu.fp16_tflops * 1e12 * tp)


def sweep_context(spec: ModelSpec, gpu, quant: str, settings: ServeSettings, lengths: list[int],
                  group_size: int | None = DEFAULT_GROUP_SIZE, weights_gib: float | None = None,
                  plan_at=None) -> list[dict]:
    """Memory and concurrency against max_model_len: one row per length. `plan_at(settings) -> Plan`
    replaces this module's plan (a calibrated planner, for one)."""
    plan_at = plan_at or (lambda s: plan(spec, gpu, quant, s, group_size, weights_gib))
    rows = []
    for length in lengths:
        p = plan_at(replace(settings, max_model_len=length))
        rows.append({"max_model_len": length, "kv_one_request_gib": round(length * p.kv_bytes_per_token / GIB, 2),
                     "kv_cache_gib": p.gib(p.kv_cache_bytes), "max_concurrency": p.max_concurrency, "fits": p.fits})
    return rows


PARALLEL_SIZES = (1, 2, 4, 8)


def sweep_parallel(spec: ModelSpec, gpu, quant: str, settings: ServeSettings, group_size: int | None = DEFAULT_GROUP_SIZE,
                   gpus_per_node: int = 8, max_gpus: int = 64, plan_at=None) -> dict:
    """Tensor × pipeline parallel layouts, each planned per GPU: `rows` (tp, pp, GPUs, nodes, per-GPU weights
    and KV cache, KV tokens, concurrency, fits) and the `choice`: the fewest GPUs that fit, with TP inside a
    node (it needs the fast links) and PP across nodes, as vLLM's docs advise (docs/serving/parallelism_scaling.md).
    Sizes the model's heads do not divide are skipped. PP is taken as an even split of the layers; in vLLM the
    first and last stages also hold the embeddings and lm_head, so those two GPUs carry slightly more.
    `plan_at(settings) -> Plan` replaces this module's plan (a calibrated planner, for one)."""
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
            rows.append({"tp": tp, "pp": pp, "gpus": gpus, "nodes": nodes,
                         "weights_gib_per_gpu": p_.gib(p_.weights_bytes), "kv_cache_gib_per_gpu": p_.gib(p_.kv_cache_bytes),
                         "kv_cache_tokens": p_.kv_cache_tokens, "max_concurrency": p_.max_concurrency, "fits": p_.fits,
                         "vllm_args": flags.serve_argv(), "command": flags.command()})
    fitting = sorted((r for r in rows if r["fits"]), key=lambda r: (r["gpus"], -r["tp"]))
    choice = fitting[0] if fitting else None
    if choice is None:
        verdict = (f"no layout of up to {max_gpus} {gpu.name} GPUs holds {spec.name} ({quant}) at "
                   f"{settings.max_model_len:,} tokens: quantize further or shorten the context.")
    elif choice["nodes"] > 1:
        verdict = (f"{spec.name} ({quant}) needs {choice['gpus']} {gpu.name} GPUs: more than one node of "
                   f"{gpus_per_node}. Use TP {choice['tp']} inside each node and PP {choice['pp']} across "
                   f"{choice['nodes']} nodes, with vLLM's Ray backend (--distributed-executor-backend ray).")
    else:
        verdict = (f"{spec.name} ({quant}) fits on {choice['gpus']} {gpu.name} GPU{'s' if choice['gpus'] > 1 else ''}"
                   f" of one node: TP {choice['tp']}" + (f" × PP {choice['pp']}" if choice["pp"] > 1 else "") + ".")
    return {"rows": rows, "choice": choice, "verdict": verdict, "gpus_per_node": gpus_per_node}


def compare_with_served(spec: ModelSpec, served: dict, plan_: Plan | None = None) -> list[dict]:
    """Planned vs reported for a running engine (`served` from Client.served_cache()). The token
    count is checked on the server's own pool and block size, so it must match exactly."""
    per_token = kv_bytes_per_token(spec, served["cache_dtype"])
    tokens = kv_cache_tokens(served["kv_cache_bytes"], per_token, served["block_size"])
    rows = [
        {"fact": "kv_bytes_per_token", "planned": per_token, "reported": None, "match": None},
        {"fact": "kv_cache_tokens", "planned": tokens, "reported": served["kv_cache_tokens"],
         "match": tokens == served["kv_cache_tokens"]},
    ]
    if served.get("max_model_len"):
        conc = round(max_concurrency(tokens, served["max_model_len"], served["block_size"]), 2)
        rows.append({"fact": "max_concurrency", "planned": conc, "reported": round(served["max_concurrency"], 2),
                     "match": conc == round(served["max_concurrency"], 2)})
    if plan_ is not None:
        planned, reported = plan_.kv_cache_bytes / GIB, served["kv_cache_bytes"] / GIB
        rows.append({"fact": "kv_cache_gib", "planned": round(planned, 2), "reported": round(reported, 2),
                     "match": abs(planned - reported) <= 0.3})
    return rows


def flag_claims(plan_: Plan, context_tokens: int, decode_tok_s: float | None = None,
                ttft_s: float | None = None) -> list[str]:
    """Claims that beat the roofline (decode speed above the bandwidth bound at that context,
    time to first token below the FLOP bound for that prompt) are physically impossible."""
    flags = []
    if decode_tok_s is not None and plan_.decode_tok_s_bound is not None and decode_tok_s > plan_.decode_tok_s_bound:
        flags.append(f"claimed decode {decode_tok_s:g} tok/s exceeds the bandwidth bound of "
                     f"{plan_.decode_tok_s_bound:g} tok/s at {context_tokens:,} tokens of context on {plan_.gpu}")
    if ttft_s is not None and plan_.prefill_s_bound is not None and ttft_s < plan_.prefill_s_bound:
        flags.append(f"claimed TTFT {ttft_s:g} s is below the {plan_.prefill_s_bound:g} s that prefilling "
                     f"{context_tokens:,} tokens needs at {plan_.gpu}'s peak FLOP/s")
    return flags
