"""The verdict logic on scripted item results: a known loss is found, a no-difference case is not called a loss,
a gain is a gain, perplexity is judged per chunk, and the one-line answer names the number that decided it."""

import math
import random

import pytest

from workbench import stats
from workbench.measurement import verdict


def passes(pattern: str) -> list[dict]:
    """'1101…' → pass items with ids in order."""
    return [{"id": f"item-{i}", "score": float(ch)} for i, ch in enumerate(pattern)]


def chunks(nlls: list[float], tokens: int = 100) -> list[dict]:
    return [{"id": f"chunk-{i}", "nll": nll, "tokens": tokens} for i, nll in enumerate(nlls)]


def test_a_known_loss_is_found_with_its_size():
    base = passes("1" * 40 + "0" * 10)
    cand = passes("0" * 15 + "1" * 25 + "0" * 10)  # 15 of the baseline's passes now fail, nothing gained
    v = verdict.judge("tools", "pass", "bf16", "int4", base, cand)
    assert v.outcome == verdict.LOSS
    assert v.difference == pytest.approx(-0.30)
    assert v.p_value == pytest.approx(stats.mcnemar_exact(15, 0)) and v.p_value < 0.001
    assert v.interval[0] < -0.30 < v.interval[1] < 0
    assert v.summary.startswith("loss of 30.0 ± ") and v.summary.endswith(" points")
    assert v.recovery_pct == pytest.approx(62.5)  # 25 / 40 passes kept
    assert v.value_text == "80% → 50%"


def test_no_difference_is_not_called_a_loss():
    base = passes("1" * 30 + "0" * 20)
    cand = passes("0" * 5 + "1" * 25 + "1" * 5 + "0" * 15)  # 5 lost, 5 gained: the same pass rate
    v = verdict.judge("tools", "pass", "bf16", "int4", base, cand)
    assert v.outcome == verdict.NO_LOSS and v.difference == 0
    assert v.p_value == pytest.approx(1.0)
    assert v.power == pytest.approx(stats.mcnemar_power(50, 0.2, 0.10), abs=1e-3) and v.power < 0.8
    assert v.summary == f"no loss detected (power {v.power:.0%} to see a loss of 10.0 points)"


def test_a_small_sample_with_a_lean_to_the_loss_is_still_not_called_a_loss():
    v = verdict.judge("tools", "pass", "a", "b", passes("1111100000"), passes("1110000000"))
    assert v.outcome == verdict.NO_LOSS and v.difference == pytest.approx(-0.2) and v.p_value == 0.5


def test_a_gain_is_a_gain():
    v = verdict.judge("docqa", "pass", "a", "b", passes("0" * 20 + "1" * 20), passes("1" * 40))
    assert v.outcome == verdict.GAIN and v.summary.startswith("gain of 50.0")


def test_scores_from_repeats_use_the_bootstrap():
    rng = random.Random(3)
    base = [{"id": str(i), "score": rng.choice([0.6, 0.8, 1.0])} for i in range(60)]
    worse = [{"id": b["id"], "score": max(0.0, b["score"] - 0.4)} for b in base]
    v = verdict.judge("ab", "score", "a", "b", base, worse)
    assert v.kind == "score" and v.outcome == verdict.LOSS and v.p_value is None
    assert v.interval[1] < 0
    same = verdict.judge("ab", "score", "a", "b", base, [dict(b) for b in base])
    assert same.outcome == verdict.NO_LOSS and same.power is None  # every item alike: no spread to scale by
    assert "power not estimable" in same.summary


def test_perplexity_is_judged_per_chunk():
    rng = random.Random(5)
    base = [300 + rng.gauss(0, 25) for _ in range(24)]
    higher = [n * 1.02 + rng.gauss(0, 0.5) for n in base]  # 2 % more NLL per token: ppl ×e^(0.02·3) ≈ +6 %
    v = verdict.judge("ppl", "ppl", "bf16", "int4", chunks(base), chunks(higher))
    ppl_a = math.exp(sum(base) / 2400)
    ppl_b = math.exp(sum(higher) / 2400)
    assert (v.baseline_value, v.candidate_value) == (pytest.approx(ppl_a, rel=1e-4), pytest.approx(ppl_b, rel=1e-4))
    assert v.outcome == verdict.LOSS and v.difference == pytest.approx(ppl_b / ppl_a - 1, abs=1e-4)
    assert v.interval[0] > 0 and v.recovery_pct == pytest.approx(100 * ppl_a / ppl_b, abs=0.1)
    noise = [n + rng.gauss(0, 0.5) for n in base]
    assert verdict.judge("ppl", "ppl", "a", "b", chunks(base), chunks(noise)).outcome == verdict.NO_LOSS


def test_perplexity_from_different_tokenizers_is_not_compared():
    v = verdict.judge("ppl", "ppl", "a", "b", chunks([300.0] * 4, 100), chunks([280.0] * 4, 93))
    assert v.outcome == verdict.NOT_COMPARABLE and "tokenizers" in v.summary and v.difference is None


def test_items_only_one_side_answered_are_left_out_and_said():
    v = verdict.judge("tools", "pass", "a", "b", passes("1111"), passes("111"))
    assert v.items == 3 and "1 item(s) only one side answered" in v.note


def test_the_answer_names_the_largest_loss():
    small = verdict.judge(
        "tools", "pass", "a", "int4", passes("1" * 40 + "0" * 10), passes("0" * 15 + "1" * 25 + "0" * 10)
    )
    ppl = verdict.judge(
        "ppl", "ppl", "a", "int4", chunks([300.0 + i for i in range(24)]), chunks([330.0 + i * 1.1 for i in range(24)])
    )
    line = verdict.answer("int4", [ppl, small], []).line
    assert line.startswith("**int4**: not good enough. ")
    # each loss against its own margin: 30 points of a 10-point margin, the perplexity's rise of a 5 % one
    worst = max((small, ppl), key=lambda v: abs(v.difference) / v.margin)
    assert f"{worst.task}: {worst.summary}" in line


def test_good_enough_needs_the_power_to_see_a_loss():
    many_same = verdict.judge("tools", "pass", "a", "b", passes("10" * 150), passes("10" * 150))
    few_same = verdict.judge("docqa", "pass", "a", "b", passes("1100"), passes("1100"))
    assert verdict.answer("b", [many_same], []).standing == verdict.GOOD
    undecided = verdict.answer("b", [many_same, few_same], [])
    assert undecided.standing == verdict.UNDECIDED and undecided.deciding.startswith("docqa: no loss detected (power")
    unfit = verdict.answer("b", [many_same], [], fits=False, memory_text="does not fit one RTX 3090 at 32,768 tokens")
    assert unfit.standing == verdict.NOT_GOOD and "does not fit" in unfit.line


def level(load: str, runs: dict[str, list[float]]) -> dict:
    return {
        "load": load,
        "ttft_ms": {"p50": runs["ttft_ms"][0]},
        "tpot_ms": {"p50": runs["tpot_ms"][0]},
        "output_tok_s": runs["output_tok_s"][0],
        "repeat_ci": {k: {"runs": v} for k, v in runs.items()} if len(runs["ttft_ms"]) > 1 else None,
    }


def test_speed_ratios_come_with_intervals_from_repeated_runs():
    base = [level("concurrency 1", {"ttft_ms": [100, 104, 98], "tpot_ms": [20, 21, 20], "output_tok_s": [48, 47, 49]})]
    fast = [level("concurrency 1", {"ttft_ms": [60, 62, 61], "tpot_ms": [11, 11, 12], "output_tok_s": [85, 88, 86]})]
    ratios = {r.metric: r for r in verdict.speed_ratios(base, fast)}
    assert ratios["ttft_ms"].ratio == pytest.approx(61 / 100.667, rel=1e-3) and ratios["ttft_ms"].better is True
    assert ratios["output_tok_s"].interval[0] > 1 and ratios["output_tok_s"].better is True
    one = verdict.speed_ratios(
        [level("concurrency 1", {"ttft_ms": [100], "tpot_ms": [20], "output_tok_s": [48]})],
        [level("concurrency 1", {"ttft_ms": [90], "tpot_ms": [20], "output_tok_s": [50]})],
    )
    assert one[0].interval == (None, None) and one[0].better is None and "(" not in one[0].value_text
