"""What the trials of an A/B run mean: the warnings a reader needs, beside the statistics (tests/test_stats.py)."""

from tests.helpers import ab_config as config
from workbench.measurement import abconfig, abtest
from workbench.measurement.abreport import ABReport


def test_a_sampling_variant_with_one_repeat_is_flagged_even_when_the_temperature_comes_from_defaults():
    item = abconfig.Item("1", {"country": "France", "capital": "Paris"})

    def warnings(**changes):
        cfg = abconfig.parse_config(config(**changes))
        trials = [abtest.Trial(v.name, "1", 0, ok=True, output="Paris") for v in cfg.variants]
        return ABReport(cfg, [item], trials).warnings

    assert warnings() == []  # temperature 0 from the defaults
    assert any("temperature > 0" in w for w in warnings(defaults={"temperature": 0.7}))
    assert any("temperature > 0" in w for w in warnings(defaults={}))  # unset: the server's default samples
    assert warnings(defaults={"temperature": 0.7}, repeats=3) == []
