"""The roofline bounds the seed's speed claims: decode by the GPU's bandwidth, prefill by its FLOP/s."""

import json
import subprocess
import sys

import pytest

from workbench.planner import budget, gpu_plan, roofline
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving import hardware, models


def test_roofline_bounds_the_seeds_claims():
    spec, gpu = models.CATALOG["Qwen3-14B"], hardware.find_gpu("3090")
    weights = budget.weight_bytes(spec, "gptq-int4")
    assert roofline.decode_tokens_per_s_bound(spec, gpu, weights, 0, 163_840) == pytest.approx(93.9, abs=1)
    assert roofline.prefill_seconds_bound(spec, gpu, 32_768) > 1.2 * 10  # "TTFT 1.2 s at 32K" is impossible


def test_the_seeds_speed_claims_are_flagged():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "plan",
            "--model",
            "Qwen3-14B",
            "--gpu",
            "3090",
            "--quant",
            "gptq-int4",
            "--max-model-len",
            "32768",
            "--claim-tok-s",
            "80",
            "--claim-ttft-s",
            "1.2",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    flags = json.loads(out.stdout)["claim_flags"]
    assert len(flags) == 2 and "80 tok/s exceeds" in flags[0] and "TTFT 1.2 s" in flags[1]
    plan = gpu_plan.plan(
        models.CATALOG["Qwen3-14B"], hardware.find_gpu("3090"), "gptq-int4", ServeSettings(max_model_len=32768)
    )
    assert roofline.flag_claims(plan, 32768, decode_tok_s=40, ttft_s=60) == []
