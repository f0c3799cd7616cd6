"""What each vLLM release does that the budget depends on: the batch defaults it plans with, the model runner it picks
for a model and what that runner's sampler warm-up holds, as the source lines vllm_facts.py cites have them."""

import pytest

from workbench.planner import budget, gpu_plan, vllm_facts
from workbench.serving import hardware, models


@pytest.mark.parametrize(
    "gpu, version, batched, seqs",
    [
        ("RTX 3090", "0.33.0", 2048, 256),
        ("A100 80GB", "0.33.0", 2048, 256),
        ("H100 80GB", "0.33.0", 8192, 1024),
        ("H200", "0.10.0", 8192, 1024),
        ("B200", "0.33.0", 16384, 1024),
        ("H100 80GB", "0.6.4", 32768, 256),
    ],
)
def test_the_planner_uses_vllms_batch_defaults_for_the_version_and_gpu(gpu, version, batched, seqs):
    settings = vllm_facts.ServeSettings(max_model_len=32768, vllm_version=version)
    assert settings.batch(hardware.find_gpu(gpu)) == (batched, seqs)
    plan = gpu_plan.plan(models.CATALOG["Qwen3-8B"], hardware.find_gpu(gpu), "bf16", settings)
    said = " ".join(plan.assumptions)
    assert f"profile batch {batched:,} tokens" in said and (f"max_num_seqs {seqs}" in said)
    given = vllm_facts.ServeSettings(
        max_model_len=32768, vllm_version=version, max_num_seqs=64, max_num_batched_tokens=4096
    )
    assert given.batch(hardware.find_gpu(gpu)) == (4096, 64)


@pytest.mark.parametrize(
    "model, version, runner, per_logit",
    [
        ("Qwen3-8B", "0.8.5", "V1", 38),
        ("Qwen3-8B", "0.16.0", "V1", 38),
        ("Qwen3-8B", "0.17.1", "V1", 14),
        ("Qwen3-8B", "0.21.0", "V1", 14),
        ("Qwen3-8B", "0.22.1", "V2", 2),
        ("Llama-3.1-8B", "0.22.1", "V1", 14),
        ("Llama-3.1-8B", "0.23.0", "V2", 2),
        ("Qwen3-30B-A3B", "0.24.0", "V1", 14),
        ("Qwen3-30B-A3B", "0.28.0", "V1", 14),
        ("DeepSeek-V2-Lite", "0.25.1", "V2", 2),
        ("Qwen2.5-7B-Instruct", "0.25.1", "V2", 2),
        ("Qwen3-30B-A3B", "0.29.0", "V2", 2),
        ("Qwen3-8B", "0.32.0", "V2", 2),
        ("Qwen3-8B", "0.33.0", "V2", 14),
    ],
)
def test_the_sampler_peak_follows_the_versions_model_runner(model, version, runner, per_logit):
    """Which model runner a release picks for the model decides what its profile's sampler holds (vllm_facts.py
    cites the source lines): V1 sorts in PyTorch until 0.16 and runs Triton from 0.17; V2 keeps the logits only
    until 0.33 adds its warm-up pass."""
    spec, s = models.CATALOG[model], vllm_facts.ServeSettings(vllm_version=version)
    peak = budget.profile_peak(spec, 8192, s, 1024)
    assert (peak.runner, peak.sampler_bytes_per_logit) == (runner, per_logit)
    assert peak.sampler == 1024 * spec.vocab_size * per_logit + 8192 * spec.hidden_size * 2
    assert budget.profile_peak(spec, 8192, vllm_facts.ServeSettings(vllm_version="0.6.4"), 1024).sampler == 0  # V0


def test_a_quantized_checkpoint_stays_on_the_v1_runner_in_0_22_and_0_23_only():
    """vLLM 0.22 and 0.23 keep a checkpoint with a quantization_config on the V1 runner (config/vllm.py 0.22.1 line
    532): a GPTQ Qwen3-14B there gets V1's sampler and pays its CUDA graphs from the budget, so the plan differs from
    the bf16 model's runner; from 0.24 both run on V2. vLLM's own FP8 at load time reads the bf16 config: V2."""
    spec, gpu = models.CATALOG["Qwen3-14B"], hardware.find_gpu("RTX 3090")

    def peak_line(version, quant):
        s = vllm_facts.ServeSettings(vllm_version=version, max_model_len=8192)
        return next(a for a in gpu_plan.plan(spec, gpu, quant, s).assumptions if a.startswith("profile peak"))

    assert "V1 model runner" in peak_line("0.23.0", "gptq-int4")
    assert "V2 model runner" in peak_line("0.24.0", "gptq-int4")
    assert "V2 model runner" in peak_line("0.23.0", "bf16")
    online = models.CATALOG["Llama-3.1-8B"]  # no published FP8: vLLM quantizes the bf16 checkpoint while loading
    s = vllm_facts.ServeSettings(vllm_version="0.23.0", max_model_len=8192)
    assert "V2 model runner" in next(a for a in gpu_plan.plan(online, gpu, "fp8", s).assumptions if "profile peak" in a)
