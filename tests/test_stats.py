"""The A/B statistics against statsmodels and scipy on fixed data."""

import numpy as np
import pytest
from scipy.stats import binomtest, ttest_1samp
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from workbench import stats


@pytest.mark.parametrize("successes,n", [(0, 10), (3, 10), (10, 10), (7, 30), (23, 30), (17.5, 30), (412, 1000)])
@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_wilson_interval_matches_statsmodels(successes, n, confidence):
    expected = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    assert stats.wilson_interval(successes, n, confidence) == pytest.approx(expected, abs=1e-12)


def test_wilson_interval_of_nothing_is_everything():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("b,c", [(0, 0), (0, 5), (1, 4), (2, 9), (5, 5), (12, 3), (30, 41)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    table = [[10, b], [c, 7]]  # concordant cells carry no information
    assert stats.mcnemar_exact(b, c) == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)


def test_bootstrap_interval_agrees_with_the_t_interval_on_a_large_sample():
    rng = np.random.default_rng(7)
    differences = rng.choice([-1.0, 0.0, 1.0], size=400, p=[0.15, 0.6, 0.25])
    low, high = stats.bootstrap_interval(differences)
    t_low, t_high = ttest_1samp(differences, 0).confidence_interval(0.95)
    assert low < differences.mean() < high
    assert low == pytest.approx(t_low, abs=0.01) and high == pytest.approx(t_high, abs=0.01)
    assert stats.bootstrap_interval(differences) == (low, high)  # seeded: a rerun gives the same numbers


def test_bootstrap_interval_of_identical_differences_is_that_value():
    assert stats.bootstrap_interval([0.0] * 30) == (0.0, 0.0)
    assert stats.bootstrap_interval([1.0] * 5) == (1.0, 1.0)


def test_items_needed_gives_the_promised_power():
    """Connor's n, checked by simulating the exact McNemar test at that n."""
    discordant, difference = 0.30, 0.10
    n = stats.items_needed(discordant, difference)
    assert 240 < n < 260
    assert stats.mcnemar_power(n, discordant, difference) >= 0.80 > stats.mcnemar_power(n - 5, discordant, difference)
    rng = np.random.default_rng(0)
    share_b = (discordant + difference) / 2 / discordant  # of discordant pairs, the share where B won
    hits = 0
    runs = 1500
    for _ in range(runs):
        pairs = rng.binomial(n, discordant)
        only_b = rng.binomial(pairs, share_b)
        hits += stats.mcnemar_exact(pairs - only_b, only_b) < 0.05
    assert 0.77 < hits / runs < 0.84


def test_items_needed_grows_as_the_difference_shrinks():
    assert stats.items_needed(0.3, 0.05) > stats.items_needed(0.3, 0.1) > stats.items_needed(0.3, 0.2)
    assert stats.items_needed(0.3, 0.0) is None


def test_a_clear_difference_gets_a_verdict_for_the_winner():
    a = [1.0] * 10 + [0.0] * 20
    b = [1.0] * 28 + [0.0] * 2
    comparison = stats.compare_paired("old", "new", a, b)
    assert comparison.only_variant == 18 and comparison.only_baseline == 0
    assert comparison.p_value == pytest.approx(mcnemar([[10, 0], [18, 2]], exact=True).pvalue)
    assert comparison.significant
    assert comparison.verdict.startswith("new passes more often than old: new − old = +60.0 points")


def test_a_small_difference_on_few_items_says_it_cannot_tell_and_how_many_more():
    a = [1.0] * 20 + [0.0] * 10
    b = [1.0] * 18 + [0.0] * 2 + [1.0] * 5 + [0.0] * 5  # B loses 2 items, wins 5: +10 points
    comparison = stats.compare_paired("A", "B", a, b)
    assert not comparison.significant
    assert comparison.p_value == pytest.approx(binomtest(2, 7, 0.5).pvalue)
    assert comparison.verdict.startswith("The data cannot tell A and B apart")
    assert comparison.items_needed == stats.items_needed(7 / 30, 0.1) > 30
    assert f"about {comparison.items_needed:,} items ({comparison.items_needed - 30:,} more" in comparison.verdict


def test_identical_variants_fall_back_to_a_ten_point_effect():
    comparison = stats.compare_paired("A", "B", [1.0, 0.0] * 15, [1.0, 0.0] * 15)
    assert comparison.difference == 0 and comparison.interval == (0.0, 0.0)
    assert comparison.items_needed == stats.items_needed(0.1, 0.1)
    assert "a difference of 10 points" in comparison.verdict


def test_repeats_use_item_shares_and_majorities():
    a = [2 / 3, 1 / 3, 1.0, 0.0]
    b = [1.0, 2 / 3, 1 / 3, 0.0]
    comparison = stats.compare_paired("A", "B", a, b)
    assert comparison.difference == pytest.approx((1 / 3 + 1 / 3 - 2 / 3 + 0) / 4)
    assert (comparison.only_baseline, comparison.only_variant) == (1, 1)  # item 3 for A, item 2 for B


def test_describe_gives_percentiles():
    d = stats.describe([0.1, 0.2, 0.3, 0.4, None])
    assert d["n"] == 4 and d["p50"] == pytest.approx(0.25) and d["max"] == 0.4
    assert stats.describe([])["mean"] is None


def test_ratio_interval_covers_the_true_ratio_as_often_as_it_says():
    rng = np.random.default_rng(11)
    covered, runs = 0, 1000
    for _ in range(runs):
        a, b = rng.normal(100, 5, size=4), rng.normal(80, 4, size=4)
        ratio, low, high = stats.ratio_interval(a, b)
        covered += low < 0.8 < high
    assert 0.92 < covered / runs < 0.98
    assert stats.ratio_interval([100], [80])[1:] == (None, None)  # one run each: no spread, no interval


def test_paired_bootstrap_of_the_mean_difference_agrees_with_the_mean_bootstrap():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, size=(200, 1))
    b = a + rng.normal(0.3, 1, size=(200, 1))
    low, high = stats.paired_bootstrap(lambda x, y: float((y - x).mean()), a, b)
    ref_low, ref_high = stats.bootstrap_interval((b - a)[:, 0])
    assert low == pytest.approx(ref_low, abs=0.03) and high == pytest.approx(ref_high, abs=0.03)


def test_mean_difference_power_matches_the_t_test_power_on_a_large_sample():
    from statsmodels.stats.power import TTestPower

    rng = np.random.default_rng(4)
    differences = rng.normal(0, 2.0, size=400)
    sd = differences.std(ddof=1)
    expected = TTestPower().power(effect_size=0.25 / sd, nobs=400, alpha=0.05)
    assert stats.mean_difference_power(differences, 0.25) == pytest.approx(expected, abs=0.01)
    assert stats.mean_difference_power([0.5] * 10, 0.25) is None
