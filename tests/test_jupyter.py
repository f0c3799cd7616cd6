"""The notebook face: core results show as tables and verdicts, and the widgets react to their controls and
leave a static copy of their state where no widget manager runs (nbval, GitHub)."""

import json
from pathlib import Path

import pytest

from workbench import jupyter
from workbench.measurement import bench, bench_report
from workbench.planner import gpu_plan
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving import hardware, models

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_a_plan_shows_its_verdict_budget_and_command():
    plan = gpu_plan.plan(
        models.find_model("Qwen3-14B"), hardware.find_gpu("RTX 3090"), "gptq-int4", ServeSettings(max_model_len=32768)
    )
    text = plan._repr_markdown_()
    assert text.startswith("### ✅ fits: Qwen3-14B (gptq-int4) on RTX 3090")
    assert (
        "| KV cache | 9.62 |" in text and "max concurrency at 32,768: **1.92**" in text
    )  # the reference plan (docs/planner.md)
    assert f"`{' '.join(plan.vllm_args)}`" in text
    bf16 = gpu_plan.plan(models.find_model("Qwen3-14B"), hardware.find_gpu("RTX 3090"), "bf16")
    assert bf16._repr_markdown_().startswith("### ❌ does not fit")


def test_a_bench_report_is_still_json_and_shows_as_a_table():
    level = {
        "concurrency": 2,
        "request_rate": None,
        "completed": 4,
        "failed": 0,
        "req_s": 1.5,
        "output_tok_s": 48.0,
        "goodput_req_s": 1.0,
        **{m: {"mean": 10.0, "p50": 10.0, "p90": 12.0, "p99": None} for m in bench_report.METRICS},
    }
    report = bench.BenchReport(
        server={"model": "m", "vllm_version": "0.32.0", "device": "cpu", "bound": "none"}, levels=[level]
    )
    assert json.loads(json.dumps(report))["levels"][0]["req_s"] == 1.5
    assert "| concurrency 2 | 4 | 0 | 10 | — | 10 | 10 | 10 | 1.50 | 48.0 | 1.00 |" in report._repr_markdown_()


def test_a_tool_turn_shows_its_steps_and_says_when_it_has_no_answer():
    from workbench.tasks.agent import Turn
    from workbench.tasks.tools import Step

    turn = Turn("It is sunny.", [Step("get_weather", {"city": "Hangzhou"}, "executed", "allowed", {"sky": "sun"})])
    text = turn._repr_markdown_()
    assert '| 1 | get_weather | {"city": "Hangzhou"} | **executed** | allowed | {"sky": "sun"} |' in text
    assert text.endswith("**Answer** (constrained): It is sunny.")
    assert "⚠️ no usable answer: cut off" in Turn("cut off", usable=False)._repr_markdown_()


def test_the_planner_redraws_when_a_control_moves_and_keeps_a_static_copy():
    view = jupyter.planner(max_model_len=32768)
    bundle = view._repr_mimebundle_()
    assert {"application/vnd.jupyter.widget-view+json", "image/png", "text/markdown", "text/plain"} <= set(bundle)
    assert "1.92 requests of 32,768 tokens" in bundle["text/markdown"]
    context = next(c for c in view.widget.children[1].children if c.description == "context")
    summary, bar = view.widget.children[4], view.widget.children[2]
    picture = bar.value
    context.value = 8192
    assert "7.69 requests of 8,192 tokens" in summary.value and bar.value != picture
    assert view.label == "planner: Qwen3-14B (gptq-int4) on RTX 3090 at 8,192 tokens"
    gpu = next(c for c in view.widget.children[0].children if c.description == "GPU")
    gpu.value = "RTX 3060 12GB"  # Qwen3-14B INT4 leaves no room for a KV cache
    assert "does not fit" in summary.value


def test_the_ab_explorer_filters_the_matrix_and_opens_a_trial():
    from workbench.measurement import abconfig, abreport
    from workbench.measurement.abtest import Check, Trial

    config = abconfig.parse_config(
        {
            "name": "t",
            "dataset": [{"q": "a"}, {"q": "b"}],
            "prompt": "{q}",
            "variants": [{"name": "base"}, {"name": "new"}],
        }
    )
    items = abconfig.load_items(config)

    def trial(variant, item, output):
        return Trial(variant, item.id, 0, True, output=output, checks=[Check("contains 'yes'", output == "yes")])

    report = abreport.ABReport(
        config,
        items,
        [
            trial("base", items[0], "yes"),
            trial("new", items[0], "no"),
            trial("base", items[1], "yes"),
            trial("new", items[1], "yes"),
        ],
    )
    view = jupyter.ab_explorer(report)
    show, matrix, (item, variant), opened = (
        view.widget.children[0],
        view.widget.children[1],
        view.widget.children[2].children,
        view.widget.children[3],
    )
    assert "2 of 2 items" in matrix.value
    show.value = "variants disagree"
    assert "1 of 2 items" in matrix.value and list(item.options) == [items[0].id]
    variant.value = "new"
    assert "FAIL (failed checks: contains &#x27;yes&#x27;" in opened.value and "<pre>no</pre>" in opened.value


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_shows_a_picture_or_html_and_ends_with_an_exercise(path):
    nb = json.loads(path.read_text())
    kinds = {kind for cell in nb["cells"] for out in cell.get("outputs", []) for kind in out.get("data", {})}
    assert kinds & {"image/png", "text/html"}, path.name
    assert any("Exercise" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
