"""The six figures, drawn from real results: each shows the numbers of the result it is given, with the labels
a reader needs (and says so when a result has no such axis)."""

import pytest

from workbench import planner, plots
from workbench.measurement import abconfig, abreport, bench
from workbench.measurement.abtest import Check, Trial
from workbench.measurement.bench_report import METRICS
from workbench.planner import gpu_plan
from workbench.serving import hardware, models


def texts(fig) -> list[str]:
    return [
        t.get_text() for ax in fig.axes for t in (*ax.texts, *(ax.get_legend().get_texts() if ax.get_legend() else ()))
    ]


def test_the_memory_bar_stacks_the_plans_terms_on_the_gpu():
    plan = gpu_plan.plan(models.CATALOG["Qwen3-14B"], hardware.find_gpu("RTX 3090"), "gptq-int4")
    fig = plots.memory_bar(plan, hardware.find_gpu("RTX 3090"), title="t")
    legend = texts(fig)
    assert f"weights {plan.weights_bytes / 2**30:.2f} GiB" in legend
    assert f"KV cache {plan.kv_cache_bytes / 2**30:.2f} GiB" in legend
    widths = [bar.get_width() for bar in fig.axes[0].patches]
    assert sum(widths) == pytest.approx(23.58, abs=0.01)  # the card's memory: requested + headroom
    assert "RTX 3090 (23.58 GiB visible to CUDA)" in fig.axes[0].get_xlabel()


def test_the_concurrency_curve_is_the_planners_sweep():
    answer = planner.plan(planner.PlanRequest(gpu="RTX 3090", quant="gptq-int4", curve=True))
    fig = plots.concurrency_curve(list(answer.curve), "Qwen3-14B", "RTX 3090")
    xs, ys = fig.axes[0].lines[0].get_data()
    assert list(xs) == [r.max_model_len for r in answer.curve] and 24576 in xs
    assert list(ys) == [r.max_concurrency for r in answer.curve]


def bench_report(rate=None):
    level = {
        "concurrency": None if rate else 2,
        "request_rate": rate,
        "completed": 3,
        "failed": 0,
        "req_s": 1.5,
        "output_tok_s": 48.0,
        "goodput_req_s": 1.0,
        **{m: {"mean": 10.0, "p50": 10.0, "p90": 12.0, "p99": 13.0} for m in METRICS},
        "samples": {"ttft_ms": [30.0, 10.0, 20.0], "tpot_ms": [5.0, 6.0, 7.0], "e2e_ms": [300.0, 100.0, 200.0]},
    }
    level["load"] = bench.load_label(level)
    return bench.BenchReport(server={"model": "m"}, slo={"ttft_ms": 25.0, "tpot_ms": None}, levels=[level])


def test_the_latency_cdfs_step_through_each_levels_requests_with_the_slo():
    fig = plots.latency_cdf(bench_report())
    ttft = fig.axes[0]
    xs, ys = ttft.lines[0].get_data()
    assert list(xs) == [10.0, 20.0, 30.0] and list(ys) == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert {"concurrency 2", "SLO 25 ms"} <= set(texts(fig))


def test_the_throughput_curve_says_when_a_run_has_no_concurrency_axis():
    assert "a request-rate run has no concurrency axis" in texts(plots.throughput_curve(bench_report(rate=2.0)))
    fig = plots.throughput_curve(bench_report())
    assert list(fig.axes[0].lines[0].get_data()[1]) == [48.0]


def test_the_ab_chart_shows_each_variants_pass_rate_and_interval():
    config = abconfig.parse_config(
        {
            "name": "t",
            "dataset": [{"q": "a"}, {"q": "b"}],
            "prompt": "{q}",
            "variants": [{"name": "base"}, {"name": "new"}],
        }
    )
    items = abconfig.load_items(config)
    trials = [
        Trial(
            v,
            i.id,
            0,
            True,
            output="x",
            latency_s=0.1,
            completion_tokens=3,
            checks=[Check("c", v == "base" or i.id == items[0].id)],
        )
        for v in ("base", "new")
        for i in items
    ]
    report = abreport.ABReport(config, items, trials)
    fig = plots.ab_chart(report)
    assert [bar.get_height() for bar in fig.axes[0].patches] == [100.0, 50.0]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["base", "new"]


def test_the_perplexity_chart_annotates_each_increase():
    rows = [{"name": "bf16", "ppl": 10.76, "ppl_increase": 0.0}, {"name": "gptq", "ppl": 12.8, "ppl_increase": 2.04}]
    fig = plots.perplexity_chart(rows)
    assert [bar.get_height() for bar in fig.axes[0].patches] == [10.76, 12.8]
    assert texts(fig) == ["10.76", "12.80\n(+2.04)"]
