"""Prompt A/B tests: configs a person writes, and runs against the real engine."""

import csv
import json
import threading
from pathlib import Path

import pytest

from tests.fakes import FakeOpenAIServer
from workbench import abtest
from workbench.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ab_system_prompts.yaml"
SYSTEM = "You are a concise, factual assistant."
ROWS = [{"id": "fr", "country": "France", "capital": "Paris"},
        {"id": "jp", "country": "Japan", "capital": "Tokyo"},
        {"id": "eg", "country": "Egypt", "capital": "Cairo"}]


def config(**changes) -> dict:
    data = {"name": "t", "dataset": ROWS, "prompt": "What is the capital of {country}?",
            "defaults": {"temperature": 0, "max_tokens": 16},
            "variants": [{"name": "terse", "system": SYSTEM}, {"name": "plain", "system": "You are an assistant."}],
            "assert": [{"type": "contains", "value": "{capital}", "ignore_case": True}], "concurrency": 3}
    data.update(changes)
    return data


# -- configs ------------------------------------------------------------------------------------
def test_the_example_config_loads_its_dataset_beside_it():
    cfg = abtest.load_config(EXAMPLE)
    items = abtest.load_items(cfg)
    assert len(items) == 30 and items[0].vars == {"country": "France", "capital": "Paris"}
    assert cfg.baseline_name == "helpful" and [v.name for v in cfg.variants] == ["helpful", "concise"]


@pytest.mark.parametrize("change,expected", [
    ({"variants": [{"name": "a"}, {"name": "b", "temprature": 0.3}]},
     ["variants.1.temprature", "did you mean 'temperature'", "Valid fields here:", "enable_thinking"]),
    ({"variant": []}, ["variant: unknown field; did you mean 'variants'"]),
    ({"variants": [{"name": "only"}]}, ["variants: List should have at least 2 items"]),
    ({"variants": [{"name": "a"}, {"name": "a"}]}, ["variant names must differ", "['a']"]),
    ({"assert": [{"type": "startswith", "value": "x"}]}, ["assert.0.type", "'equals'", "'python'", "startswith"]),
    ({"assert": [{"type": "regex", "value": "(unclosed"}]}, ["assert.0", "missing ), unterminated subpattern"]),
    ({"repeats": 0}, ["repeats: Input should be greater than or equal to 1", "(got 0)"]),
    ({"baseline": "nobody"}, ["baseline 'nobody' is not a variant", "['terse', 'plain']"]),
    ({"defaults": {"temperature": 9}}, ["defaults.temperature", "less than or equal to 2"]),
])
def test_a_malformed_config_names_the_field_and_the_fix(change, expected):
    with pytest.raises(ConfigError) as error:
        abtest.parse_config(config(**change))
    for text in expected:
        assert text in str(error.value)


def test_a_placeholder_without_a_column_names_both():
    with pytest.raises(ConfigError, match=r"prompt uses \['question'\] but dataset has the columns \['capital', "
                                          r"'country'\]"):
        abtest.load_items(abtest.parse_config(config(prompt="Q: {question}")))


def test_dataset_files_in_every_format_and_their_errors(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"country": "France", "capital": "Paris", "assert": '
                                      '[{"type": "equals", "value": "Paris"}]}\n\n{"country": "Japan"}\n')
    (tmp_path / "d.csv").write_text("country,capital\nFrance,Paris\n")
    (tmp_path / "bad.jsonl").write_text('{"country": "France"}\n{oops\n')
    (tmp_path / "bad.csv").write_text('country,assert\nFrance,"[{""type"": ""nope"", ""value"": 1}]"\n')
    items = abtest.load_items(abtest.parse_config(config(dataset="d.jsonl"), base_dir=tmp_path))
    assert [i.id for i in items] == ["1", "2"] and items[0].assertions[0].type == "equals"
    assert abtest.load_items(abtest.parse_config(config(dataset="d.csv"), base_dir=tmp_path))[0].vars["capital"] == "Paris"
    with pytest.raises(ConfigError, match="bad.jsonl line 2 is not JSON"):
        abtest.load_items(abtest.parse_config(config(dataset="bad.jsonl"), base_dir=tmp_path))
    with pytest.raises(ConfigError, match="row 1: bad assertion.*valid types: equals, contains"):
        abtest.load_items(abtest.parse_config(config(dataset="bad.csv", prompt="{country}"), base_dir=tmp_path))
    with pytest.raises(ConfigError, match="missing.csv does not exist"):
        abtest.load_items(abtest.parse_config(config(dataset="missing.csv"), base_dir=tmp_path))


def test_checks_fill_in_the_items_columns_and_leave_regex_braces_alone():
    item = abtest.Item("1", {"capital": "Mexico City (CDMX)"})
    trial = abtest.Trial("a", "1", 0, ok=True, output='The capital is Mexico City (CDMX). {"x": 12}', latency_s=0.5,
                         completion_tokens=12)

    def passes(**assertion):
        return abtest.check(abtest.Assertion(**assertion), trial, item).passed

    assert passes(type="contains", value="{capital}")
    assert passes(type="regex", value=r"is {capital}\. \{\"x\": \d{2}\}")  # the value is escaped, {2} kept
    assert not passes(type="equals", value="mexico city (cdmx)") and not passes(type="not_contains", value="CDMX")
    assert passes(type="max_latency_s", value=1) and not passes(type="max_tokens", value=10)
    assert passes(type="python", value="len(output) < 100 and vars['capital'] in output")
    assert not passes(type="python", value="1 / 0")  # an error in the predicate fails the check
    schema = {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}
    assert not passes(type="json_schema", value=schema)  # prose around the JSON
    json_trial = abtest.Trial("a", "1", 0, ok=True, output='```json\n{"x": 12}\n```')
    assert abtest.check(abtest.Assertion(type="json_schema", value=schema), json_trial, item).passed


def test_a_sampling_variant_with_one_repeat_is_flagged_even_when_the_temperature_comes_from_defaults():
    from workbench.abreport import Report

    item = abtest.Item("1", {"country": "France", "capital": "Paris"})

    def warnings(**changes):
        cfg = abtest.parse_config(config(**changes))
        trials = [abtest.Trial(v.name, "1", 0, ok=True, output="Paris") for v in cfg.variants]
        return Report(cfg, [item], trials).warnings

    assert warnings() == []  # temperature 0 from the defaults
    assert any("temperature > 0" in w for w in warnings(defaults={"temperature": 0.7}))
    assert any("temperature > 0" in w for w in warnings(defaults={}))  # unset: the server's default samples
    assert warnings(defaults={"temperature": 0.7}, repeats=3) == []


# -- runs against the real engine -----------------------------------------------------------
def test_a_rerun_costs_nothing_and_new_checks_reuse_the_answers(engine, tmp_path):
    cache = abtest.ResultCache(tmp_path / "cache.sqlite")
    cfg = abtest.parse_config(config())
    first = abtest.run(cfg, engine.url, cache=cache)
    assert len(first.trials) == 6 and all(t.ok and not t.cached for t in first.trials)
    assert first.variants["terse"].pass_rate == 1.0  # the default system prompt knows these three
    second = abtest.run(cfg, engine.url, cache=cache)
    assert all(t.cached for t in second.trials) and len(cache) == 6
    answers = lambda report: {(t.variant, t.item): t.output for t in report.trials}  # noqa: E731
    assert answers(second) == answers(first)
    stricter = abtest.run(abtest.parse_config(config(**{"assert": [{"type": "max_tokens", "value": 1}]})),
                          engine.url, cache=cache)
    assert all(t.cached for t in stricter.trials) and stricter.variants["terse"].pass_rate == 0.0
    changed = abtest.run(abtest.parse_config(config(variants=[{"name": "terse", "system": SYSTEM},
                                                              {"name": "other", "system": "Be brief."}])),
                         engine.url, cache=cache)
    assert [t.cached for t in changed.trials if t.variant == "other"] == [False] * 3


def test_a_failing_request_is_recorded_and_the_run_goes_on(engine, tmp_path):
    rows = [*ROWS[:2], {"id": "huge", "country": "word " * 5000, "capital": "?"}]  # over max_model_len
    report = abtest.run(abtest.parse_config(config(dataset=rows)), engine.url, cache=abtest.ResultCache(
        tmp_path / "c.sqlite"))
    failed = [t for t in report.trials if not t.ok]
    assert sorted(t.item for t in failed) == ["huge", "huge"]
    assert all("400" in t.error and t.attempts == 1 for t in failed)  # a refused request is not retried
    assert all(t.ok for t in report.trials if t.item != "huge")
    assert report.variants["terse"].errors == 1 and report.variants["terse"].pass_rate == pytest.approx(2 / 3)
    assert "2 of 6 trials got no answer and count as failures" in report.verdict
    headers, rows_ = report.matrix()
    assert rows_[2][headers.index("terse")].startswith("⚠")


@pytest.fixture
def fake_overloaded_server():
    """Answers every completion with 503, as an overloaded server would: the one failure mode the real
    engine cannot be made to show on demand."""
    with FakeOpenAIServer(lambda body: (503, {"error": {"message": "overloaded", "type": "ServiceUnavailable",
                                                        "code": 503}})) as server:
        yield server


def test_server_errors_are_retried_then_recorded(engine, fake_overloaded_server, tmp_path):
    url = fake_overloaded_server.url
    cfg = abtest.parse_config(config(retries=1, variants=[{"name": "terse", "system": SYSTEM},
                                                          {"name": "elsewhere", "url": url}]))
    report = abtest.run(cfg, engine.url, cache=abtest.ResultCache(tmp_path / "c.sqlite"))
    elsewhere = [t for t in report.trials if t.variant == "elsewhere"]
    assert all(not t.ok and t.attempts == 2 and "503" in t.error for t in elsewhere)
    assert len(fake_overloaded_server.bodies) == 6
    assert report.variants["terse"].pass_rate == 1.0 and report.variants["elsewhere"].pass_rate == 0.0
    comparison = report.comparisons[0].as_dict()
    assert comparison["difference"] == -1.0 and comparison["only_baseline"] == 3


def test_repeats_and_the_judge(engine, tmp_path):
    cfg = abtest.parse_config(config(dataset=ROWS[:2], repeats=2, judge={}))
    report = abtest.run(cfg, engine.url, cache=abtest.ResultCache(tmp_path / "c.sqlite"))
    assert len(report.trials) == 8 and {t.repeat for t in report.trials} == {0, 1}
    assert len(report.judgements) == 2 and {j.first for j in report.judgements} <= {"A", "B", "?"}
    votes = report.judge_summary()["plain"]
    assert votes["wins"] + votes["losses"] + votes["ties"] == 2
    assert f"Judge: plain won {votes['wins']}, lost {votes['losses']}, tied {votes['ties']} against terse" in \
        report.verdict
    data = json.loads(report.write_json(tmp_path / "r.json").read_text())
    assert len(data["trials"]) == 8 and data["judge"]["plain"]["items"] == 2
    with report.write_csv(tmp_path / "r.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and list(rows[0])[:6] == ["item", "country", "capital", "variant", "repeat", "passed"]


def test_the_cli_runs_the_example_over_30_items(engine, tmp_path, capsys):
    from workbench.cli import main

    code = main(["ab", "run", str(EXAMPLE), "--url", engine.url, "--json", "--cache", str(tmp_path / "c.sqlite"),
                 "--save", str(tmp_path)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["items"] == 30 and set(out["variants"]) == {"helpful", "concise"}
    for variant in out["variants"].values():
        low, high = variant["interval"]
        assert variant["trials"] == 30 and low <= variant["pass_rate"] <= high
    comparison = out["comparisons"][0]
    assert comparison["baseline"] == "helpful" and comparison["variant"] == "concise"
    assert comparison["interval"][0] <= comparison["difference"] <= comparison["interval"][1]
    assert 0 <= comparison["p_value"] <= 1 and comparison["verdict"] in out["verdict"]
    assert all(Path(f).is_file() for f in out["files"])


def test_the_cli_names_the_bad_field(tmp_path, capsys):
    from workbench.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: x.csv\nvariants:\n  - name: a\n  - name: b\n    sytem: hi\n")
    assert main(["ab", "run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "variants.1.sytem: unknown field; did you mean 'system'?" in err


def test_a_cancelled_run_resumes_from_the_cache(engine, tmp_path):
    from workbench.errors import WorkbenchError

    cache = abtest.ResultCache(tmp_path / "c.sqlite")
    cfg = abtest.parse_config(config(concurrency=1))
    cancel = threading.Event()
    with pytest.raises(WorkbenchError, match=r"cancelled after \d of 6 trials; their answers are cached") as error:
        abtest.run(cfg, engine.url, cache=cache, cancel=cancel,
                   on_trial=lambda done, total, trial: cancel.set() if done == 2 else None)
    finished = int(str(error.value).split()[2])  # the two seen, and at most the one already in flight
    assert finished in (2, 3)
    resumed = abtest.run(cfg, engine.url, cache=cache)
    assert sum(t.cached for t in resumed.trials) == finished and len(cache) == 6
