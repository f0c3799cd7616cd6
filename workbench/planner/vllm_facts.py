"""vllm_facts.py holds what each vLLM release does that the memory budget depends on: the releases the planner
models, the block sizes, the engine (V0 or V1) and the GPU model runner (V1 or V2) a release picks for a model, what
its sampler warm-up holds per logit, and whether it pays CUDA graphs from the gpu_memory_utilization budget. Each
fact cites the vLLM source lines it is read from. `ServeSettings` is the flags a plan is for plus the vLLM version,
and answers these questions for itself.

These are facts of the memory model, so they live in the planner. vLLM's defaults by version are the serve flags'
(vllm_flags.py: SERVE_FLAGS, and `batch_defaults` for max_num_batched_tokens and max_num_seqs by device); the
default gpu_memory_utilization of `ServeSettings.effective_gmu` is still here, tied to whether CUDA graphs are in the
budget. No arithmetic over bytes here (budget.py) and no I/O.
"""

import re
from dataclasses import dataclass

from workbench import reference
from workbench.errors import ConfigError
from workbench.serving.model_catalog import ModelSpec
from workbench.serving.vllm_flags import ServeFlags, batch_defaults

BLOCK_SIZE = 16  # vLLM's default block size on GPUs
CPU_BLOCK_SIZE = 128  # vLLM's CPU build pages the KV cache in blocks of 128 tokens
DEFAULT_VLLM_VERSION = "0.32.0"  # the release both targets install (pyproject.toml), and the newest the tables know
COMPILE_CACHES = ("cold", "warm")  # torch.compile's cache at start-up: empty, or holding this model's graphs
MODELLED_VERSIONS = ("0.6.0", "0.33.0")  # the releases whose defaults, budget and profile run the planner follows


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def modelled_version(version: str) -> tuple[str, str | None]:
    """The vLLM version a plan follows for `version`, and a note when that is not `version` itself: a release
    older or newer than MODELLED_VERSIONS is planned with the nearest one the planner models."""
    parsed = version_tuple(version)
    if len(parsed) < 2:
        raise ConfigError(
            f"vLLM version {version!r} is not a version number. Fix: give it as printed by "
            f"`vllm --version`, e.g. {DEFAULT_VLLM_VERSION}."
        )
    oldest, newest = MODELLED_VERSIONS
    nearest = (
        oldest if parsed[:2] < version_tuple(oldest)[:2] else newest if parsed[:2] > version_tuple(newest)[:2] else None
    )
    if nearest is None:
        return version, None
    return nearest, (
        f"vLLM {version} is outside the releases the planner models ({oldest[:-2]} to {newest[:-2]}): "
        f"planned as {nearest}, the nearest one it knows. Its defaults, budget and profile run may "
        f"differ from {version}'s; compare the plan with what that vLLM prints at start-up."
    )


@dataclass(frozen=True)
class ServeSettings(ServeFlags):
    """The flags a plan is for (vllm_flags.ServeFlags; `None` leaves vLLM's default for the version and GPU),
    and the vLLM version whose defaults and profile the plan follows. The model is the plan's ModelSpec."""

    max_model_len: int | None = reference.MAX_MODEL_LEN
    vllm_version: str = DEFAULT_VLLM_VERSION
    # Whether torch.compile's cache (~/.cache/vllm/torch_compile_cache) already holds this model and these settings:
    # "cold" on a first start (or in a container without that folder mounted), "warm" on every later one. On the V2
    # model runner a cold compile runs inside the profile window and raises the peak (budget.COLD_COMPILE_BYTES).
    compile_cache: str = "cold"

    def __post_init__(self):
        super().__post_init__()
        if self.max_model_len is None:
            raise ConfigError("max_model_len is needed to plan. Fix: give the context length, e.g. 32768.")
        if self.compile_cache not in COMPILE_CACHES:
            raise ConfigError(
                f"compile_cache={self.compile_cache!r} is not one of {', '.join(COMPILE_CACHES)}. Fix: cold for a "
                "first start (vLLM compiles the model), warm when an earlier start with these settings compiled it."
            )
        modelled_version(self.vllm_version)  # a version number, or a clear error

    @property
    def version(self) -> tuple[int, ...]:
        return version_tuple(self.vllm_version)

    @property
    def v1(self) -> bool:
        """The V1 engine (default from 0.8): profiles a fixed batch of tokens, not max_model_len."""
        return self.version >= (0, 8)

    @property
    def graphs_in_budget(self) -> bool:
        """From v0.21 vLLM profiles CUDA-graph memory by default and pays it from the budget (PR #38284), and its
        default gpu_memory_utilization is 0.92; none when eager. Whether the model runner the model gets estimates
        its graphs is `vllm_facts.graphs_in_budget(spec, settings)`: the V2 runner of 0.22-0.28 does not."""
        return self.version >= (0, 21) and not self.enforce_eager

    def effective_gmu(self) -> float:
        if self.gpu_memory_utilization is not None:
            return self.gpu_memory_utilization
        return 0.92 if self.graphs_in_budget else 0.90

    def batch(self, gpu) -> tuple[int, int]:
        """(max_num_batched_tokens, max_num_seqs) the engine will run with: the ones given, else vLLM's
        defaults for this version and GPU. The profile's activations and sampler scale with both."""
        if self.v1:
            tokens, seqs = batch_defaults("gpu", gpu)
        else:  # V0 profiled a whole max_model_len prompt unless chunked prefill was on (above 32K)
            tokens, seqs = (max(self.max_model_len, 2048) if self.max_model_len <= 32_768 else 2048), 256
        return self.max_num_batched_tokens or tokens, self.max_num_seqs or seqs


# The model runner. vLLM sizes the KV cache after one profile run on the GPU model runner the release picks; the
# line numbers are from the released wheels (scripts/vllm_source.py fetches any of them):
# vllm/v1/worker/gpu_model_runner.py is the V1 runner, vllm/v1/worker/gpu/ the V2 one.

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
    "V0" (before 0.8), "V1" (vllm/v1/worker/gpu_model_runner.py) or "V2" (vllm/v1/worker/gpu/model_runner.py).
    0.22 and 0.23 keep a quantized checkpoint (spec.declared_quant: AWQ, GPTQ, FP8) on V1:
    `_is_default_v2_model_runner_model` ends in `not model_config.is_moe and not model_config.is_quantized`
    (config/vllm.py 0.22.1 line 532, 0.23.0 line 558); 0.24 checks the architecture list only (0.24.0 lines 549-561).
    Quantization changes nothing from 0.24; `VLLM_USE_V2_MODEL_RUNNER=0`, no Triton, `--logits-processors` or
    prompt embeds send any release back to V1 (config/vllm.py 0.28.0 lines 2369-2476)."""
    version = settings.version[:2]
    if not settings.v1:
        return "V0"
    if version < (0, 22):
        return "V1"
    if version < (0, 24) and spec.declared_quant:  # a checkpoint whose config.json has a quantization_config
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
    (
        "V1",
        (0, 8),
        38,
        "V1 runner, PyTorch top-k/top-p (sample/ops/topk_topp_sampler.py apply_top_k_top_p, "
        "0.8.5.post1 line 170, 0.16.0 line 243), peaking inside its logits.sort: the model-dtype "
        "logits 2 B, their fp32 copy 4 B (sample/sampler.py 0.8.5.post1 line 39, 0.11.2 line 87), "
        "the sorted values 4 B and int64 indices 8 B, and torch.sort's CUDA segmented sort beside "
        "them (an int64 iota of the indices 8 B, a radix-sort buffer for keys and values 12 B). "
        "llm-d-benchmark's H100 logs (tests/data/public_logs.json) report 4.76, 5.56 and 5.64 GiB of "
        "peak activation for 1024 rows of Llama-3.1-8B, Qwen3-0.6B and Qwen3-32B: 38.2-38.4 B per "
        "logit. With FlashInfer installed (vLLM's Docker image), 0.8-0.10 sample with FlashInfer "
        "instead and hold less; from 0.11 FlashInfer is opt-in (VLLM_USE_FLASHINFER_SAMPLER=1)",
    ),
    (
        "V1",
        (0, 17),
        14,
        "V1 runner, Triton top-k/top-p in place (topk_topp_sampler.py 0.17.1 line 251: batches "
        "of 8 or more; its buffer is at most SMs × vocab): the model-dtype logits 2 B, the fp32 "
        "copy 4 B, the probabilities 4 B and the exponential noise 4 B (random_sample, 0.17.1 "
        "line 325); from 0.21 a second call (gpu_model_runner.py 0.21.0 line 5758) takes the "
        "same path",
    ),
    (
        "V2",
        (0, 22),
        2,
        "V2 runner: the model-dtype logits only (gpu/model_runner.py 0.27.1 line 683, 0.32.0 "
        "line 972; gpu/sample/sampler.py 0.27.1 line 200 skips the fp32 copy when no request "
        "needs processing, and gumbel_sample keeps one value per block)",
    ),
    (
        "V2",
        (0, 33),
        14,
        "V2 runner with the warm-up pass (gpu/model_runner.py 0.33.0 line 993: "
        "SamplingParams.for_sampler_warmup): the model-dtype logits 2 B, the fp32 copy 4 B "
        "(gpu/sample/sampler.py 0.33.0 line 242), the min-p probabilities 4 B and the logprobs' "
        "log-softmax 4 B",
    ),
)


def sampler_bytes_per_logit(runner: str, settings: ServeSettings) -> tuple[int, str]:
    """What the sampler warm-up of `runner` (V1 or V2) holds per logit in the settings' release, and its source."""
    version = settings.version[:2]
    _, _, per_logit, source = [row for row in _SAMPLER_BYTES if row[0] == runner and version >= row[1]][-1]
    return per_logit, source


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
