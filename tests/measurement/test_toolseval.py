"""The project's own tool-calling cases, scored the way BFCL scores (name, required parameters and types,
values): the rules on fixed proposals, and every mode against the real engine."""

import jsonschema
import pytest

from tests.helpers import make_policy
from workbench.errors import ConfigError
from workbench.measurement import toolseval
from workbench.tasks import agent


@pytest.mark.slow
def test_tools_eval_scores_every_mode(client, tmp_path):
    sample = toolseval.CASES[::8]  # every category, both languages; bench/tools_eval.py runs all of them
    assert {c.category for c in sample} == set(toolseval.CATEGORIES) and {c.lang for c in sample} == {"en", "zh"}
    for mode in agent.MODES:
        policy = make_policy(tmp_path / mode)
        report = toolseval.evaluate(client, policy, mode, cases=sample, concurrency=len(sample))
        rows = report["rows"]
        assert [r["message"] for r in rows] == [c.message for c in sample]
        # every row is scored by the BFCL rules, and every figure is the share of its rows
        for case, row in zip(sample, rows):
            assert {k: row[k] for k in ("name", "arguments", "exact")} == {
                k: v
                for k, v in toolseval.score_case(case, row["proposed"], policy).items()
                if k in ("name", "arguments", "exact")
            }
        for category, figures in report["categories"].items():
            mine = [r for r in rows if r["category"] == category]
            assert figures["cases"] == len(mine) > 0
            assert figures["exact"] == pytest.approx(sum(r["exact"] for r in mine) / len(mine))
        assert report["overall"]["exact"] == pytest.approx(sum(r["exact"] for r in rows) / len(rows))
        assert sum(f["cases"] for f in report["languages"].values()) == len(rows)
        if mode != "native":
            # schema-guided decoding: whatever the model proposes as a call names a whitelisted tool and fits
            # its schema, however wrong the choice
            for row in rows:  # a list of calls; an answer is a str, an unusable reply a dict
                for name, arguments in row["proposed"] if isinstance(row["proposed"], list) else []:
                    jsonschema.validate(arguments, policy.registry.get(name).parameters)


def test_scoring_rules(tmp_path):
    policy = make_policy(tmp_path)
    case = toolseval.CASES[0]  # weather in Hangzhou on 2026-11-26
    right = [("get_weather", {"city": "Hangzhou", "date": "2026-11-26"})]
    wrong_value = [("get_weather", {"city": "Beijing", "date": "2026-11-26"})]
    extra_arg = [("get_weather", {"city": "Hangzhou", "date": "2026-11-26", "unit": "c"})]
    assert toolseval.score_case(case, right, policy)["exact"]
    assert not toolseval.score_case(case, wrong_value, policy)["arguments"]
    assert toolseval.score_case(case, wrong_value, policy)["name"]
    assert not toolseval.score_case(case, extra_arg, policy)["arguments"]
    assert not toolseval.score_case(case, "It is sunny.", policy)["name"]
    irrelevant = next(c for c in toolseval.CASES if c.category == "irrelevance")
    assert toolseval.score_case(irrelevant, "Shakespeare.", policy)["exact"]
    assert not toolseval.score_case(irrelevant, right, policy)["exact"]


def test_thinking_asked_of_a_server_without_a_reasoning_parser_is_refused_before_scoring(client, tmp_path):
    """The bundled model has no reasoning parser: scoring 'thinking on' would score thoughts as answers."""
    asked = []
    with pytest.raises(ConfigError, match="thinking was asked of the server .*no reasoning parser.*--enable-reasoning"):
        toolseval.compare(
            client,
            lambda name: asked.append(name) or make_policy(tmp_path),
            [("constrained", False)],
            thinking=toolseval.THINKING["both"],
        )
    assert asked == []  # no design was started
