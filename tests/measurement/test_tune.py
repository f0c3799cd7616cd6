"""`workbench tune`'s planner half: the candidates it proposes, what it prunes and why, checked against
vLLM's own validation (no engine: the benchmarked half is bench/tune.py)."""

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from workbench.measurement import tune, tune_plan
from workbench.measurement.bench import Workload
from workbench.serving import hardware, models

WORKLOAD = Workload(num_prompts=16, input_len=128, output_len=32)


def bundled():
    return models.find_model(models.BUNDLED_MODEL)


def vllm_accepts(c: tune_plan.Candidate) -> bool:
    """vLLM's own check of the scheduler flags (vllm/config/scheduler.py), as `vllm serve` runs it."""
    from vllm.config import SchedulerConfig

    try:
        SchedulerConfig(
            max_model_len=c.max_model_len,
            is_encoder_decoder=False,
            max_num_batched_tokens=c.max_num_batched_tokens,
            max_num_seqs=c.max_num_seqs,
        )
        return True
    except ValueError:
        return False


def test_what_the_planner_says_vllm_refuses_vllm_refuses_and_the_rest_it_accepts():
    proposals = tune_plan.propose(bundled(), WORKLOAD, concurrency=4)
    refused = [p for p in proposals if p.pruned and p.pruned.startswith("vLLM refuses")]
    assert refused  # the grid includes batched budgets below vLLM's default max_num_seqs
    for p in proposals:
        assert vllm_accepts(p.candidate) == (p not in refused), p.as_dict()


def test_kept_candidates_differ_in_how_they_schedule_the_workload():
    proposals = tune_plan.propose(bundled(), WORKLOAD, concurrency=4)
    kept = tune_plan.kept(proposals)
    assert len(kept) == 3  # the demo in bench/tune.py benchmarks these three
    assert len({p.candidate.max_num_batched_tokens for p in kept}) == 3
    assert [p.note.split("prefills in ")[1] for p in kept] == ["3 steps", "2 steps", "1 step"]
    for p in kept:
        assert p.candidate.max_num_seqs == 4 and p.candidate.cpu_kv_cache_gib == 1
        assert p.candidate.max_model_len >= WORKLOAD.input_len + WORKLOAD.output_len
    merged = [p for p in proposals if p.pruned and p.pruned.startswith("schedules this workload as")]
    kept_labels = {p.candidate.label() for p in kept}
    assert merged and all(any(label in p.pruned for label in kept_labels) for p in merged)


def test_on_a_gpu_the_plan_prunes_what_does_not_fit_and_fp8_kv_rescues_some():
    qwen, rtx3090 = models.find_model("Qwen3-14B"), hardware.find_gpu("RTX 3090")
    proposals = tune_plan.propose(qwen, Workload(8, 16_000, 1_000), 4, device="gpu", gpu=rtx3090, quant="gptq-int4")
    no_room = [p for p in proposals if p.pruned and "KV cache is needed" in p.pruned]
    assert no_room and all(p.kv_cache_tokens < p.candidate.max_model_len for p in no_room)
    kept = tune_plan.kept(proposals)
    rescued = [
        p
        for p in no_room
        if p.candidate.kv_cache_dtype == "auto"
        and any(k.candidate == replace(p.candidate, kv_cache_dtype="fp8") for k in kept)
    ]
    assert rescued  # the same flags with an fp8 KV cache start
    assert kept and all(p.candidate.gpu_memory_utilization in (0.90, 0.95) for p in kept)
    assert any(p.candidate.kv_cache_dtype == "fp8" for p in kept)
    assert all(p.kv_cache_tokens >= p.candidate.max_model_len for p in kept)
    assert any("vLLM preempts" in p.note for p in kept)  # 4 requests of 17K tokens do not all fit in 24 GB


def test_the_winner_is_the_best_goodput_and_its_serve_line_carries_its_flags():
    def entry(batched, goodput, tok_s):
        c = tune_plan.Candidate(
            max_model_len=1024, max_num_seqs=4, max_num_batched_tokens=batched, cpu_kv_cache_gib=1, device="cpu"
        )
        level = {
            "goodput_req_s": goodput,
            "output_tok_s": tok_s,
            "met_slo": 3,
            "completed": 4,
            "ttft_ms": {"p50": 500.0},
            "tpot_ms": {"p50": 30.0},
        }
        return {
            **tune_plan.Proposal(c, 46592, 36.4, None, "4 running at once").as_dict(),
            "level": level,
            "error": None,
        }

    ranked = sorted([entry(64, 1.0, 90.0), entry(516, 1.5, 80.0), entry(128, 1.5, 85.0)], key=tune._rank_key)
    assert [e["max_num_batched_tokens"] for e in ranked] == [128, 516, 64]  # goodput, then tokens/s
    text = tune.explain(ranked, tune.SLO(1000, 50))
    assert "seqs 4 · batched 128" in text and "TTFT ≤ 1000 ms, TPOT ≤ 50 ms" in text
    line = tune_plan.Candidate(
        max_model_len=1024, max_num_seqs=4, max_num_batched_tokens=128, cpu_kv_cache_gib=1, device="cpu"
    ).serve_line("/models/smol")
    assert line == (
        "VLLM_CPU_KVCACHE_SPACE=1 python -m vllm.entrypoints.openai.api_server --model /models/smol "
        "--max-model-len 1024 --max-num-seqs 4 --max-num-batched-tokens 128"
    )


def test_vllms_own_parser_reads_the_winners_flags():
    from vllm.engine.arg_utils import EngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    c = tune_plan.kept(tune_plan.propose(bundled(), WORKLOAD, 4))[0].candidate
    args = EngineArgs.add_cli_args(FlexibleArgumentParser()).parse_args(["--model", "m", *c.args()])
    assert (args.max_model_len, args.max_num_seqs, args.max_num_batched_tokens) == (
        c.max_model_len,
        c.max_num_seqs,
        c.max_num_batched_tokens,
    )


@pytest.mark.parametrize("json_out", [False, True])
def test_dry_run_from_the_command_line(json_out):
    argv = [sys.executable, "-m", "workbench.cli", "tune", "--dry-run", "--concurrency", "4"]
    out = subprocess.run(argv + (["--json"] if json_out else []), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if json_out:
        rows = json.loads(out.stdout)
        assert sum(r["pruned"] is None for r in rows) == 3
    else:
        assert out.stdout.startswith(
            f"{len(tune_plan.propose(bundled(), WORKLOAD, 4))} candidates; the planner keeps 3:"
        )
        assert (
            "vLLM refuses to start: max_num_batched_tokens (64) must be greater than or equal to max_num_seqs"
            in out.stdout
        )


def test_a_model_that_does_not_fit_gets_one_reason_per_cause_and_the_fix():
    """Qwen3-14B in bf16 on an RTX 3090: every candidate fails for the same cause; it is said once, with the
    hint that GPTQ INT4 fits, and how many candidates that keeps."""
    dry = tune_plan.dry_run("Qwen3-14B", WORKLOAD, 4, gpu_name="RTX 3090")
    text = dry.to_text()
    assert text.startswith(f"{len(dry.proposals)} candidates; the planner keeps 0:")
    refusals = [line for line in text.splitlines() if line.startswith("  ✗")]
    causes = {p.cause for p in dry.proposals}
    assert causes == {"no KV cache", "batch below seqs"} and len(refusals) == len(causes)  # each said once
    no_kv = sum(p.cause == "no KV cache" for p in dry.proposals)
    assert any(line.startswith(f"  ✗ {no_kv} candidates (no KV cache), e.g. ") for line in refusals)
    assert "fix: free memory for the KV cache: quantize the weights (--quant gptq-int4)" in text
    int4 = tune_plan.kept(
        tune_plan.propose(
            models.find_model("Qwen3-14B"), WORKLOAD, 4, "gpu", hardware.find_gpu("RTX 3090"), "gptq-int4"
        )
    )
    assert dry.hints == (
        f"Qwen3-14B's bf16 weights (27.51 GiB) leave no room for a KV cache on one RTX 3090 "
        f"(23.58 GiB); with --quant gptq-int4 (9.29 GiB) the planner keeps {len(int4)}.",
    )
    assert int4 and f"hint: {dry.hints[0]}" in text
    assert tune_plan.dry_run("Qwen3-14B", WORKLOAD, 4, gpu_name="RTX 3090", quant="gptq-int4").hints == ()


def test_vllms_defaults_are_a_candidate_with_no_flag_beyond_the_model():
    p = tune_plan.defaults(bundled(), WORKLOAD, 4)
    assert p.candidate.vllm_defaults and p.pruned is None and p.as_dict()["vllm_defaults"] is True
    assert p.candidate.serve_line("/models/smol") == (
        "VLLM_CPU_KVCACHE_SPACE=1 python -m vllm.entrypoints.openai.api_server --model /models/smol"
    )
    assert p.candidate.label() == "vLLM defaults (no flags; VLLM_CPU_KVCACHE_SPACE=1)"
    assert p.note == "4 running at once; a prompt prefills in 1 step"  # vLLM's own 128 seqs and 2048 tokens a step
    from vllm.engine.arg_utils import EngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    args = EngineArgs.add_cli_args(FlexibleArgumentParser()).parse_args(["--model", "m", *p.candidate.args()])
    assert (args.max_model_len, args.max_num_seqs, args.max_num_batched_tokens) == (None, None, None)


def _benchmarked(label: str, goodput_runs: list[float], tok_s_runs: list[float], defaults: bool = False) -> dict:
    level = {
        "goodput_req_s": sum(goodput_runs) / len(goodput_runs),
        "output_tok_s": sum(tok_s_runs) / len(tok_s_runs),
        "repeat_ci": {"goodput_req_s": {"runs": goodput_runs}, "output_tok_s": {"runs": tok_s_runs}},
    }
    return {"label": label, "vllm_defaults": defaults, "level": level, "error": None}


def test_the_winners_gain_over_vllms_defaults_is_a_ratio_with_an_interval_over_the_repeats():
    base = _benchmarked("vLLM defaults", [1.0, 1.1, 0.9], [80.0, 82.0, 78.0], defaults=True)
    better = _benchmarked("seqs 4", [1.5, 1.6, 1.4], [100.0, 104.0, 96.0])
    vs = tune.vs_defaults(sorted([base, better], key=tune._rank_key))
    assert vs["winner"] == "seqs 4" and vs["defaults"] == "vLLM defaults" and not vs["winner_is_defaults"]
    assert vs["goodput_req_s"]["ratio"] == 1.5 and vs["output_tok_s"]["ratio"] == 1.25
    assert 1 < vs["goodput_req_s"]["ci_low"] < 1.5 < vs["goodput_req_s"]["ci_high"]
    assert vs["verdict"].startswith("goodput ×1.500 (") and "at least the 20% gain aimed for" in vs["verdict"]

    close = _benchmarked("seqs 4", [1.0, 1.2, 0.95], [80.0, 84.0, 79.0])  # within the defaults' own spread
    vs = tune.vs_defaults(sorted([base, close], key=tune._rank_key))
    assert vs["goodput_req_s"]["ci_low"] < 1 < vs["goodput_req_s"]["ci_high"]
    assert "no measurable gain, the workload leaves no room" in vs["verdict"]

    once = tune.vs_defaults(
        [
            {**_benchmarked("seqs 4", [1.1], [90.0]), "level": {"goodput_req_s": 1.1, "output_tok_s": 90.0}},
            {**base, "level": {"goodput_req_s": 1.0, "output_tok_s": 80.0}},
        ]
    )
    assert once["goodput_req_s"] == {"ratio": 1.1, "ci_low": None, "ci_high": None}
    assert "(one run: no interval)" in once["verdict"] and "below the 20% gain aimed for" in once["verdict"]

    for entry in (base, better):
        entry["level"].update(ttft_ms={"p50": 500.0}, tpot_ms={"p50": 30.0}, met_slo=4, completed=4)
    ranked = sorted([base, better], key=tune._rank_key)
    report = tune.TuneReport(
        model="m",
        device="cpu",
        gpu=None,
        workload={"input_len": 128, "output_len": 32},
        concurrency=4,
        slo={},
        pruned=[],
        ranked=ranked,
        explanation="",
        vs_defaults=tune.vs_defaults(ranked),
        serve=None,
    )
    assert f"over vLLM defaults: {report['vs_defaults']['verdict']} Output tokens/s ×1.250 (" in report.to_text()


def test_when_vllms_defaults_win_or_meet_no_slo_the_verdict_says_so():
    base = _benchmarked("vLLM defaults", [1.0, 1.1, 0.9], [80.0, 82.0, 78.0], defaults=True)
    worse = _benchmarked("seqs 4", [0.5, 0.6, 0.4], [60.0, 62.0, 58.0])
    vs = tune.vs_defaults(sorted([worse, base], key=tune._rank_key))
    assert vs["winner_is_defaults"] and vs["goodput_req_s"]["ratio"] == 1.0
    assert vs["verdict"].startswith("vLLM's defaults win")
    none_met = _benchmarked("vLLM defaults", [0.0, 0.0], [80.0, 82.0], defaults=True)
    vs = tune.vs_defaults(sorted([none_met, worse], key=tune._rank_key))
    assert vs["goodput_req_s"] is None and "vLLM's defaults met no SLO" in vs["verdict"]
    failed = {"label": "vLLM defaults", "vllm_defaults": True, "level": None, "error": "EngineStartupError: x"}
    assert "did not finish (EngineStartupError: x)" in tune.vs_defaults([worse, failed])["verdict"]
    assert tune.vs_defaults([worse]) is None  # not benchmarked: nothing to compare with
