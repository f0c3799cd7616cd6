"""verdict.py turns one task's per-item results for two candidates into what a person reads: a loss (with
its size and interval), a gain, or no loss detected (with the power the items had to see a loss that matters),
plus the recovery llm-compressor reports (candidate ÷ baseline). It also sets repeated benchmark runs side by
side as ratios with intervals, and sums a candidate's verdicts into the one line a report opens with.

Pure: item results in, verdicts out; `stats.py` does the statistics and `compare.py` gathers the items.

The rules, per kind of item:
- pass (each item passed or failed): a loss or gain only when the exact McNemar test rejects at 1 − confidence
  *and* the paired bootstrap interval of the difference excludes 0; power from `stats.mcnemar_power`.
- score (an item's share of repeats passed, or any score in [0, 1]): the paired bootstrap interval decides;
  power from the spread of the paired differences.
- ppl (a text chunk: its negative log-likelihood and its tokens): the perplexity ratio with a paired bootstrap
  interval over chunks; only comparable when both tokenizers cut every chunk into the same number of tokens.
"""

import math
from dataclasses import asdict, dataclass

from workbench import stats

LOSS, NO_LOSS, GAIN, NOT_COMPARABLE = "loss", "no loss detected", "gain", "not comparable"
KINDS = ("pass", "score", "ppl")
# The smallest loss worth seeing, per kind: 10 points of pass rate (stats.MIN_EFFECT), 5 % of perplexity.
MARGINS = {"pass": stats.MIN_EFFECT, "score": stats.MIN_EFFECT, "ppl": 0.05}
ENOUGH_POWER = stats.DEFAULT_POWER


@dataclass(frozen=True)
class TaskVerdict:
    """One task, one candidate against the baseline. `difference` and `interval` are in the metric's units:
    points of pass rate (a share, −1 to 1) or the perplexity's relative change (0.05 = 5 % higher)."""

    task: str
    kind: str
    metric: str
    baseline: str
    candidate: str
    items: int
    baseline_value: float | None
    candidate_value: float | None
    difference: float | None
    interval: tuple[float | None, float | None]
    outcome: str
    power: float | None  # the chance these items had to see a loss of `margin`
    margin: float
    p_value: float | None = None  # exact McNemar, pass items only
    recovery_pct: float | None = None  # candidate ÷ baseline (for perplexity: baseline ÷ candidate), in %
    note: str = ""

    @property
    def unit(self) -> str:
        return "%" if self.kind == "ppl" else "points"

    def _amount(self, value: float) -> str:
        return f"{abs(value) * 100:.1f} {self.unit}"

    @property
    def half_width(self) -> float | None:
        low, high = self.interval
        return None if low is None or high is None else (high - low) / 2

    @property
    def summary(self) -> str:
        """'loss of 12.5 ± 8.3 points', 'gain of …', 'no loss detected (power 62 % to see a loss of 10.0 points)'."""
        if self.outcome == NOT_COMPARABLE:
            return f"not comparable: {self.note}"
        if self.outcome in (LOSS, GAIN):
            return f"{self.outcome} of {abs(self.difference) * 100:.1f} ± {self.half_width * 100:.1f} {self.unit}"
        power = (
            "power not estimable: every item scored alike on both"
            if self.power is None
            else f"power {self.power:.0%} to see a loss of {self._amount(self.margin)}"
        )
        return f"{NO_LOSS} ({power})"

    @property
    def value_text(self) -> str:
        """'86 % → 79 %' or 'ppl 14.21 → 15.03'."""
        if self.baseline_value is None or self.candidate_value is None:
            return "—"
        if self.kind == "ppl":
            return f"ppl {self.baseline_value:.2f} → {self.candidate_value:.2f}"
        return f"{self.baseline_value:.0%} → {self.candidate_value:.0%}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = list(self.interval)
        d.update(summary=self.summary, half_width=self.half_width)
        return d


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, digits)


def _paired(baseline_items: list[dict], candidate_items: list[dict]) -> tuple[list[dict], list[dict], int]:
    """The items both sides answered, in the baseline's order, and how many only one side has."""
    by_id = {item["id"]: item for item in candidate_items}
    a = [item for item in baseline_items if item["id"] in by_id]
    b = [by_id[item["id"]] for item in a]
    return a, b, len(baseline_items) + len(candidate_items) - 2 * len(a)


def judge(
    task: str,
    kind: str,
    baseline: str,
    candidate: str,
    baseline_items: list[dict],
    candidate_items: list[dict],
    confidence: float = stats.DEFAULT_CONFIDENCE,
    margin: float | None = None,
) -> TaskVerdict:
    """The verdict of one task. Items are {"id", "score"} (pass, score) or {"id", "nll", "tokens"} (ppl)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    margin = MARGINS[kind] if margin is None else margin
    a, b, unpaired = _paired(baseline_items, candidate_items)
    note = f"{unpaired} item(s) only one side answered are left out" if unpaired else ""
    base = dict(task=task, kind=kind, baseline=baseline, candidate=candidate, items=len(a), margin=margin)
    if not a:
        return TaskVerdict(
            **base,
            metric="—",
            baseline_value=None,
            candidate_value=None,
            difference=None,
            interval=(None, None),
            outcome=NOT_COMPARABLE,
            power=None,
            note="no item was answered by both",
        )
    if kind == "ppl":
        return _perplexity(base, a, b, confidence, note)
    return _scores(base, [i["score"] for i in a], [i["score"] for i in b], confidence, note)


def _scores(base: dict, sa: list[float], sb: list[float], confidence: float, note: str) -> TaskVerdict:
    n, margin = len(sa), base["margin"]
    binary = all(s in (0, 1) for s in (*sa, *sb))
    paired = stats.compare_paired(base["baseline"], base["candidate"], sa, sb, confidence)
    low, high = paired.interval
    if binary:
        decided = paired.significant
        psi = max((paired.only_baseline + paired.only_variant) / n, margin)
        power = stats.mcnemar_power(n, min(psi, 1.0), margin, confidence)
    else:
        decided = low > 0 or high < 0
        power = stats.mean_difference_power([y - x for x, y in zip(sa, sb)], margin, confidence)
    outcome = (GAIN if paired.difference > 0 else LOSS) if decided else NO_LOSS
    mean_a, mean_b = sum(sa) / n, sum(sb) / n
    return TaskVerdict(
        **{**base, "kind": "pass" if binary else "score"},
        metric="pass rate" if binary else "mean score",
        baseline_value=_rounded(mean_a),
        candidate_value=_rounded(mean_b),
        difference=_rounded(paired.difference),
        interval=(_rounded(low), _rounded(high)),
        outcome=outcome,
        power=_rounded(power, 3),
        p_value=paired.p_value if binary else None,
        recovery_pct=_rounded(100 * mean_b / mean_a, 1) if mean_a else None,
        note=note,
    )


def _ppl_ratio(a, b) -> float:
    """Perplexity ratio (candidate ÷ baseline) of chunk rows [nll, tokens]: exp of the per-token NLL's change."""
    return math.exp(b[:, 0].sum() / b[:, 1].sum() - a[:, 0].sum() / a[:, 1].sum())


def _perplexity(base: dict, a: list[dict], b: list[dict], confidence: float, note: str) -> TaskVerdict:
    rows_a = [[i["nll"], i["tokens"]] for i in a]
    rows_b = [[i["nll"], i["tokens"]] for i in b]
    ppl_a = math.exp(sum(r[0] for r in rows_a) / sum(r[1] for r in rows_a))
    ppl_b = math.exp(sum(r[0] for r in rows_b) / sum(r[1] for r in rows_b))
    values = dict(metric="perplexity", baseline_value=_rounded(ppl_a), candidate_value=_rounded(ppl_b))
    if any(x[1] != y[1] for x, y in zip(rows_a, rows_b)):
        return TaskVerdict(
            **base,
            **values,
            difference=None,
            interval=(None, None),
            outcome=NOT_COMPARABLE,
            power=None,
            note="the two tokenizers cut the text differently, so their perplexities are "
            "per different tokens (compare models that share a tokenizer)",
        )
    ratio = ppl_b / ppl_a
    low, high = stats.paired_bootstrap(lambda x, y: _ppl_ratio(x, y) - 1, rows_a, rows_b, confidence)
    outcome = LOSS if low > 0 else GAIN if high < 0 else NO_LOSS
    per_chunk = [yb[0] / yb[1] - xa[0] / xa[1] for xa, yb in zip(rows_a, rows_b)]
    power = stats.mean_difference_power(per_chunk, math.log1p(base["margin"]), confidence)
    return TaskVerdict(
        **base,
        **values,
        difference=_rounded(ratio - 1),
        interval=(_rounded(low), _rounded(high)),
        outcome=outcome,
        power=_rounded(power, 3),
        recovery_pct=_rounded(100 / ratio, 1),
        note=note,
    )


# -- speed ----------------------------------------------------------------------------------------
SPEED_METRICS = {"ttft_ms": ("TTFT p50", False), "tpot_ms": ("TPOT p50", False), "output_tok_s": ("output tok/s", True)}


@dataclass(frozen=True)
class SpeedRatio:
    """A benchmark figure of the candidate ÷ the baseline's at one load, over repeated runs."""

    load: str
    metric: str
    label: str
    higher_is_better: bool
    baseline: float | None
    candidate: float | None
    ratio: float | None
    interval: tuple[float | None, float | None]
    runs: int

    @property
    def value_text(self) -> str:
        """'×0.93 (0.88–0.99)', or '—'."""
        if self.ratio is None:
            return "—"
        ci = "" if self.interval[0] is None else f" ({self.interval[0]:.2f}–{self.interval[1]:.2f})"
        return f"×{self.ratio:.2f}{ci}"

    @property
    def summary(self) -> str:
        return f"{self.label} {self.value_text}"

    @property
    def better(self) -> bool | None:
        """The whole interval on the good side of 1 (None without an interval)."""
        low, high = self.interval
        if low is None:
            return None
        return low > 1 if self.higher_is_better else high < 1

    def as_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = list(self.interval)
        d.update(summary=self.summary, better=self.better)
        return d


def speed_ratios(
    baseline_levels: list[dict], candidate_levels: list[dict], confidence: float = stats.DEFAULT_CONFIDENCE
) -> list[SpeedRatio]:
    """Per load level both ran and per metric: the ratio of the mean over runs, with `stats.ratio_interval`. A
    level's `runs` hold each run's figure (bench_report.repeat_ci's "runs", or the one run's own figure)."""
    out = []
    by_load = {lv["load"]: lv for lv in candidate_levels}
    for level in baseline_levels:
        other = by_load.get(level["load"])
        if other is None:
            continue
        for metric, (label, higher) in SPEED_METRICS.items():
            xs, ys = _runs(level, metric), _runs(other, metric)
            ratio, low, high = stats.ratio_interval(xs, ys, confidence)
            ok = not math.isnan(ratio)
            out.append(
                SpeedRatio(
                    level["load"],
                    metric,
                    label,
                    higher,
                    _rounded(sum(xs) / len(xs), 3) if xs else None,
                    _rounded(sum(ys) / len(ys), 3) if ys else None,
                    _rounded(ratio, 4) if ok else None,
                    (_rounded(low, 4), _rounded(high, 4)),
                    min(len(xs), len(ys)),
                )
            )
    return out


def _runs(level: dict, metric: str) -> list[float]:
    ci = level.get("repeat_ci")
    if ci and ci.get(metric, {}).get("runs"):
        return list(ci[metric]["runs"])
    value = level[metric] if metric == "output_tok_s" else level[metric]["p50"]
    return [] if value is None else [value]


# -- the one line -----------------------------------------------------------------------------------
GOOD, NOT_GOOD, UNDECIDED = "good enough", "not good enough", "no loss detected, but not ruled out"


@dataclass(frozen=True)
class Answer:
    """A candidate's one-line answer: its standing and the number that decided it."""

    candidate: str
    standing: str  # GOOD, NOT_GOOD, UNDECIDED, or "failed"/"baseline"
    deciding: str

    @property
    def line(self) -> str:
        if self.standing == "baseline":
            return f"**{self.candidate}**: the baseline. {self.deciding}"
        return f"**{self.candidate}**: {self.standing}. {self.deciding}"

    def as_dict(self) -> dict:
        return {**asdict(self), "line": self.line}


def answer(
    candidate: str,
    verdicts: list[TaskVerdict],
    speed: list[SpeedRatio],
    fits: bool | None = None,
    memory_text: str = "",
    error: str | None = None,
) -> Answer:
    """Not good enough when a task shows a loss or the plan does not fit: the deciding number is the largest loss
    (relative to its margin) or the memory. Otherwise good enough when every task had the power to see a loss of
    its margin, else undecided, deciding on the task with the least power. The speed and memory follow."""
    if error:
        return Answer(candidate, "failed", error)
    extra = "; ".join(x for x in (_speed_text(speed), memory_text) if x)
    losses = [v for v in verdicts if v.outcome == LOSS]
    if losses:
        worst = max(losses, key=lambda v: abs(v.difference) / v.margin)
        return Answer(
            candidate, NOT_GOOD, f"{worst.task}: {worst.summary} ({worst.value_text})" + (f"; {extra}" if extra else "")
        )
    if fits is False:
        return Answer(candidate, NOT_GOOD, memory_text)
    judged = [v for v in verdicts if v.outcome != NOT_COMPARABLE]
    if not judged:
        return Answer(candidate, UNDECIDED, "no task could be compared" + (f"; {extra}" if extra else ""))
    weakest = min(judged, key=lambda v: -1.0 if v.power is None else v.power)
    standing = GOOD if all(v.power is not None and v.power >= ENOUGH_POWER for v in judged) else UNDECIDED
    return Answer(
        candidate,
        standing,
        f"{weakest.task}: {weakest.summary} ({weakest.value_text})" + (f"; {extra}" if extra else ""),
    )


def _speed_text(speed: list[SpeedRatio]) -> str:
    """The output throughput ratio at the lowest load, the figure a single user feels."""
    tok = [s for s in speed if s.metric == "output_tok_s" and s.ratio is not None]
    return tok[0].summary + f" at {tok[0].load}" if tok else ""
