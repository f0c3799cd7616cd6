"""Each kind of answer says the same things its own way: its command, its yes or no, its text, JSON and CSV."""

import json

from tests.planner.helpers import CPU_LOG
from workbench import cli, planner


def test_a_sweep_that_finds_no_layout_answers_no_and_prints_no_command(capsys):
    """Llama-3.1-70B in bf16 on 6 GB cards, one per node: sixteen pipeline stages still leave 8 GiB of weights on
    each, so no layout fits, `workbench plan` exits 1, and there is no command to copy."""
    argv = ["plan", "--model", "Llama-3.1-70B", "--gpu", "RTX 2060", "--parallel", "--gpus-per-node", "1"]
    assert cli.main(argv) == 1
    text = capsys.readouterr().out
    assert "no layout of up to 64 RTX 2060 GPUs holds Llama-3.1-70B (bf16)" in text and "command:" not in text
    assert cli.main(argv + ["--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["choice"] is None and printed["rows"] and not any(r["fits"] for r in printed["rows"])
    answer = planner.plan(planner.PlanRequest(model="Llama-3.1-70B", gpu="RTX 2060", parallel=True, gpus_per_node=1))
    assert not answer.ok and answer.command == "" and "`" not in answer.to_markdown()


def test_a_plan_that_does_not_fit_still_answers(capsys):
    """A plan answers whether it fits: bf16 Qwen3-14B on an RTX 3090 does not, and `workbench plan` says so with
    exit status 0 (only a sweep without a layout exits 1)."""
    answer = planner.plan(planner.PlanRequest(gpu="RTX 3090"))
    assert answer.ok and not answer.plan.fits and answer.command.startswith("vllm serve Qwen/Qwen3-14B ")
    assert cli.main(["plan", "--gpu", "RTX 3090"]) == 0 and "DOES NOT FIT" in capsys.readouterr().out


def test_each_answer_writes_its_csv_from_its_json():
    gpu = planner.plan(planner.PlanRequest(gpu="RTX 3090", quant="gptq-int4"))
    header, rows = gpu.csv_rows()
    scalars = {k: v for k, v in gpu.as_dict().items() if not isinstance(v, (dict, list))}
    assert header == ["term", "value"] and dict(rows) == scalars and scalars["kv_cache_tokens"] == 63_024
    cpu = planner.plan(
        planner.PlanRequest(
            model="smollm2-135m-instruct", log_path=str(CPU_LOG), settings=planner.ServeSettings(max_model_len=4096)
        )
    )
    terms = dict(cpu.csv_rows()[1])
    assert terms["kv_cache_tokens"] == 46_592 and terms["calibrated"] is True and "calibration" not in terms
    sweep = planner.plan(planner.PlanRequest(gpu="RTX 3090", parallel=True))
    header, rows = sweep.csv_rows()
    assert len(rows) == len(sweep.as_dict()["rows"]) and header[-1] == "command"
    assert sweep.command in [r[-1] for r in rows if r[header.index("fits")]]
