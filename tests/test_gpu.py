"""What only a CUDA GPU can show (`-m gpu`; skipped elsewhere with the reason, tests/conftest.py): the reference
plan (Qwen3-14B INT4 at 32K) against the real vLLM's start-up report on this card, and a GPTQ checkpoint the
workbench made, served through the GPU's INT4 kernels. One engine per GPU: the session's engine steps aside for each
and is started again on its own port afterwards."""

from dataclasses import replace

import pytest

from workbench import planner
from workbench.quantization import quantize
from workbench.serving import hardware, models
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT, Client
from workbench.serving.engine import EngineConfig

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
REFERENCE = "Qwen/Qwen3-14B-AWQ"  # Qwen's own INT4 checkpoint: the reference case without a quantization run


@pytest.fixture(scope="module")
def gpu(engine):
    """The GPU, free: the session's engine (if this session started it) is stopped, then brought back on its port."""
    if not engine.owned:
        pytest.skip(
            f"the GPU is held by the engine at {engine.url}, which this session did not start; "
            "run without WORKBENCH_TEST_URL"
        )
    engine.config = replace(engine.config, port=int(engine.url.rsplit(":", 1)[1]))
    engine.stop()
    yield hardware.detect_gpus()[0]
    engine.start()


def test_the_reference_plan_matches_what_vllm_reports_on_this_card(gpu, start_engine):
    config = EngineConfig(model=REFERENCE, max_model_len=32_768, gpu_memory_utilization=0.92, startup_timeout_s=1800)
    report = start_engine(config).report
    settings = planner.ServeSettings(max_model_len=32_768, gpu_memory_utilization=0.92)
    answer = planner.plan(
        planner.PlanRequest(
            model=REFERENCE, gpu=gpu.name, gpu_total_gib=gpu.total_bytes / 2**30, quant="awq-int4", settings=settings
        )
    )
    plan = answer.plan
    assert plan.fits
    assert report.weights_gib == pytest.approx(plan.gib(plan.weights_bytes), rel=0.03)
    # the KV cache is what profiling leaves: the planner's range must hold what vLLM found
    assert plan.kv_cache_gib_range.pessimistic <= report.kv_cache_gib <= plan.kv_cache_gib_range.optimistic, (
        report,
        plan.kv_cache_gib_range,
    )


def test_a_gptq_checkpoint_made_here_is_served_with_the_gpu_int4_kernel(gpu, start_engine):
    result = quantize.cached(
        models.BUNDLED_MODEL, quantize.QuantizeSettings(method="gptq", group_size=64, samples=8, seq_len=256)
    )
    engine = start_engine(EngineConfig(model=str(result.out), max_model_len=2048, gpu_memory_utilization=0.5))
    assert "Marlin" in (engine.report.linear_kernel or ""), engine.report  # Ampere and newer
    answer = Client(engine.base_url).chat(
        "What is the capital of France?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=32
    )
    assert "Paris" in answer.text
