"""One GPU's plan: the reference case, vLLM's own words when it does not fit, a command vLLM's parser takes, any
GPU by its memory, and what the plan assumed."""

import json
import subprocess
import sys
import time

import pytest

from tests.planner.helpers import GIB
from workbench.errors import ConfigError
from workbench.planner import budget, gpu_plan, roofline
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving import hardware, models


def test_qwen3_14b_on_a_3090():
    gpu = hardware.find_gpu("RTX 3090")
    spec = models.CATALOG["Qwen3-14B"]
    int4 = gpu_plan.plan(spec, gpu, "gptq-int4", ServeSettings(max_model_len=32_768))
    assert int4.fits and int4.weights_bytes / GIB == pytest.approx(9.3, abs=0.05)
    assert 1.5 < int4.max_concurrency < 2.5  # two 32K requests at once, not "4 before OOM"
    bf16 = gpu_plan.plan(spec, gpu, "bf16", ServeSettings(max_model_len=32_768))
    assert not bf16.fits and "27.51 GiB" in bf16.reason and "No available memory" in bf16.reason
    fp8 = gpu_plan.plan(spec, gpu, "gptq-int4", ServeSettings(max_model_len=32_768, kv_cache_dtype="fp8"))
    assert fp8.kv_cache_tokens == pytest.approx(2 * int4.kv_cache_tokens, rel=0.001)


def test_too_long_a_context_is_refused_with_vllms_words():
    p = gpu_plan.plan(
        models.CATALOG["Qwen3-8B"], hardware.find_gpu("RTX 3060 12GB"), "gptq-int4", ServeSettings(max_model_len=40_960)
    )
    assert not p.fits and "estimated maximum model length is" in p.reason
    assert 0 < p.suggested_max_model_len < 40_960


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: models.find_model("Qwen9-1T"), ["'Qwen9-1T'", "Qwen3-14B"]),
        (lambda: budget.quant_format("int3"), ["'int3'", "gptq-int4", "gguf-q4_k_m"]),
        (lambda: ServeSettings(gpu_memory_utilization=1.2), ["gpu_memory_utilization=1.2", "(0, 1]"]),
        (
            lambda: gpu_plan.plan(
                models.CATALOG["Qwen3-14B"], hardware.find_gpu("3090"), settings=ServeSettings(tensor_parallel_size=3)
            ),
            ["tensor_parallel_size=3", "1, 2, 4, 8"],
        ),
    ],
)
def test_bad_input_names_the_value_and_the_options(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_cli_plan_json_answers_fast():
    start = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "plan",
            "--model",
            "Qwen3-14B",
            "--gpu",
            "RTX 3090",
            "--quant",
            "gptq-int4",
            "--max-model-len",
            "32768",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert time.perf_counter() - start < 5  # interpreter start included; the plan itself takes microseconds
    plan = json.loads(out.stdout)
    for key in (
        "weights_gib",
        "activation_gib",
        "non_torch_gib",
        "cuda_graph_gib",
        "kv_bytes_per_token",
        "kv_cache_gib",
        "kv_cache_tokens",
        "max_concurrency",
        "fits",
        "reason",
        "suggested_max_model_len",
        "vllm_args",
        "decode_tok_s_bound",
        "prefill_s_bound",
    ):
        assert key in plan
    assert plan["kv_bytes_per_token"] == 163_840 and plan["fits"] is True


@pytest.mark.parametrize(
    "model, quant, checkpoint, flags",
    [
        (
            "Qwen3-14B",
            "awq-int4",
            "Qwen/Qwen3-14B-AWQ",
            ["--tool-call-parser", "hermes", "--reasoning-parser", "qwen3"],
        ),
        ("Qwen3-14B", "gptq-int4", "./Qwen3-14B-gptq-int4", ["--enable-auto-tool-choice", "--reasoning-parser"]),
        ("Qwen3-14B", "bf16", "Qwen/Qwen3-14B", ["--reasoning-parser"]),
        ("Qwen3-8B", "fp8", "Qwen/Qwen3-8B-FP8", ["--tool-call-parser"]),
        ("Qwen3-30B-A3B", "gptq-int4", "Qwen/Qwen3-30B-A3B-GPTQ-Int4", ["--reasoning-parser"]),
        ("Qwen2.5-7B-Instruct", "gptq-int4", "Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", ["--tool-call-parser", "hermes"]),
        ("Llama-3.1-8B", "fp8", "meta-llama/Llama-3.1-8B-Instruct", ["--quantization", "fp8", "llama3_json"]),
    ],
)
def test_the_plans_command_names_a_real_checkpoint_and_parses_in_vllm(model, quant, checkpoint, flags):
    """The copyable command: a checkpoint someone can pull (or make), the family's parsers, and nothing
    that vLLM's own argument parser refuses."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    plan = gpu_plan.plan(models.CATALOG[model], hardware.find_gpu("RTX 4090"), quant, ServeSettings(max_model_len=8192))
    args = list(plan.vllm_args)
    assert args[:3] == ["vllm", "serve", checkpoint]
    assert all(flag in args for flag in flags)
    parsed = make_arg_parser(FlexibleArgumentParser()).parse_args(args[2:])
    assert parsed.model_tag == checkpoint and parsed.max_model_len == 8192
    if "--reasoning-parser" in args:
        assert parsed.reasoning_parser == "qwen3" and parsed.enable_auto_tool_choice
    if checkpoint.startswith("./"):
        assert (
            f"workbench quantize Qwen/{model}" in plan.checkpoint_note and "Qwen/Qwen3-14B-AWQ" in plan.checkpoint_note
        )


def test_any_gpu_plans_from_its_memory_and_says_which_bounds_it_lacks():
    known = gpu_plan.plan(
        models.CATALOG["Qwen3-14B"], hardware.find_gpu("RTX 4090"), "awq-int4", ServeSettings(max_model_len=16384)
    )
    unknown = hardware.find_gpu("Tesla P40", total_gib=23.64)  # not in the catalog: the same memory as a 4090
    plan = gpu_plan.plan(models.CATALOG["Qwen3-14B"], unknown, "awq-int4", ServeSettings(max_model_len=16384))
    assert plan.gpu == "Tesla P40" and plan.kv_cache_tokens == known.kv_cache_tokens  # memory decides KV
    assert plan.decode_tok_s_bound is None and plan.prefill_s_bound is None
    assert "no decode bound" in plan.roofline(16384) and "--bandwidth-gbs" in plan.roofline(16384)
    assert roofline.flag_claims(plan, 16384, decode_tok_s=500, ttft_s=0.01) == []  # nothing to check them against
    with_bandwidth = gpu_plan.plan(
        models.CATALOG["Qwen3-14B"],
        hardware.find_gpu("Tesla P40", 23.64, 288),
        "awq-int4",
        ServeSettings(max_model_len=16384),
    )
    assert 0 < with_bandwidth.decode_tok_s_bound < known.decode_tok_s_bound  # 288 GB/s against the 4090's 1008


@pytest.mark.parametrize(
    "argv, words",
    [
        (
            [
                "--gpu",
                "Quadro P5000",
                "--gpu-total-gib",
                "15.9",
                "--model",
                "Qwen3-4B",
                "--quant",
                "awq-int4",
                "--max-model-len",
                "4096",
            ],
            ["Quadro P5000", "FITS", "no decode bound"],
        ),
        (
            [
                "--gpu",
                "RTX 4060",
                "--gpu-total-gib",
                "8",
                "--model",
                "Qwen3-4B",
                "--quant",
                "awq-int4",
                "--max-model-len",
                "4096",
            ],
            ["RTX 4060", "FITS", "decode ≤", "no prefill bound"],
        ),  # in the catalog now
        (
            [
                "--gpu",
                "Quadro P5000",
                "--gpu-total-gib",
                "15.9",
                "--bandwidth-gbs",
                "288",
                "--model",
                "Qwen3-4B",
                "--max-model-len",
                "4096",
                "--quant",
                "awq-int4",
            ],
            ["decode ≤", "no prefill bound"],
        ),
    ],
)
def test_the_cli_plans_a_gpu_outside_the_catalog(argv, words):
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "plan", *argv], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for word in words:
        assert word in out.stdout, (word, out.stdout)


def test_plan_json_says_its_kv_range_and_what_it_assumed():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "plan",
            "--model",
            "Qwen3-14B",
            "--gpu",
            "RTX 3090",
            "--quant",
            "gptq-int4",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    plan = json.loads(out.stdout)
    low, high = plan["kv_cache_gib_range"]
    assert low <= plan["kv_cache_gib"] <= high and high - low > 0.5
    assumed = " ".join(plan["assumptions"])
    for words in ("gpu_memory_utilization 0.92", "profile batch 2,048 tokens", "max_num_seqs 256", "--weights-gib"):
        assert words in assumed
    set_by_hand = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "plan",
            "--gpu-memory-utilization",
            "0.9",
            "--max-num-batched-tokens",
            "4096",
            "--weights-gib",
            "9.3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assumed = " ".join(json.loads(set_by_hand.stdout)["assumptions"])
    assert "gpu_memory_utilization" not in assumed and "profile batch" not in assumed and "--weights-gib" not in assumed


def test_a_16_gb_card_plans_qwen3_14b_int4_at_16k_from_the_catalog_or_from_its_memory(capsys):
    from workbench import cli

    # a first start compiles, and its peak leaves a 16 GB card short of one 16K request (vLLM would refuse to start,
    # naming the length that fits); a restart reads torch.compile's cache and fits
    for argv in (["--gpu", "RTX 4060 Ti 16GB"], ["--gpu", "my 16 GB card", "--gpu-total-gib", "15.6"]):
        plan = ["plan", "--model", "Qwen3-14B", *argv, "--quant", "gptq-int4", "--max-model-len", "16384", "--json"]
        assert cli.main(plan) == 0
        first = json.loads(capsys.readouterr().out)
        assert not first["fits"] and "estimated maximum model length is" in first["reason"]
        assert any("a restart reads torch.compile's cache" in s for s in first["suggestions"])
        assert cli.main([*plan, "--compile-cache", "warm"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["fits"] and 16_384 <= out["kv_cache_tokens"] and out["kv_cache_gib_range"][0] < out["kv_cache_gib"]
    assert out["decode_tok_s_bound"] is None  # an unknown card without --bandwidth-gbs: no roofline, said so


def test_a_card_that_also_drives_a_desktop_is_planned_with_what_is_free():
    """vLLM asks for total × gpu_memory_utilization whatever is free, and stops when less is free. An RTX 3090 whose
    desktop holds 2.4 GiB (21.2 GiB free: the free memory `--gpu local` reads through NVML; given here) cannot start at 0.92: the plan
    says so in vLLM's words and names the utilization that fits, which then plans."""
    from dataclasses import replace

    spec, settings = models.CATALOG["Qwen3-14B"], ServeSettings(max_model_len=32768)
    shared = replace(hardware.find_gpu("RTX 3090"), free_gib=21.2)
    p = gpu_plan.plan(spec, shared, "gptq-int4", settings)
    # vLLM reads what is free after making its own CUDA context (0.5 GiB planned): 20.70 GiB
    assert not p.fits and "Free memory on device (20.70/23.58 GiB) on startup is less than desired" in p.reason
    fix = next(s for s in p.suggestions if "fits what is free now" in s)
    assert fix.startswith("--gpu-memory-utilization 0.87 ")  # 0.87 × 23.58 = 20.51 GiB ≤ 20.70
    assert gpu_plan.plan(spec, shared, "gptq-int4", replace(settings, gpu_memory_utilization=0.88)).fits is False
    lower = gpu_plan.plan(spec, shared, "gptq-int4", replace(settings, gpu_memory_utilization=0.87))
    assert (
        lower.fits
        and lower.kv_cache_bytes
        < gpu_plan.plan(spec, hardware.find_gpu("RTX 3090"), "gptq-int4", settings).kv_cache_bytes
    )


RTX_3090_NVML_TOTAL = 24 * GIB  # NVML's total for an RTX 3090 (24576 MiB); CUDA reports 23.58 GiB of it


@pytest.mark.parametrize(
    "desktop_gib, rc, out, err",
    [
        (0.3, 0, "--gpu-memory-utilization 0.92 ", ""),  # a light desktop: vLLM's 8 % headroom holds it
        (2.4, 0, "--gpu-memory-utilization 0.87 ", "lowered from 0.92 to 0.87: 21.18 of 23.58 GiB"),
        (12.0, 1, "", "does not fit on RTX 3090: the weights"),
    ],
)
def test_make_runs_flags_fit_what_the_desktop_leaves(monkeypatch, capsys, desktop_gib, rc, out, err):
    """`make run` on a GPU asks `workbench plan --gpu local --fit-free --serve-flags` for vLLM's flags. NVML (faked: no
    driver here) reports the card, and what a desktop leaves free; the flags start vLLM past its free-memory check, or
    the plan's reason stops make run before vLLM starts."""
    from tests.fakes import FakeNvmlForTests
    from workbench.cli import main

    free = int((23.58 - desktop_gib) * GIB)
    gpu = ("NVIDIA GeForce RTX 3090", RTX_3090_NVML_TOTAL, free)
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvmlForTests("580.82.07", gpu))
    argv = ["plan", "--model", "Qwen3-14B", "--quant", "gptq-int4", "--gpu", "local", "--fit-free", "--serve-flags"]
    assert main(argv) == rc
    printed = capsys.readouterr()
    assert out in printed.out and err in printed.err
    if rc == 0:  # the flags are vLLM's start-up check, passed: CUDA total × utilization ≤ free less the context
        gmu = float(printed.out.split("--gpu-memory-utilization ")[1].split()[0])
        assert 23.58 * gmu <= free / GIB - hardware.CUDA_CONTEXT_GIB
        assert "--max-model-len 32768" in printed.out and "--reasoning-parser qwen3" in printed.out
    else:
        assert printed.out == "" and "try: close what holds the other 12.00 GiB of RTX 3090" in printed.err


def test_fit_free_needs_the_local_gpu(capsys):
    from workbench.cli import main

    assert main(["plan", "--model", "Qwen3-14B", "--gpu", "RTX 3090", "--fit-free"]) == 2
    assert "add --gpu local" in capsys.readouterr().err
