"""Many plans at once: the concurrency curve over context lengths, and the tensor × pipeline layouts."""

import pytest

from tests.planner.helpers import GIB
from workbench.planner import budget, gpu_plan, sweeps
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving import hardware, models


def test_the_parallel_sweep_splits_memory_per_gpu_and_says_when_one_node_is_not_enough():
    llama, rtx3090 = models.CATALOG["Llama-3.1-70B"], hardware.find_gpu("RTX 3090")
    sweep = sweeps.sweep_parallel(llama, rtx3090, "bf16", ServeSettings(max_model_len=16384), gpus_per_node=4)
    total = budget.weight_bytes(llama, "bf16") / GIB
    for row in sweep.rows:
        assert row.weights_gib_per_gpu == pytest.approx(total / row.gpus, abs=0.01)
    choice = sweep.choice
    assert (choice.tp, choice.pp, choice.nodes) == (4, 2, 2)
    assert not any(r.fits for r in sweep.rows if r.gpus < 8)  # 131 GiB of bf16 weights on 24 GB cards
    assert "more than one node of 4" in sweep.verdict and "Ray" in sweep.verdict
    assert "--distributed-executor-backend ray" in " ".join(choice.vllm_args)
    one_node = sweeps.sweep_parallel(models.CATALOG["Qwen3-14B"], rtx3090, "bf16", ServeSettings())
    assert (one_node.choice.tp, one_node.choice.pp) == (2, 1)
    assert "--distributed-executor-backend" not in one_node.choice.vllm_args


def test_the_context_curve_is_one_plan_per_length():
    """Each point is the plan at that max_model_len: its KV cache, and how many full-length requests fit."""
    spec, rtx3090 = models.CATALOG["Qwen3-14B"], hardware.find_gpu("RTX 3090")
    points = sweeps.sweep_context(spec, rtx3090, "gptq-int4", ServeSettings(), [8192, 32768, 131072])
    assert [p.max_model_len for p in points] == [8192, 32768, 131072]
    at_32k = gpu_plan.plan(spec, rtx3090, "gptq-int4", ServeSettings(max_model_len=32768))
    assert (points[1].max_concurrency, points[1].kv_cache_gib, points[1].fits) == (
        at_32k.max_concurrency,
        at_32k.gib(at_32k.kv_cache_bytes),
        True,
    )
    assert points[1].kv_one_request_gib == 5.0 and points[0].max_concurrency > points[1].max_concurrency
    assert not points[2].fits  # 20 GiB of KV cache for one 128K request: more than the card has left
