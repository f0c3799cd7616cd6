"""stats.py holds the statistics the workbench's comparisons need, as pure functions on numbers:
the Wilson interval of a pass rate, a paired bootstrap interval of a difference (of a mean, or of any
statistic of paired rows), the exact McNemar test and its power, the items a paired test needs, the
t interval of a few repeated runs and of the ratio of two such means, and the spread of latencies.

It knows nothing about prompts, engines or files; `abreport.py` and `verdict.py` apply it.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_POWER = 0.80
MIN_EFFECT = 0.10  # the difference worth detecting when none was observed: 10 points of pass rate


def _z(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def wilson_interval(successes: float, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927, JASA 22:209). Unlike p ± z·se it stays
    inside [0, 1] and is not zero-width at 0 % or 100 %, which small prompt tests often hit.
    `successes` may be fractional (an item's share of passing repeats)."""
    if n <= 0:
        return 0.0, 1.0
    z = _z(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: of the b + c discordant pairs (one variant passed, the other
    failed), is the split b : c consistent with 50 : 50? Concordant pairs carry no information."""
    from scipy.stats import binomtest

    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


def bootstrap_interval(
    differences, confidence: float = DEFAULT_CONFIDENCE, resamples: int = 9_999, seed: int = 0
) -> tuple[float, float]:
    """BCa bootstrap interval of the mean of paired per-item differences (scipy.stats.bootstrap).
    Items are resampled whole, so repeats of one item stay together. Seeded: a rerun on the same
    trials gives the same interval."""
    from scipy.stats import bootstrap

    values = np.asarray(differences, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    if values.size == 1 or np.ptp(values) == 0:
        return float(values[0]), float(values[0])  # every resample is the same
    interval = None
    for method in ("BCa", "percentile"):  # BCa is undefined on some lopsided data; percentile never is
        result = bootstrap(
            (values,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method=method,
            rng=np.random.default_rng(seed),
        )
        interval = result.confidence_interval
        if not (math.isnan(interval.low) or math.isnan(interval.high)):
            break
    return float(interval.low), float(interval.high)


def mcnemar_power(n: int, discordant: float, difference: float, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """Power of the exact McNemar test on n items: the chance it rejects at 1 − confidence when a
    share `discordant` of items splits the variants and B's pass rate is `difference` higher.
    Exact: sums over the number of discordant items D ~ Binomial(n, ψ), and given D over B's wins
    ~ Binomial(D, (ψ + δ) / 2ψ) falling in the test's rejection region."""
    from scipy.stats import binom

    if discordant <= 0 or n <= 0:
        return 0.0
    alpha = 1 - confidence
    d = np.arange(n + 1)
    k = binom.ppf(alpha / 2, d, 0.5)  # reject when min(b, c) ≤ k
    k = np.where(binom.cdf(k, d, 0.5) > alpha / 2, k - 1, k)
    q = (discordant + abs(difference)) / (2 * discordant)
    reject = np.where(k >= 0, binom.cdf(k, d, q) + binom.sf(d - k - 1, d, q), 0.0)
    return float(np.sum(binom.pmf(d, n, discordant) * reject))


def items_needed(
    discordant: float, difference: float, confidence: float = DEFAULT_CONFIDENCE, power: float = DEFAULT_POWER
) -> int | None:
    """Items the exact McNemar test needs to detect `difference` with `power` at 1 − confidence,
    when a share `discordant` of items gets different outcomes from the two variants.

    Starts from Connor (1987), Biometrics 43:207, eq. 3:  n = (z_a·√ψ + z_b·√(ψ − δ²))² / δ²
      ψ = discordant share, δ = difference in pass rate, z_a = z(1 − α/2), z_b = z(power)
    and, since that normal approximation promises the exact test more power than it has (77.6 %
    instead of 80 % at ψ = 0.3, δ = 0.1), steps up until `mcnemar_power` reaches `power`.
    None when there is no difference to detect."""
    delta = abs(difference)
    if delta == 0:
        return None
    psi = min(max(discordant, delta), 1.0)  # ψ ≥ |δ| always holds for real data
    z_a, z_b = _z(1 - (1 - confidence) / 2), _z(power)
    n = math.ceil((z_a * math.sqrt(psi) + z_b * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / delta**2)
    start = n
    while mcnemar_power(n, psi, delta, confidence) < power and n < 20 * start:
        n += max(1, n // 200)
    return n


def mean_interval(values, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float | None, float | None]:
    """Student's t interval of the mean of a few measurements (repeated benchmark runs); None with fewer than 2."""
    from scipy.stats import t

    data = np.asarray(list(values), dtype=float)
    if data.size < 2:
        return None, None
    half = float(t.ppf(0.5 + confidence / 2, data.size - 1)) * float(data.std(ddof=1)) / math.sqrt(data.size)
    return float(data.mean()) - half, float(data.mean()) + half


def ratio_interval(
    baseline, candidate, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float | None, float | None]:
    """Ratio of two means (candidate ÷ baseline) of repeated measurements, with an interval from the delta method
    on the log scale: var(log r) ≈ s_b² / (n_b·m_b²) + s_c² / (n_c·m_c²), t with n_b + n_c − 2 degrees of freedom.
    The interval is None with fewer than two runs on either side (one run says nothing about its own spread)."""
    from scipy.stats import t

    b, c = np.asarray(list(baseline), dtype=float), np.asarray(list(candidate), dtype=float)
    if b.size == 0 or c.size == 0 or b.mean() <= 0 or c.mean() <= 0:
        return float("nan"), None, None
    ratio = float(c.mean() / b.mean())
    if b.size < 2 or c.size < 2:
        return ratio, None, None
    var = b.var(ddof=1) / (b.size * b.mean() ** 2) + c.var(ddof=1) / (c.size * c.mean() ** 2)
    half = float(t.ppf(0.5 + confidence / 2, b.size + c.size - 2)) * math.sqrt(var)
    return ratio, ratio * math.exp(-half), ratio * math.exp(half)


def paired_bootstrap(
    statistic, baseline, candidate, confidence: float = DEFAULT_CONFIDENCE, resamples: int = 4_999, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(baseline_rows, candidate_rows)` with items resampled in pairs
    (the same item for both). Rows are numpy arrays, one row per item (a text chunk: its log-likelihood and its
    tokens). Seeded, so a rerun on the same results gives the same interval."""
    a, b = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), size=(resamples, len(a)))
    values = np.array([statistic(a[i], b[i]) for i in picks])
    low, high = np.percentile(values, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(low), float(high)


def mean_difference_power(differences, effect: float, confidence: float = DEFAULT_CONFIDENCE) -> float | None:
    """Power of a two-sided test of mean paired difference 0 to see a true mean difference of `effect`, from the
    spread the differences show (normal approximation: Φ(effect / se − z), se = s / √n). None when the
    differences do not spread (every item scored alike on both sides, so no spread to scale by) or n < 2."""
    from scipy.stats import norm

    data = np.asarray(list(differences), dtype=float)
    if data.size < 2 or float(data.std(ddof=1)) == 0:
        return None
    se = float(data.std(ddof=1)) / math.sqrt(data.size)
    z = _z(0.5 + confidence / 2)
    shift = abs(effect) / se
    return float(norm.cdf(shift - z) + norm.cdf(-shift - z))


def describe(values) -> dict:
    """Count, mean and percentiles of a sample (latency, tokens); empty samples give None."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return {"n": 0, "mean": None, "min": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(data, [50, 90, 99])
    return {
        "n": int(data.size),
        "mean": float(data.mean()),
        "min": float(data.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(data.max()),
    }


@dataclass(frozen=True)
class PairedComparison:
    """Variant B against baseline A on the same items."""

    baseline: str
    variant: str
    items: int
    difference: float  # B's pass rate minus A's, from per-item scores
    interval: tuple[float, float]  # bootstrap interval of the difference
    only_baseline: int  # McNemar b: items A passed and B failed
    only_variant: int  # McNemar c: items B passed and A failed
    p_value: float
    confidence: float
    items_needed: int | None  # for the observed difference (or MIN_EFFECT when none) at 80 % power

    @property
    def significant(self) -> bool:
        """Both the exact test and the interval say there is a difference."""
        alpha = 1 - self.confidence
        low, high = self.interval
        return self.p_value < alpha and (low > 0 or high < 0)

    @property
    def verdict(self) -> str:
        a, b, n = self.baseline, self.variant, self.items
        level = f"{self.confidence:.0%}"
        low, high = self.interval
        diff = f"{b} − {a} = {self.difference * 100:+.1f} points ({level} CI {low * 100:+.1f} to {high * 100:+.1f})"
        test = (
            f"exact McNemar p = {self.p_value:.3g} ({self.only_variant} item(s) only {b} passed, "
            f"{self.only_baseline} only {a} passed, of {n})"
        )
        if self.significant:
            better, worse = (b, a) if self.difference > 0 else (a, b)
            return (
                f"{better} passes more often than {worse}: {diff}; {test}. The difference holds at the {level} level."
            )
        text = f"The data cannot tell {a} and {b} apart: {diff}; {test}."
        if self.items_needed is None:
            return text
        if self.difference != 0 and self.only_baseline + self.only_variant > 0:
            size = f"a true difference of {abs(self.difference) * 100:.1f} points"
        else:
            size = f"a difference of {MIN_EFFECT * 100:.0f} points"
        more = max(self.items_needed - n, 0)
        return (
            f"{text} To detect {size} with {DEFAULT_POWER:.0%} power would take about {self.items_needed:,} "
            f"items ({more:,} more than these {n})."
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = list(self.interval)
        d.update(significant=self.significant, verdict=self.verdict)
        return d


def compare_paired(
    baseline: str, variant: str, scores_a, scores_b, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0
) -> PairedComparison:
    """Compare two variants on the same items. `scores_*` are per-item pass shares in [0, 1] (1 or 0
    with one repeat); an item counts as passed for McNemar when more than half its repeats passed."""
    if len(scores_a) != len(scores_b):
        raise ValueError(f"paired scores need the same items: {len(scores_a)} vs {len(scores_b)}")
    n = len(scores_a)
    differences = [sb - sa for sa, sb in zip(scores_a, scores_b)]
    passed_a = [s > 0.5 for s in scores_a]
    passed_b = [s > 0.5 for s in scores_b]
    only_a = sum(pa and not pb for pa, pb in zip(passed_a, passed_b))
    only_b = sum(pb and not pa for pa, pb in zip(passed_a, passed_b))
    difference = sum(differences) / n if n else 0.0
    binary_difference = (only_b - only_a) / n if n else 0.0
    if only_a + only_b and binary_difference:
        needed = items_needed((only_a + only_b) / n, binary_difference, confidence)
    else:
        needed = items_needed((only_a + only_b) / n if n else 0.0, MIN_EFFECT, confidence)
    return PairedComparison(
        baseline=baseline,
        variant=variant,
        items=n,
        difference=difference,
        interval=bootstrap_interval(differences, confidence, seed=seed),
        only_baseline=only_a,
        only_variant=only_b,
        p_value=mcnemar_exact(only_a, only_b),
        confidence=confidence,
        items_needed=needed,
    )
