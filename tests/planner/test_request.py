"""What a request plans: the format a checkpoint declares wins over the one asked for, and a declaration the
planner cannot size is refused unless the weights are measured."""

import json

import pytest

from tests.planner.helpers import DATA
from workbench import planner
from workbench.errors import ConfigError


def folder_declaring(tmp_path, quantization_config: dict):
    config = json.loads((DATA / "hub" / "Qwen3-14B-AWQ" / "config.json").read_text())
    config["quantization_config"] = quantization_config
    (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


def test_the_declared_format_wins_and_the_asked_one_is_said_not_to_apply(tmp_path):
    folder = folder_declaring(tmp_path, {"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True})
    answer = planner.plan(planner.PlanRequest(model=folder, gpu="RTX 3090", quant="bf16"))
    assert answer.plan.quant == "gptq-int4" and answer.request.quant == "gptq-int4"
    assert "the checkpoint declares gptq-int4, so --quant bf16 does not apply" in answer.weights_source


def test_a_format_the_planner_cannot_size_needs_the_measured_weights(tmp_path):
    folder = folder_declaring(tmp_path, {"quant_method": "hqq", "nbits": 4})
    with pytest.raises(ConfigError, match="declares quant_method 'hqq'.*Valid: bf16.*--weights-gib"):
        planner.plan(planner.PlanRequest(model=folder, gpu="RTX 3090"))
    measured = planner.plan(planner.PlanRequest(model=folder, gpu="RTX 3090", weights_gib=8.5))
    assert measured.plan.weights_bytes == int(8.5 * 2**30) and measured.weights_source == "measured (--weights-gib)"
