"""A/B configs as a person writes them: the worked example, every mistake named with its field and the fix,
datasets in each format, and a config changed from the command line."""

import pytest

from tests.helpers import ab_config as config
from workbench.errors import ConfigError
from workbench.measurement import abconfig

EXAMPLE = abconfig.EXAMPLE


def test_the_example_config_loads_its_dataset_beside_it():
    cfg = abconfig.load_config(EXAMPLE)
    items = abconfig.load_items(cfg)
    assert len(items) == 30 and items[0].vars == {"country": "France", "capital": "Paris"}
    assert cfg.baseline_name == "helpful" and [v.name for v in cfg.variants] == ["helpful", "concise"]


def test_a_form_says_what_of_a_config_it_cannot_carry(tmp_path):
    form = {"name", "system", "template", "temperature", "max_tokens", "enable_thinking", "model", "url"}
    plain = abconfig.load_config(EXAMPLE)
    assert abconfig.beyond(plain, form, variants=2) == [] and abconfig.dataset_path(plain).is_file()
    rich = abconfig.parse_config(
        config(
            variants=[{"name": "a", "top_p": 0.9}, {"name": "b"}, {"name": "c"}],
            retries=5,
            defaults={"seed": 3},
        ),
        base_dir=tmp_path,
    )
    assert abconfig.beyond(rich, form, variants=2) == [
        "retries",
        "seed",
        "top_p",
        "variants past the first 2 (3 in all)",
    ]
    assert abconfig.dataset_path(rich) is None  # rows in the config itself


@pytest.mark.parametrize(
    "change,expected",
    [
        (
            {"variants": [{"name": "a"}, {"name": "b", "temprature": 0.3}]},
            ["variants.1.temprature", "did you mean 'temperature'", "Valid fields here:", "enable_thinking"],
        ),
        ({"variant": []}, ["variant: unknown field; did you mean 'variants'"]),
        ({"variants": [{"name": "only"}]}, ["variants: List should have at least 2 items"]),
        ({"variants": [{"name": "a"}, {"name": "a"}]}, ["variant names must differ", "['a']"]),
        ({"assert": [{"type": "startswith", "value": "x"}]}, ["assert.0.type", "'equals'", "'python'", "startswith"]),
        ({"assert": [{"type": "regex", "value": "(unclosed"}]}, ["assert.0", "missing ), unterminated subpattern"]),
        ({"repeats": 0}, ["repeats: Input should be greater than or equal to 1", "(got 0)"]),
        ({"baseline": "nobody"}, ["baseline 'nobody' is not a variant", "['terse', 'plain']"]),
        ({"defaults": {"temperature": 9}}, ["defaults.temperature", "less than or equal to 2"]),
    ],
)
def test_a_malformed_config_names_the_field_and_the_fix(change, expected):
    with pytest.raises(ConfigError) as error:
        abconfig.parse_config(config(**change))
    for text in expected:
        assert text in str(error.value)


def test_a_placeholder_without_a_column_names_both():
    with pytest.raises(
        ConfigError,
        match=r"prompt uses \['question'\] but dataset has the columns \['capital', "
        r"'country'\]",
    ):
        abconfig.load_items(abconfig.parse_config(config(prompt="Q: {question}")))


def test_dataset_files_in_every_format_and_their_errors(tmp_path):
    (tmp_path / "d.jsonl").write_text(
        '{"country": "France", "capital": "Paris", "assert": '
        '[{"type": "equals", "value": "Paris"}]}\n\n{"country": "Japan"}\n'
    )
    (tmp_path / "d.csv").write_text("country,capital\nFrance,Paris\n")
    (tmp_path / "bad.jsonl").write_text('{"country": "France"}\n{oops\n')
    (tmp_path / "bad.csv").write_text('country,assert\nFrance,"[{""type"": ""nope"", ""value"": 1}]"\n')
    items = abconfig.load_items(abconfig.parse_config(config(dataset="d.jsonl"), base_dir=tmp_path))
    assert [i.id for i in items] == ["1", "2"] and items[0].assertions[0].type == "equals"
    assert (
        abconfig.load_items(abconfig.parse_config(config(dataset="d.csv"), base_dir=tmp_path))[0].vars["capital"]
        == "Paris"
    )
    with pytest.raises(ConfigError, match="bad.jsonl line 2 is not JSON"):
        abconfig.load_items(abconfig.parse_config(config(dataset="bad.jsonl"), base_dir=tmp_path))
    with pytest.raises(ConfigError, match="row 1: bad assertion.*valid types: equals, contains"):
        abconfig.load_items(abconfig.parse_config(config(dataset="bad.csv", prompt="{country}"), base_dir=tmp_path))
    with pytest.raises(ConfigError, match="missing.csv does not exist"):
        abconfig.load_items(abconfig.parse_config(config(dataset="missing.csv"), base_dir=tmp_path))


def test_changes_from_the_command_line_are_checked_again():
    cfg = abconfig.parse_config(config())
    changed = abconfig.with_changes(cfg, "the flags", repeats=3, limit=None)
    assert (changed.repeats, changed.concurrency) == (3, cfg.concurrency) and abconfig.with_changes(cfg) is cfg
    with pytest.raises(ConfigError, match="the flags is not a valid A/B config:\n  repeats: Input should be greater"):
        abconfig.with_changes(cfg, "the flags", repeats=0)


def test_a_prompt_is_rendered_from_the_variant_and_the_item():
    cfg = abconfig.parse_config(config())
    item = abconfig.load_items(cfg)[0]
    assert abconfig.render(cfg.variants[0], cfg, item) == [
        {"role": "system", "content": cfg.variants[0].system},
        {"role": "user", "content": "What is the capital of France?"},
    ]
