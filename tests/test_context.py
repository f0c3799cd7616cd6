"""The context-reliability map: planting, the scoring of scripted replies, the refusals, and one small real run
of `workbench context` (and the compare task) on the session's engines."""

import json
import random
import subprocess
import sys

import pytest

from workbench.context import grid, planting, scoring
from workbench.errors import ConfigError
from workbench.measurement import compare, compare_request
from workbench.serving.reply import Result, Usage
from workbench.tasks import docqa, fact_check
from workbench.tasks.documents import Document, Page

WORKBENCH = [sys.executable, "-m", "workbench.cli"]
FILLER = {
    "en": "\n".join(
        f"({i}) Notices under this Contract shall be in writing and delivered to the addresses "
        "stated on the signature page."
        for i in range(40)
    ),
    "zh": "\n".join(
        f"（{i}）通知条款：本合同项下的通知应以书面形式送达签字页所列地址，双方另有约定的除外。" for i in range(40)
    ),
}


def planted(language: str, depth: float = 50, count: int = 2, seed: int = 3):
    facts = planting.make_facts(count, language, random.Random(seed), prefix="f")
    text = planting.plant(FILLER[language], facts, depth, planting.distractor_depth(depth))
    return facts, Document("contract.txt", "txt", text, (Page(1, text, 0),))


# -- planting -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", ["en", "zh"])
def test_facts_are_planted_at_their_depth_in_the_documents_language_with_a_distractor(language):
    facts, doc = planted(language, depth=0, count=4)
    assert {f.kind for f in facts} == set(planting.KINDS)  # an amount, a date, a party, a clause number
    lines = doc.text.split("\n")
    assert lines[:4] == [f.sentence for f in facts]  # depth 0: first
    assert lines.index(facts[0].distractor) == 4 + 20  # half the 40 lines of the document away
    for f in facts:
        assert planting.language_of(f.sentence) == language
        assert planting.has_marks(f.sentence, f.marks) and not planting.has_marks(f.sentence, f.distractor_marks)
        assert planting.has_marks(f.distractor, f.distractor_marks) and not planting.has_marks(f.distractor, f.marks)
        assert f.sentence in docqa.split_sentences(doc.text)  # a sentence of its own, so its quote is just it
        assert docqa.candidates(doc.text, f.keywords)[:2] != []
    _, end = planted(language, depth=100, count=1)
    assert end.text.rstrip().split("\n")[-1].startswith(("Supplementary", "补充条款"))
    assert planting.make_facts(3, language, random.Random(9)) == planting.make_facts(3, language, random.Random(9))


def test_marks_read_numbers_the_way_the_fact_check_does():
    assert planting.has_marks("the fee is 38.6万 yuan", ("386000",))
    assert planting.has_marks("On 14 March 2027.", ("14", "march", "2027"))
    assert not planting.has_marks("On 14 May 2027.", ("14", "march", "2027"))
    assert planting.has_marks("适用第十七条", ("17",)) and "17" in fact_check.numbers("第十七条")
    assert planting.has_marks("Granite Peak  Holdings Ltd.", ("Granite Peak Holdings Ltd.",))


# -- scoring on scripted replies ----------------------------------------------------------------------------
class ScriptedClient:
    """A stand-in for the served model that replies what the test scripts (quote JSON, then the value)."""

    def __init__(self, *replies: str):
        self.replies = list(replies)
        self.asked = []

    def chat(self, messages, **params):
        self.asked.append(params)
        return Result(text=self.replies.pop(0), usage=Usage(prompt_tokens=100))


def ask_scripted(fact, doc, quote, value):
    client = ScriptedClient(json.dumps({"quote": quote}, ensure_ascii=False), value)
    reading = scoring.ask(client, doc, fact)
    assert client.asked[0]["task"] == "docqa-quote" and "response_format" in client.asked[0]
    return reading


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_verified_quote_with_the_right_value_is_found(language):
    facts, doc = planted(language)
    f = facts[0]
    reading = ask_scripted(f, doc, f.sentence, f.sentence)
    assert (reading.outcome, reading.verified, reading.supported) == (scoring.FOUND, True, True)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_value_read_from_the_distractor_is_wrong(language):
    facts, doc = planted(language)
    f = facts[0]
    assert ask_scripted(f, doc, f.distractor, f.distractor).outcome == scoring.WRONG
    # the right sentence quoted, but the distractor's value written: wrong too
    assert scoring.score(f, docqa.ground(doc, f.id, f.distractor, f.sentence)).outcome == scoring.WRONG


def test_an_unverified_quote_is_not_found_even_with_the_right_value():
    facts, doc = planted("en")
    f = facts[0]
    invented = f.sentence.replace("Supplementary terms.", "As agreed in the annex,")
    reading = scoring.score(f, docqa.ground(doc, f.id, f.sentence, invented))
    assert (reading.outcome, reading.verified) == (scoring.NOT_FOUND, False)
    assert reading.reason == "the quote is not in the document"


def test_a_right_value_its_quote_does_not_support_is_not_found():
    facts, doc = planted("en")
    f, other = facts
    reading = scoring.score(f, docqa.ground(doc, f.id, f.sentence, other.sentence))
    assert reading.outcome == scoring.NOT_FOUND and not reading.supported


# -- refusals ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, words",
    [
        ({"target": 0}, "target 0 is outside (0, 1]"),
        ({"target": 1.2}, "target 1.2 is outside (0, 1]"),
        ({"lengths": ()}, "the grid is empty: no lengths"),
        ({"depths": ()}, "the grid is empty: no depths"),
        ({"depths": (0, 150)}, "depth 150 is outside 0-100"),
        ({"lengths": (100,)}, "length 100 is too short"),
    ],
)
def test_bad_requests_are_refused_before_any_question(changes, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        grid.check(grid.ContextRequest(**changes))


def test_the_flags_parse_and_refuse_clearly():
    assert grid.parse_lengths("2048, 1024,4K") == (1024, 2048, 4096)
    assert grid.parse_depths("0,50%,100") == (0.0, 50.0, 100.0)
    assert grid.parse_thinking("on,off") == (True, False) and grid.parse_thinking("auto") is None
    with pytest.raises(ConfigError, match="'2x' is not a number of tokens"):
        grid.parse_lengths("1024,2x")
    with pytest.raises(ConfigError, match="'maybe' is unknown. Valid: auto"):
        grid.parse_thinking("maybe")


def cli(*args):
    return subprocess.run([*WORKBENCH, *args], capture_output=True, text=True, timeout=600)


def test_a_short_document_and_a_length_beyond_the_server_are_one_line_errors(engine, tmp_path):
    short = tmp_path / "note.txt"
    short.write_text("A short note that says very little about anything at all.")
    out = cli("context", str(short), "--lengths", "512,1024", "--url", engine.url, "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "note.txt holds" in out.stderr and "shorter than the smallest length asked for (512)" in out.stderr
    out = cli("context", "--lengths", "1024,999999", "--url", engine.url, "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "length 999,999 is beyond the served max_model_len 4,096" in out.stderr
    out = cli("context", "--target", "1.5", "--url", engine.url, "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "target 1.5 is outside (0, 1]" in out.stderr


# -- on the real engine ---------------------------------------------------------------------------------------
def test_the_cli_writes_the_map_the_longest_reliable_context_and_the_memory_answer_and_resumes(engine, tmp_path):
    args = [
        "context",
        "--lengths",
        "1024",
        "--depths",
        "0,100",
        "--facts",
        "1",
        "--url",
        engine.url,
        "--out",
        str(tmp_path / "out"),
        "--gpu",
        "RTX 3090",
    ]
    first = cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    saved = json.loads((tmp_path / "out" / "context.json").read_text())
    (m,) = saved["maps"]
    assert [(g["length"], g["depth"], g["n"]) for g in m["grid"]] == [(1024, 0.0, 2), (1024, 100.0, 2)]  # zh + en
    assert m["memory"]["gpu"] == "RTX 3090" and m["memory"]["longest_fitting"] == 8192  # the model's 8K positions
    assert m["headline"].startswith("memory allows 8K (") and "; quality holds" in m["headline"]
    row = m["per_length"][0]
    assert row["found"] + row["wrong"] + row["not_found"] == 4 and 0 <= row["interval"][0] <= row["interval"][1] <= 1
    assert all(900 < c["prompt_tokens"] + scoring.reserved_tokens(None) <= 1024 for c in saved["cells"])
    assert (tmp_path / "out" / "recall-default.png").stat().st_size > 5000 and m["headline"] in first.stdout
    again = cli(*args, "--json")  # everything from the store: nothing asked again
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads(again.stdout)
    assert (resumed["computed"], resumed["reused"]) == (0, 4) and resumed["maps"][0]["grid"] == m["grid"]


def test_the_compare_task_gives_a_paired_verdict(engine, qwen3_engine, tmp_path):
    request = compare_request.CompareRequest(
        candidates=(
            compare_request.Candidate("bf16", engine.url),
            compare_request.Candidate("qwen3", qwen3_engine.url),
        ),
        tasks=("context",),
        workload=None,
        store=str(tmp_path / "store"),
        settings=compare_request.TaskSettings(context_lengths=(1024,), context_depths=(0.0,), context_facts=1),
    )
    report = compare.run(request).as_dict()
    (verdict,) = report["verdicts"]["qwen3"]
    assert verdict["task"] == "context" and verdict["kind"] == "pass" and verdict["items"] == 2  # a fact each: zh, en
    assert verdict["power"] is not None and verdict["outcome"] in ("loss", "gain", "no loss detected")
    summary = report["results"]["bf16"]["context"]["summary"]
    assert summary["headline"].startswith("memory allows")


def test_a_reasoning_server_is_mapped_with_thinking_off_and_on(qwen3_engine, tmp_path):
    """The tiny Qwen3 (random weights, so recall means nothing here): one map per thinking mode, each request
    with the reasoning budget on top when it thinks."""
    from workbench.tasks import docqa_dataset

    docqa_dataset.make_contract(tmp_path / "contract.txt", "en", 12_000)
    report = grid.run(
        grid.ContextRequest((str(tmp_path / "contract.txt"),), lengths=(2048,), depths=(50.0,), facts_per_cell=1),
        qwen3_engine.url,
        tmp_path,
    )
    assert [m["mode"] for m in report.maps] == ["thinking off", "thinking on"]
    assert [c["thinking"] for c in report.cells] == [False, True]
    on = [c for c in report.cells if c["thinking"]]
    assert all(c["prompt_tokens"] + scoring.reserved_tokens(True) <= 2048 for c in on)
    assert all(r["outcome"] in scoring.OUTCOMES for c in report.cells for r in c["readings"])
