"""`workbench plan --calibrate-from LOG`: the planner fitted to one start-up log of this machine."""

import json
from dataclasses import replace

import pytest

from tests.planner.helpers import CPU_LOG, GIB, LOGS, calibration_bench
from workbench import cli
from workbench.errors import ConfigError
from workbench.planner import budget, fit
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving import hardware, models


def plan_json(capsys, *argv) -> dict:
    assert cli.main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_cpu_log_checks_the_kv_arithmetic_and_plans_another_space(capsys):
    out = plan_json(
        capsys,
        "--model",
        "smollm2-135m-instruct",
        "--calibrate-from",
        str(CPU_LOG),
        "--kv-space-gib",
        "3",
        "--max-model-len",
        "4096",
    )
    assert out["calibrated"] is True
    cal = out["calibration"]
    assert cal["facts"]["kv_cache_tokens"] == 46_592 and cal["facts"]["kv_cache_gib"] == 1.0
    assert cal["residual"] == {"kv_cache_tokens": 0, "kv_cache_tokens_pct": 0.0}
    # three times the space, whole blocks of 128 tokens of 23,040 B each
    assert out["kv_cache_tokens"] == 3 * 2**30 // (128 * 23_040) * 128 and out["env"] == {"VLLM_CPU_KVCACHE_SPACE": "3"}


def test_a_log_of_another_model_is_used_and_said(capsys):
    out = plan_json(capsys, "--model", "Qwen3-0.6B", "--calibrate-from", str(CPU_LOG), "--max-model-len", "4096")
    assert any("the log served" in n and "Qwen3-0.6B" in n for n in out["calibration"]["notes"])
    assert out["kv_bytes_per_token"] == budget.kv_bytes_per_token(models.CATALOG["Qwen3-0.6B"])


def test_a_gpu_log_fits_one_overhead_that_reproduces_the_log():
    """The fitted overhead gives back the log's own KV cache, and a smaller profile batch frees exactly the
    activations it no longer needs (llm-d-benchmark's H100 log of Llama-3.1-8B)."""
    bench = calibration_bench()
    row = {r["id"]: r for r in bench.load_rows()}["llama31-8b-bf16-h100-16k-v0.14"]
    facts, settings, gpu = bench.log_facts(row), bench.settings_of(row), bench.gpu_of(row)
    spec = models.CATALOG["Llama-3.1-8B"]
    cal = fit.fit(spec, facts, gpu, settings)
    assert cal.residual.kv_cache_gib == pytest.approx(0, abs=0.01)
    same = fit.calibrated_plan(spec, gpu, "bf16", settings, cal, weights_gib=facts.weights_gib)
    assert same.kv_cache_bytes / 2**30 == pytest.approx(facts.kv_cache_gib, abs=0.01)
    smaller_settings = replace(settings, max_num_batched_tokens=2048)
    smaller = fit.calibrated_plan(spec, gpu, "bf16", smaller_settings, cal, weights_gib=facts.weights_gib)
    freed = budget.profile_peak_on(spec, settings, gpu).peak - budget.profile_peak_on(spec, smaller_settings, gpu).peak
    assert freed > 0 and smaller.kv_cache_bytes - same.kv_cache_bytes == pytest.approx(freed, abs=2**20)
    r = smaller.kv_cache_gib_range
    assert r.pessimistic < smaller.kv_cache_bytes / 2**30 < r.optimistic


def test_a_negative_machine_term_is_refused_with_the_reason():
    """vLLM 0.8-0.10's budget line, of a log that stores 524,291 B of KV cache per token: not Llama-3.1-8B. Planned
    as Llama-3.1-8B, the fit leaves -2.17 GiB for non-torch memory and graphs, which cannot be: refused, not used."""
    facts = fit.read_log((LOGS / "gpu_v0_memory_profile.log").read_text())
    assert (facts.total_gib, facts.gpu_memory_utilization, facts.weights_gib) == (79.19, 0.9, 12.55)
    settings = ServeSettings(max_model_len=8192, gpu_memory_utilization=0.9, vllm_version="0.10.0")
    with pytest.raises(ConfigError, match=r"-2\.\d\d GiB, below zero.*--log-model"):
        fit.fit(models.CATALOG["Llama-3.1-8B"], facts, settings=settings)


def test_a_log_without_the_gpu_memory_needs_the_gpu_named():
    facts = fit.read_log((LOGS / "gpu_v1_early_blocks.log").read_text())
    with pytest.raises(ConfigError, match="--gpu NAME or --gpu-total-gib"):
        fit.fit(models.CATALOG["Llama-3.1-70B"], facts)


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        (LOGS / "gpu_v1_gptq_marlin_tp2.log").read_text(),
        "llama_kv_cache_init: CUDA0 KV buffer size = 1024.00 MiB",
    ],
)
def test_a_log_the_parser_does_not_know_is_refused_with_the_lines_it_looks_for(text):
    with pytest.raises(ConfigError, match="not a vLLM start-up log this parser knows.*Available KV cache memory"):
        fit.read_log(text)


def test_a_log_of_one_model_predicts_another_on_the_same_machine():
    """The issue's case, on llm-d-benchmark's H100 logs: "I ran an 8B here; will the 32B fit?". Calibrated on
    Llama-3.1-8B, the plan for Qwen3-32B (and the others of that machine, TP 2 included) is within 5 % of the KV
    cache vLLM reported; the JSON says what was fitted and what was recomputed for each model."""
    bench = calibration_bench()
    rows = {r["id"]: r for r in bench.load_rows()}
    llama, qwen = rows["llama31-8b-bf16-h100-16k-v0.14"], rows["qwen3-32b-bf16-h100-16k-v0.14"]
    gpu = bench.gpu_of(qwen)
    cal = fit.fit(models.CATALOG["Qwen3-32B"], bench.log_facts(llama), gpu, bench.settings_of(qwen))
    plan = fit.calibrated_plan(
        models.CATALOG["Qwen3-32B"], gpu, "bf16", bench.settings_of(qwen), cal, weights_gib=qwen["facts"]["weights_gib"]
    )
    assert plan.kv_cache_bytes / 2**30 == pytest.approx(4.45, rel=0.05)
    out = cal.as_dict()
    assert (
        set(out["fitted_terms"]) == {"overhead_gib", "requested_gib"} and abs(out["fitted_terms"]["overhead_gib"]) < 0.5
    )
    log, planned = out["recomputed_terms"]["log"], out["recomputed_terms"]["plan"]
    assert (log["model"], planned["model"]) == ("Llama-3.1-8B", "Qwen3-32B")
    assert (
        log["sampler_bytes_per_logit"] == planned["sampler_bytes_per_logit"] == 38 and planned["max_num_seqs"] == 1024
    )
    assert planned["peak_gib"] > log["peak_gib"]  # Qwen3's 152K vocabulary against Llama's 128K
    machine = [p for p in bench.pairs(list(rows.values())) if p["machine"] == "h100-llm-d-benchmark"]
    assert len(machine) == 20 and all(abs(p["error_pct"]) <= 5 for p in machine), machine


def test_a_log_of_a_version_the_planner_does_not_model_is_planned_with_the_nearest_and_said(tmp_path, capsys):
    log = tmp_path / "serve.log"
    text = (LOGS / "gpu_v0_memory_profile.log").read_text()
    log.write_text("INFO 01-01 00:00:00 [api_server.py:1] vLLM API server version 0.40.1\n" + text)
    before = log.read_text()
    out = plan_json(capsys, "--model", "Llama-3.1-8B", "--calibrate-from", str(log), "--max-model-len", "8192")
    notes = " ".join(out["calibration"]["notes"])
    assert (
        "vLLM 0.40.1 is outside the releases the planner models (0.6 to 0.33)" in notes and "planned as 0.33.0" in notes
    )
    assert out["calibration"]["recomputed_terms"]["plan"]["vllm_version"] == "0.33.0" and out["fits"]
    assert log.read_text() == before


def test_a_cold_start_log_plans_the_restart_and_an_eager_log_plans_the_graphs(tmp_path, capsys):
    """Two public pairs of one machine each. The RTX 4090's first Qwen3-8B start compiled (its "torch.compile took
    38.96 s"), got 4.92 GiB of KV cache and fits the machine's term; asked about a restart (--compile-cache warm) the
    planner gives the 5.91 GiB the next start printed. The RTX 5090's eager Qwen3-30B-A3B GPTQ run, asked about the same
    engine with CUDA graphs, gains the graph term its own run did not pay: 10.34 GiB printed."""
    from tests.planner.helpers import public_log

    cold = tmp_path / "cold.log"
    cold.write_text(public_log("qwen3-8b-bf16-rtx4090-8k-v0.27.1-coldcompile"))
    args = ["--model", "Qwen3-8B", "--calibrate-from", str(cold), "--vllm-version", "0.27.1", "--max-model-len", "8192"]
    first = plan_json(capsys, *args)
    restart = plan_json(capsys, *args, "--compile-cache", "warm")
    assert first["calibration"]["recomputed_terms"]["log"]["compile_gib"] == pytest.approx(1.18, abs=0.01)
    assert first["kv_cache_gib"] == pytest.approx(4.92, rel=0.01)
    assert restart["kv_cache_gib"] == pytest.approx(5.91, rel=0.02)

    # the eager log does not print its batch: the source read max_num_batched_tokens 8,192 and max_num_seqs 256 back
    # from the engine (vLLM's offline LLM defaults), given here as the bench gives them
    report = replace(
        fit.read_log(public_log("qwen3-30b-a3b-gptq-rtx5090-2k-v0.28.0-eager"), "eager.log"),
        max_num_batched_tokens=8192,
        max_num_seqs=256,
    )
    assert report.enforce_eager is True
    spec, gpu = models.CATALOG["Qwen3-30B-A3B"], hardware.find_gpu("RTX 5090", report.total_gib)
    settings = ServeSettings(
        max_model_len=2048,
        gpu_memory_utilization=0.9,
        vllm_version="0.28.0",
        max_num_batched_tokens=8192,
        max_num_seqs=256,
    )
    cal = fit.fit(spec, report, gpu, settings, "gptq-int4")
    assert cal.log_peaks.cuda_graphs_in_budget is False
    graphs = fit.calibrated_plan(spec, gpu, "gptq-int4", settings, cal, weights_gib=15.66)
    eager = fit.calibrated_plan(spec, gpu, "gptq-int4", replace(settings, enforce_eager=True), cal, weights_gib=15.66)
    assert graphs.kv_cache_bytes / GIB == pytest.approx(10.34, rel=0.02)  # what the run with graphs printed
    assert eager.kv_cache_bytes / GIB == pytest.approx(11.03, rel=0.01)  # the log itself
