"""budget.py computes the terms of vLLM's memory budget for one GPU: the weights per format, the KV cache's bytes
per token and the tokens a pool holds (on the CPU build too), the concurrency, the profile run's peaks, and the
overheads fitted on public start-up logs. Pure arithmetic over frozen dataclasses, no I/O: adding the terms up for
a GPU is gpu_plan.py's, the catalog and the reading of checkpoints (`ModelSpec`) are models.py's, and which vLLM
release does what is vllm_facts.py's.

The budget follows vLLM's own code (vllm/v1/worker/gpu_worker.py, vllm/v1/core/kv_cache_utils.py):

    requested  = total_gpu_memory × gpu_memory_utilization
    kv_pool    = requested − weights − peak_activation − non_torch (− cuda_graphs, from v0.21)
    num_blocks = floor(kv_pool / (block_size × kv_bytes_per_token))        block_size = 16
    kv_tokens  = num_blocks × block_size
    max_concurrency = num_blocks / ceil(max_model_len / block_size)

On vLLM's CPU build the pool is exactly VLLM_CPU_KVCACHE_SPACE GiB and blocks hold 128 tokens
(its metrics say `block_size="128"`), so the token count is exact.
"""

import math
from dataclasses import dataclass

from workbench import reference
from workbench.errors import ConfigError
from workbench.planner.vllm_facts import (
    BLOCK_SIZE,
    CPU_BLOCK_SIZE,
    ServeSettings,
    model_runner,
    sampler_bytes_per_logit,
)
from workbench.serving.model_catalog import ModelSpec

GIB = 2**30


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


QUANT_FORMATS: dict[str, QuantFormat] = {
    q.name: q
    for q in [
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
    ]
}
DEFAULT_GROUP_SIZE = reference.GROUP_SIZE


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


# --------------------------------------------------------------------------------------------
# The KV cache
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
    return kv_cache_tokens(int(space_gib * GIB), kv_bytes_per_token(spec, kv_cache_dtype), CPU_BLOCK_SIZE)


def max_concurrency(kv_tokens: int, max_model_len: int, block_size: int = BLOCK_SIZE) -> float:
    """vLLM's "Maximum concurrency for L tokens per request": blocks / blocks per request."""
    return (kv_tokens // block_size) / math.ceil(max_model_len / block_size)


# --------------------------------------------------------------------------------------------
# The overheads
@dataclass(frozen=True)
class Range:
    optimistic: float
    nominal: float
    pessimistic: float


# Overheads (GiB) the profile adds beside the computed activations: optimistic / nominal / pessimistic,
# i.e. (min, median, max) of what the fit rows of tests/data/public_logs.json imply. Refit with
# `python bench/planner_calibration.py` (bench/results/planner_calibration.json); tests/planner/test_budget.py
# checks that these equal the fit.
NON_TORCH_GIB = Range(0.01, 0.21, 2.14)  # V0 rows: NCCL/cuBLAS buffers and the CUDA context's growth
V1_WORKSPACE_GIB = Range(-0.25, -0.01, 0.25)  # V1-runner rows, beyond non-torch: torch.compile buffers and the like
# V2-runner rows (0.22 on), beyond non-torch: what vLLM's "consumed memory" holds beyond the weights once the profile
# run is over (0.27+: mem_utils.py 0.28.0 lines 317-326 count the drop in free memory since the start-up snapshot),
# such as the runner's penalty counts, max_num_seqs × vocab × 4 B (gpu/sample/penalties.py 0.28.0 lines 32-42:
# 0.14 GiB for Qwen at 256 sequences), and, on a start that compiles, what the compile leaves behind (0-1.4 GiB in the
# logs: its pessimistic end). With the cold compile's peak counted (COLD_COMPILE_BYTES) the V2 logs leave 0.06-0.3 GiB
# here on a warm start (tests/data/public_logs.json; docs/planner-accuracy.md, "Where it is weakest").
V2_WORKSPACE_GIB = Range(0.06, 0.3, 1.81)
# CUDA graphs of the default capture sizes (1, 2, 4, 8-248 by 8, then by 16 to 512: config/compilation.py 0.28.0
# line 692), where the runner pays them from the budget (vllm_facts.graphs_in_budget); the public logs print
# 0.09-0.81 GiB.
CUDA_GRAPH_GIB = Range(0.2, 0.8, 1.0)
# Non-torch memory a multi-GPU layout adds (NCCL's and the custom all-reduce's buffers), per GPU: llm-d-benchmark's
# H100 logs of one vLLM (tests/data/public_logs.json) print 0.13-0.14 GiB of non-torch memory at TP 1 and
# 0.54-0.55 GiB at TP 2. Counted whenever TP × PP > 1; measured for TP 2 only.
MULTI_GPU_NON_TORCH_GIB = 0.41


def multi_gpu_gib(settings: ServeSettings) -> float:
    return MULTI_GPU_NON_TORCH_GIB if settings.tensor_parallel_size * settings.pipeline_parallel_size > 1 else 0.0


def moe_workspace_bytes(spec: ModelSpec, settings: ServeSettings, tokens: int) -> int:
    """The fused-MoE workspaces a mixture-of-experts model keeps after the profile run, per GPU. From 0.28 the experts
    take them from vLLM's workspace manager, which keeps them allocated and grows them on demand (v1/worker/workspace.py
    0.28.0 lines 143-207; fused_moe/modular_kernel.py 0.28.0 line 1167), so they leave the budget with the weights: for
    a batch of M = max_num_batched_tokens tokens, MarlinExperts.workspace_shapes (fused_moe/experts/marlin_moe.py 0.28.0
    lines 704-734) is (M·top-k, max(N, K)) and (M·top-k·max(2N, K)) and an (M, K) output in the activations' 16 bits,
    K = hidden_size, N = moe_intermediate_size / TP. Qwen3-30B-A3B GPTQ at 8,192 tokens: 0.53 GiB, most of what the
    RTX 5090 logs of 0.28.0 hold beside its weights (1.0 GiB; tests/data/public_logs.json). Earlier releases allocate
    the same caches inside each forward."""
    if not spec.num_experts or settings.version[:2] < (0, 28):
        return 0
    k, n = spec.hidden_size, spec.moe_intermediate_size // settings.tensor_parallel_size
    return tokens * (spec.experts_per_token * (max(n, k) + max(2 * n, k)) + k) * 2


def workspace_term(runner: str, settings: ServeSettings) -> Range:
    """The fitted workspace of the V1 engine for the model runner the plan runs on. The V2 term is fitted on the V2
    runner's logs of 0.24-0.28 and carried to 0.29 and later, which keep its persistent buffers and vLLM's 0.27
    accounting of "consumed memory" (gpu/sample/penalties.py 0.28.0 lines 32-42; mem_utils.py 0.28.0 lines 317-326,
    0.32.0 lines 312-321) and add the CUDA-graph estimate, which the graph term counts: no public log of 0.29 or later
    prints a V2 budget yet (docs/planner-accuracy.md, "Where it is weakest")."""
    return V2_WORKSPACE_GIB if runner == "V2" else V1_WORKSPACE_GIB


def fixed_overheads(
    settings: ServeSettings,
    non_torch: Range | None = None,
    workspace: Range | None = None,
    graphs: bool | None = None,
    runner: str = "V1",
) -> Range:
    """The overheads beside the computed activations and multi-GPU buffers, per scenario: non-torch memory, in V1
    the workspace of the model runner (`runner`), and the CUDA graphs where vLLM pays them from the budget
    (`graphs`: vllm_facts.graphs_in_budget for the model; default, the version's rule). `non_torch`/`workspace`
    replace the fitted terms (the fit does)."""
    parts = [non_torch or NON_TORCH_GIB]
    if settings.v1:
        parts.append(workspace or workspace_term(runner, settings))
    if settings.graphs_in_budget if graphs is None else graphs:
        parts.append(CUDA_GRAPH_GIB)
    return Range(*(sum(getattr(p, f) for p in parts) for f in ("optimistic", "nominal", "pessimistic")))


# --------------------------------------------------------------------------------------------
# The profile peak. vLLM sizes the KV cache after one profile run: a forward of max_num_batched_tokens,
# then on the last pipeline rank a sampler warm-up of max_num_seqs rows of logits. The forward has freed
# all but its output hidden states when the sampler runs, so the peak is the larger of the two. What the
# sampler holds depends on the model runner the version picks for the model (vllm_facts.py cites the lines).
# A cold torch.compile on the V2 model runner. vLLM compiles the model on the profile run's first forward, inside the
# window whose peak it subtracts from the budget; with the compile cache empty, the peak it prints is no longer the
# forward's but about 151 B per token of the profile batch per element of hidden_size, whatever the depth or the MLP:
# public logs of vLLM 0.27.1-0.28.0, all at the 2,048-token default batch (tests/data/public_logs.json), print
# 1.18 GiB for Qwen3-8B (hidden 4,096; 0.19 GiB on the warm start that followed), 0.59 for Qwen3-1.7B (2,048; warm
# 0.09), 1.46 for Qwen3-14B-AWQ and for Qwen3-32B-AWQ (both 5,120; warm 0.33 for the 32B) and 1.04 for
# Qwen2.5-7B-AWQ (3,584): 150.9, 151.0, 149.6, 149.6 and 152.2 B. The V1 runner's peak is the same cold or warm
# (an RTX 5090 log pair of Qwen3-30B-A3B-GPTQ on 0.28.0), and an eager engine compiles nothing. Measured at 2,048
# tokens and TP 1 only: above 2,048 the planner keeps the 2,048-token value (two 96 GB logs of Qwen3-32B at 8,192
# tokens and TP 2 or PP 2 leave 0.5 and 1.6 GiB beside the weights and KV cache, no room for four times as much), and
# it divides by TP as the forward does. Both are assumptions until a log shows a cold start at another batch.
COLD_COMPILE_BYTES = 151
COLD_COMPILE_TOKENS = 2048


@dataclass(frozen=True)
class ProfilePeak:
    """The peaks of vLLM's profile run on one GPU, in bytes, and what they were counted from."""

    forward: int
    sampler: int  # 0 before V1: V0 profiled no sampler warm-up
    runner: str
    sampler_bytes_per_logit: int
    sampler_source: str
    tokens: int  # the profile batch (max_num_batched_tokens)
    seqs: int  # max_num_seqs
    compile: int = 0  # a cold torch.compile's peak (COLD_COMPILE_BYTES), on the V2 runner with the cache empty

    @property
    def peak(self) -> int:
        return max(self.forward, self.sampler, self.compile)


def profile_peak(spec: ModelSpec, tokens: int, settings: ServeSettings, seqs: int = 256) -> ProfilePeak:
    """The profile run's peaks. The forward (profile_run → _dummy_run(max_num_tokens): gpu_model_runner.py
    0.32.0 line 6193, gpu/model_runner.py 0.32.0 line 1003): per token, the residual stream and the MLP's
    gate/up/act outputs in 16 bits, 2 × (4·hidden + 3·intermediate) B, split by TP. The sampler: min(tokens,
    max_num_seqs) rows of the full vocabulary (the logits are gathered to every TP rank, so TP does not
    divide it) at vllm_facts.sampler_bytes_per_logit per element, plus the forward's hidden states it keeps alive.
    On the V2 runner with torch.compile's cache cold (settings.compile_cache), the compile's peak
    (COLD_COMPILE_BYTES at up to COLD_COMPILE_TOKENS tokens, split by TP)."""
    inter = spec.experts_per_token * spec.moe_intermediate_size if spec.num_experts else spec.intermediate_size
    forward = tokens * 2 * (4 * spec.hidden_size + 3 * inter) // settings.tensor_parallel_size
    runner = model_runner(spec, settings)
    if runner == "V0":
        return ProfilePeak(forward, 0, runner, 0, "V0 profiles no sampler warm-up", tokens, seqs)
    per_logit, source = sampler_bytes_per_logit(runner, settings)
    rows = min(tokens, seqs)
    sampler = rows * spec.vocab_size * per_logit + tokens * spec.hidden_size * 2
    cold = runner == "V2" and not settings.enforce_eager and settings.compile_cache == "cold"
    compile_ = COLD_COMPILE_BYTES * min(tokens, COLD_COMPILE_TOKENS) * spec.hidden_size // settings.tensor_parallel_size
    compile_ = compile_ if cold else 0
    return ProfilePeak(forward, sampler, runner, per_logit, source, tokens, seqs, compile_)


def profile_peak_on(spec: ModelSpec, settings: ServeSettings, gpu) -> ProfilePeak:
    """profile_peak with the batch the engine will run on `gpu` (ServeSettings.batch: given, else vLLM's defaults)."""
    tokens, seqs = settings.batch(gpu)
    return profile_peak(spec, tokens, settings, seqs)
