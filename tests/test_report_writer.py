"""The report's prose: written by the real bundled model (the session engine) or by the template, and checked
against the facts; a figure that is not a fact of the value a sentence names marks the sentence unverified."""

import datetime as dt
import json

import pytest

from tests.report_helpers import checksum
from workbench.report import daily, demo_db, facts, source, spec, writer

DAY = dt.date(2026, 11, 17)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_db.make_demo_db(tmp_path_factory.mktemp("db") / "sales_demo.sqlite")


def make_spec(demo, **changes):
    return spec.parse_spec(
        {
            "db": f"sqlite:///{demo}",
            "table": "sales",
            "date_column": "day",
            "measures": ["revenue"],
            "dimension": "region",
            **changes,
        }
    )


@pytest.fixture(scope="module")
def day_facts(demo):
    s = make_spec(demo)
    with source.Source(s.db) as src:
        return facts.compute(facts.load(src, s, DAY), s, DAY)


def statuses(text, day_facts, language="en"):
    return [(s.status, s.unsupported) for s in writer.check(text, day_facts, language, "test").sentences]


def test_a_figure_must_be_a_fact_of_the_value_the_sentence_names(day_facts):
    east, south = day_facts.totals["East"]["revenue"], day_facts.totals["South"]["revenue"]
    assert statuses(f"East revenue was {east:,.2f} on 2026-11-17.", day_facts) == [("checked", [])]
    assert statuses(f"North revenue was {south:,.2f}.", day_facts) == [("unverified", [f"{south:.6g}"])]
    assert statuses("Revenue fell 99.9 % in the Mars region.", day_facts) == [("unverified", ["99.9", "Mars"])]
    assert statuses("East revenue fell 52 %, about 2.75万.", day_facts) == [("checked", [])]  # roundings of facts


def test_unverified_sentences_are_marked_and_never_shown_as_plain_text(day_facts):
    prose = writer.check(
        "## Summary\nEast revenue dropped 52.2 %. Sales will grow 300 % next week.", day_facts, "en", "test"
    )
    shown = prose.markdown()
    assert "East revenue dropped 52.2 %." in shown.splitlines()
    assert "⚠️ unverified (300 not in the facts): ~~Sales will grow 300 % next week.~~" in shown
    assert prose.figures_total == 2 and prose.figures_supported == 1 and prose.fact_share == 0.5


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_template_states_only_facts(day_facts, language):
    prose = writer.write(day_facts, language)
    assert prose.figures_total >= 8 and prose.fact_share == 1.0
    assert writer.SECTIONS[language][2] in writer.template(day_facts, language)


def test_a_follow_up_query_runs_under_the_tool_policy_and_is_audited(demo, tmp_path):
    before = checksum(demo)
    with source.Source(f"sqlite:///{demo}") as src:
        policy = writer.sql_policy(src.rows, tmp_path / "audit.jsonl")
        ok = policy.run(
            "query_database", {"sql": "SELECT region, SUM(revenue) FROM sales WHERE day = '2026-11-17' GROUP BY region"}
        )
        refused = policy.run("query_database", {"sql": "DELETE FROM sales"})
    assert ok.status == "executed" and len(ok.result["rows"]) == 5
    assert refused.status == "error" and "the report only reads" in refused.reason
    events = [e["event"] for e in policy.audit.events()]
    assert events == ["proposed", "executed", "proposed", "error"]
    assert checksum(demo) == before


@pytest.mark.slow
def test_the_bundled_model_writes_the_prose_and_every_figure_is_checked(client, demo, tmp_path):
    before = checksum(demo)
    report = daily.generate(make_spec(demo, max_tokens=96), [DAY], tmp_path, client)
    content = json.loads((tmp_path / DAY.isoformat() / "facts.json").read_text())
    prose = content["prose"]
    assert prose["author"] == client.model and prose["figures_total"] > 0
    assert [a["value"] for a in report.days[0].alerts] == ["East"]
    shown = (tmp_path / DAY.isoformat() / "report.md").read_text()
    for sentence in prose["sentences"]:
        assert (sentence["status"] == "unverified") == bool(sentence["unsupported"])
        if sentence["unsupported"]:
            assert f"~~{sentence['text']}~~" in shown  # marked, struck through, never plain
    assert prose["figures_supported"] == prose["figures_total"] - sum(len(s["unsupported"]) for s in prose["sentences"])
    assert checksum(demo) == before
