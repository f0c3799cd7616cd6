"""One planner call for every face (`planner.plan`): a request answers the same in the CLI, the Plan tab and the
Jupyter planner, with or without a calibration log, swept over contexts or over TP × PP, and a calibrated sweep is
one call."""

import json
import re

import pytest

from tests.planner.helpers import CPU_LOG, public_log
from workbench import cli, planner
from workbench.errors import ConfigError
from workbench.planner import sweeps


def a100_log() -> str:
    """A public start-up log: Llama-3.1-8B bf16 on an A100 40GB at 128K, vLLM 0.15.1, eager."""
    return public_log("llama31-8b-bf16-a100-40gb-128k-v0.15-eager")


def test_the_cli_the_tab_and_the_notebook_get_the_same_answer(capsys):
    from workbench import jupyter
    from workbench.ui.plan_tab import run_plan

    request = planner.PlanRequest(
        gpu="RTX 3090", quant="gptq-int4", settings=planner.ServeSettings(max_model_len=16384)
    )
    answer = planner.plan(request)
    assert cli.main(["plan", "--gpu", "RTX 3090", "--quant", "gptq-int4", "--max-model-len", "16384", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(answer.to_json())
    summary, bar, curve, command, raw = run_plan(
        "Qwen3-14B", "RTX 3090", "gptq-int4", 128, 16384, None, "auto", 1, 1, None, None, "", None
    )
    assert json.loads(json.dumps(raw)) == printed and command == answer.command and summary == answer.to_markdown()
    notebook = jupyter.plan_for("Qwen3-14B", "RTX 3090", "gptq-int4", 16384, None, "auto")
    assert notebook.plan == answer.plan and [r.max_model_len for r in notebook.curve] == [
        n for n in sweeps.CONTEXTS if n <= 40960
    ]


def test_a_calibrated_parallel_sweep_is_one_call_with_the_logs_fit():
    """`workbench plan --calibrate-from LOG --parallel`: the log's overhead in every layout of the sweep."""
    request = planner.PlanRequest(
        model="Llama-3.1-8B",
        gpu="A100 40GB",
        log_text=a100_log(),
        parallel=True,
        gpus_per_node=2,
        settings=planner.ServeSettings(max_model_len=131072),
    )
    answer = planner.plan(request)
    assert answer.calibration is not None and answer.sweep.rows
    overhead = answer.calibration.overhead_gib
    one = next(r for r in answer.sweep.rows if (r.tp, r.pp) == (1, 1))
    alone = planner.plan(
        planner.PlanRequest(
            model="Llama-3.1-8B",
            gpu="A100 40GB",
            log_text=a100_log(),
            settings=planner.ServeSettings(max_model_len=131072),
        )
    )
    assert one.kv_cache_tokens == alone.plan.kv_cache_tokens  # the calibrated plan, not the public-log one
    assert "calibrated from the log" in answer.to_text() and f"overhead_gib {overhead}" in answer.to_text()


def test_a_cpu_build_log_plans_its_kv_cache_space():
    answer = planner.plan(
        planner.PlanRequest(
            model="smollm2-135m-instruct",
            log_path=str(CPU_LOG),
            kv_space_gib=2,
            settings=planner.ServeSettings(max_model_len=4096),
        )
    )
    assert isinstance(answer, planner.CpuAnswer)  # the CPU build's plan: no GPU budget
    assert answer.plan.kv_cache_tokens == 93_184  # ⌊2 × 2³⁰ / (128 × 23,040)⌋ × 128
    assert answer.command.startswith("VLLM_CPU_KVCACHE_SPACE=2 python -m vllm.entrypoints.openai.api_server")


def test_a_log_without_a_gpu_named_plans_on_the_logs_own_memory():
    """A 0.6.4 log prints the GPU's memory: without --gpu the plan is for that card."""
    log = public_log("llama31-8b-bf16-rtx3090-20k-v0.6.4")
    answer = planner.plan(planner.PlanRequest(model="Llama-3.1-8B", log_text=log))
    assert answer.gpu.name == "the log's GPU" and answer.gpu.total_gib == answer.calibration.facts.total_gib > 23
    with pytest.raises(ConfigError, match="does not print the GPU's memory.*add --gpu NAME or --gpu-total-gib"):
        planner.plan(planner.PlanRequest(model="Llama-3.1-8B", log_text=a100_log()))


def test_bad_requests_name_the_value():
    with pytest.raises(ConfigError, match="'GTX 9999'"):
        planner.plan(planner.PlanRequest(gpu="GTX 9999"))
    with pytest.raises(ConfigError, match="--kv-space-gib 1.5 is not a whole, positive number of GiB"):
        planner.plan(planner.PlanRequest(model="smollm2-135m-instruct", kv_space_gib=1.5, log_path=str(CPU_LOG)))


def test_a_log_file_that_cannot_be_read_is_named_as_the_flag_gave_it(tmp_path):
    missing = tmp_path / "serve.log"
    with pytest.raises(
        ConfigError, match=re.escape(f"--calibrate-from '{missing}': cannot read it") + ".*saved `vllm serve` log"
    ):
        planner.plan(planner.PlanRequest(model="Llama-3.1-8B", log_path=str(missing)))
    with pytest.raises(ConfigError, match="the uploaded log: cannot read it"):
        planner.plan(planner.PlanRequest(model="Llama-3.1-8B", log_path=str(missing), log_source="the uploaded log"))
