"""roofline.py bounds a deployment's speed from the GPU's datasheet: decode cannot beat its memory bandwidth (every
step reads the weights and each sequence's KV cache) and prefill cannot beat its dense fp16 FLOP/s. A claim that
beats a bound is physically impossible, and `flag_claims` says so. Pure arithmetic; it measures nothing (the
benchmark does) and knows nothing about memory fitting (budget.py, gpu_plan.py).
"""

from workbench.serving.model_catalog import ModelSpec


def decode_tokens_per_s_bound(
    spec: ModelSpec,
    gpu,
    weights_bytes_total: int,
    context_tokens: int,
    kv_bytes_per_token_total: int,
    batch: int = 1,
    tp: int = 1,
) -> float | None:
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
        active -= (
            spec.num_layers
            * (spec.num_experts - spec.experts_per_token)
            * 3
            * spec.hidden_size
            * spec.moe_intermediate_size
        )
    flops = 2 * active * prompt_tokens + 2 * spec.num_layers * prompt_tokens**2 * spec.num_heads * spec.head_dim
    return flops / (gpu.fp16_tflops * 1e12 * tp)


def flag_claims(
    plan_, context_tokens: int, decode_tok_s: float | None = None, ttft_s: float | None = None
) -> list[str]:
    """Claims that beat the roofline of `plan_` (a gpu_plan.Plan: its bounds and GPU) are physically impossible:
    decode speed above the bandwidth bound at that context, time to first token below the FLOP bound for that
    prompt."""
    flags = []
    if decode_tok_s is not None and plan_.decode_tok_s_bound is not None and decode_tok_s > plan_.decode_tok_s_bound:
        flags.append(
            f"claimed decode {decode_tok_s:g} tok/s exceeds the bandwidth bound of "
            f"{plan_.decode_tok_s_bound:g} tok/s at {context_tokens:,} tokens of context on {plan_.gpu}"
        )
    if ttft_s is not None and plan_.prefill_s_bound is not None and ttft_s < plan_.prefill_s_bound:
        flags.append(
            f"claimed TTFT {ttft_s:g} s is below the {plan_.prefill_s_bound:g} s that prefilling "
            f"{context_tokens:,} tokens needs at {plan_.gpu}'s peak FLOP/s"
        )
    return flags
