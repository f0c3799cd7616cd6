"""cpu_plan.py plans vLLM's CPU build: there the KV cache is exactly VLLM_CPU_KVCACHE_SPACE GiB, paged in blocks
of 128 tokens, so `cpu_plan` says what the build will report for a space, exactly (budget.cpu_kv_cache_tokens), and
the command that starts it. Nothing to fit and no GPU budget (gpu_plan.py); no I/O.
"""

from dataclasses import dataclass

from workbench.errors import ConfigError
from workbench.planner.budget import cpu_kv_cache_tokens, kv_bytes_per_token, max_concurrency
from workbench.planner.vllm_facts import CPU_BLOCK_SIZE
from workbench.serving.model_catalog import ModelSpec
from workbench.serving.vllm_flags import ServeFlags


@dataclass(frozen=True)
class CpuPlan:
    """What vLLM's CPU build will report for VLLM_CPU_KVCACHE_SPACE=kv_cache_gib, and the command that starts it."""

    model: str
    kv_cache_gib: float  # VLLM_CPU_KVCACHE_SPACE, whole GiB
    kv_bytes_per_token: int
    kv_cache_tokens: int
    max_model_len: int
    max_concurrency: float  # requests of max_model_len at once, rounded to 0.01
    flags: ServeFlags  # the command line that runs this plan on the CPU build

    @property
    def fits(self) -> bool:
        """One request of max_model_len fits in the space."""
        return self.kv_cache_tokens >= self.max_model_len

    def as_dict(self) -> dict:
        return {
            "device": "cpu",
            "model": self.model,
            "kv_cache_gib": self.kv_cache_gib,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_model_len": self.max_model_len,
            "max_concurrency": self.max_concurrency,
            "fits": self.fits,
            "env": self.flags.env(),
            "command": self.flags.command(),
        }


def cpu_plan(spec: ModelSpec, space_gib: float, max_model_len: int, kv_cache_dtype: str = "auto") -> CpuPlan:
    """What vLLM's CPU build will report for VLLM_CPU_KVCACHE_SPACE=space_gib."""
    if not space_gib > 0 or space_gib != int(space_gib):
        raise ConfigError(
            f"--kv-space-gib {space_gib:g} is not a whole, positive number of GiB (vLLM's CPU build "
            "reads VLLM_CPU_KVCACHE_SPACE with int()). Fix: give the KV cache space in whole GiB, "
            "e.g. 2."
        )
    tokens = cpu_kv_cache_tokens(spec, space_gib, kv_cache_dtype)
    flags = ServeFlags(
        model=spec.checkpoint or spec.name,
        max_model_len=max_model_len,
        kv_cache_dtype=kv_cache_dtype,
        cpu_kv_cache_gib=int(space_gib),
        device="cpu",
    )
    return CpuPlan(
        model=spec.name,
        kv_cache_gib=space_gib,
        kv_bytes_per_token=kv_bytes_per_token(spec, kv_cache_dtype),
        kv_cache_tokens=tokens,
        max_model_len=max_model_len,
        max_concurrency=round(max_concurrency(tokens, max_model_len, CPU_BLOCK_SIZE), 2),
        flags=flags,
    )
