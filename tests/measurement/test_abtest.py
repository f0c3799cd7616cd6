"""Running prompt A/B tests: the checks, retries, the cache and the judge, scripted on a fake server and for real
against the engine."""

import csv
import json
import threading
from pathlib import Path

import pytest

from tests.fakes import FakeOpenAIServer
from tests.helpers import AB_ROWS as ROWS
from tests.helpers import AB_SYSTEM as SYSTEM
from tests.helpers import ab_config as config
from workbench.measurement import abconfig, abtest
from workbench.store import Store

EXAMPLE = abconfig.EXAMPLE


def test_checks_fill_in_the_items_columns_and_leave_regex_braces_alone():
    item = abconfig.Item("1", {"capital": "Mexico City (CDMX)"})
    trial = abtest.Trial(
        "a", "1", 0, ok=True, output='The capital is Mexico City (CDMX). {"x": 12}', latency_s=0.5, completion_tokens=12
    )

    def passes(**assertion):
        return abtest.check(abconfig.Assertion(**assertion), trial, item).passed

    assert passes(type="contains", value="{capital}")
    assert passes(type="regex", value=r"is {capital}\. \{\"x\": \d{2}\}")  # the value is escaped, {2} kept
    assert not passes(type="equals", value="mexico city (cdmx)") and not passes(type="not_contains", value="CDMX")
    assert passes(type="max_latency_s", value=1) and not passes(type="max_tokens", value=10)
    assert passes(type="python", value="len(output) < 100 and vars['capital'] in output")
    assert not passes(type="python", value="1 / 0")  # an error in the predicate fails the check
    schema = {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}}
    assert not passes(type="json_schema", value=schema)  # prose around the JSON
    json_trial = abtest.Trial("a", "1", 0, ok=True, output='```json\n{"x": 12}\n```')
    assert abtest.check(abconfig.Assertion(type="json_schema", value=schema), json_trial, item).passed


# -- runs against the real engine -----------------------------------------------------------
def test_a_rerun_costs_nothing_and_new_checks_reuse_the_answers(engine, tmp_path):
    cache = Store(tmp_path / "cache")
    cfg = abconfig.parse_config(config())
    first = abtest.run(cfg, engine.url, cache=cache)
    assert len(first.trials) == 6 and all(t.ok and not t.cached for t in first.trials)
    assert first.variants["terse"].pass_rate == 1.0  # the default system prompt knows these three
    second = abtest.run(cfg, engine.url, cache=cache)
    assert all(t.cached for t in second.trials) and len(cache) == 6
    answers = lambda report: {(t.variant, t.item): t.output for t in report.trials}  # noqa: E731
    assert answers(second) == answers(first)
    stricter = abtest.run(
        abconfig.parse_config(config(**{"assert": [{"type": "max_tokens", "value": 1}]})), engine.url, cache=cache
    )
    assert all(t.cached for t in stricter.trials) and stricter.variants["terse"].pass_rate == 0.0
    changed = abtest.run(
        abconfig.parse_config(
            config(variants=[{"name": "terse", "system": SYSTEM}, {"name": "other", "system": "Be brief."}])
        ),
        engine.url,
        cache=cache,
    )
    assert [t.cached for t in changed.trials if t.variant == "other"] == [False] * 3


def test_a_failing_request_is_recorded_and_the_run_goes_on(engine, tmp_path):
    rows = [*ROWS[:2], {"id": "huge", "country": "word " * 5000, "capital": "?"}]  # over max_model_len
    report = abtest.run(abconfig.parse_config(config(dataset=rows)), engine.url, cache=Store(tmp_path / "answers"))
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
    with FakeOpenAIServer(
        lambda body: (503, {"error": {"message": "overloaded", "type": "ServiceUnavailable", "code": 503}})
    ) as server:
        yield server


def test_server_errors_are_retried_then_recorded(engine, fake_overloaded_server, tmp_path):
    url = fake_overloaded_server.url
    cfg = abconfig.parse_config(
        config(retries=1, variants=[{"name": "terse", "system": SYSTEM}, {"name": "elsewhere", "url": url}])
    )
    report = abtest.run(cfg, engine.url, cache=Store(tmp_path / "answers"))
    elsewhere = [t for t in report.trials if t.variant == "elsewhere"]
    assert all(not t.ok and t.attempts == 2 and "503" in t.error for t in elsewhere)
    assert len(fake_overloaded_server.bodies) == 6
    assert report.variants["terse"].pass_rate == 1.0 and report.variants["elsewhere"].pass_rate == 0.0
    comparison = report.comparisons[0].as_dict()
    assert comparison["difference"] == -1.0 and comparison["only_baseline"] == 3


def test_repeats_and_the_judge(engine, tmp_path):
    cfg = abconfig.parse_config(config(dataset=ROWS[:2], repeats=2, judge={}))
    report = abtest.run(cfg, engine.url, cache=Store(tmp_path / "answers"))
    assert len(report.trials) == 8 and {t.repeat for t in report.trials} == {0, 1}
    assert len(report.judgements) == 2 and {j.first for j in report.judgements} <= {"A", "B", "?"}
    votes = report.judge_summary()["plain"]
    assert votes["wins"] + votes["losses"] + votes["ties"] == 2
    assert (
        f"Judge: plain won {votes['wins']}, lost {votes['losses']}, tied {votes['ties']} against terse"
        in report.verdict
    )
    files = report.save(tmp_path, "r")
    data = json.loads(files["json"].read_text())
    assert len(data["trials"]) == 8 and data["judge"]["plain"]["items"] == 2
    assert report.verdict in files["md"].read_text()
    with files["csv"].open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and list(rows[0])[:6] == ["item", "country", "capital", "variant", "repeat", "passed"]


def test_the_cli_runs_the_example_over_30_items(engine, tmp_path, capsys):
    from workbench.cli import main

    code = main(
        [
            "ab",
            "run",
            str(EXAMPLE),
            "--url",
            engine.url,
            "--json",
            "--cache",
            str(tmp_path / "c.sqlite"),
            "--save",
            str(tmp_path),
        ]
    )
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

    cache = Store(tmp_path / "answers")
    cfg = abconfig.parse_config(config(concurrency=1))
    cancel = threading.Event()
    with pytest.raises(WorkbenchError, match=r"cancelled after \d of 6 trials; their answers are cached") as error:
        abtest.run(
            cfg,
            engine.url,
            cache=cache,
            cancel=cancel,
            on_trial=lambda done, total, trial: cancel.set() if done == 2 else None,
        )
    finished = int(str(error.value).split()[2])  # the two seen, and at most the one already in flight
    assert finished in (2, 3)
    resumed = abtest.run(cfg, engine.url, cache=cache)
    assert sum(t.cached for t in resumed.trials) == finished and len(cache) == 6


# -- retries and the judge, scripted: the fake server answers what each test needs, deterministically ------
class ScriptedServer:
    """A FakeOpenAIServer whose answer is chosen from the request by `answer(body, calls) -> (status, text)`;
    `calls` counts the requests with the same messages so far (to fail a first attempt)."""

    def __init__(self, answer):
        from tests.fakes import chat_completion

        self.calls: dict[str, int] = {}

        def respond(body):
            key = json.dumps(body["messages"], sort_keys=True)
            self.calls[key] = self.calls.get(key, 0) + 1
            status, text = answer(body, self.calls[key])
            if status != 200:
                return status, {"error": {"message": text, "type": "Scripted", "code": status}}
            return 200, chat_completion(text)

        self.server = FakeOpenAIServer(respond)

    def __enter__(self):
        self.server.__enter__()
        return self.server

    def __exit__(self, *exc):
        self.server.__exit__(*exc)


def capital_of(body) -> str:
    question = body["messages"][-1]["content"]
    return next(r["capital"] for r in ROWS if r["country"] in question)


def test_a_server_fault_is_retried_and_the_second_answer_counts(tmp_path):
    """503 on every first attempt, then the right answer: each trial passes on its second attempt."""
    with ScriptedServer(lambda body, n: (503, "overloaded") if n == 1 else (200, capital_of(body))) as fake:
        cfg = abconfig.parse_config(config(retries=2))
        report = abtest.run(cfg, fake.url, cache=Store(tmp_path / "answers"))
    assert all(t.ok and t.passed and t.attempts == 2 for t in report.trials)
    assert len(fake.bodies) == 2 * len(report.trials) == 12
    assert report.variants["terse"].pass_rate == report.variants["plain"].pass_rate == 1.0


def test_a_refusal_is_not_retried_and_the_run_goes_on(tmp_path):
    """A 400 for Japan only: that item's two trials fail after one attempt each, the rest pass."""

    def answer(body, n):
        return (
            (400, "max_tokens is too large") if "Japan" in body["messages"][-1]["content"] else (200, capital_of(body))
        )

    with ScriptedServer(answer) as fake:
        report = abtest.run(abconfig.parse_config(config(retries=3)), fake.url, cache=None)
    failed = [t for t in report.trials if not t.ok]
    assert sorted((t.item, t.attempts) for t in failed) == [("jp", 1), ("jp", 1)]
    assert all("400" in t.error for t in failed) and all(t.passed for t in report.trials if t.item != "jp")
    assert "2 of 6 trials got no answer and count as failures" in report.verdict


def test_retries_stop_at_the_limit_and_the_failure_is_recorded(tmp_path):
    with ScriptedServer(lambda body, n: (503, "overloaded")) as fake:
        report = abtest.run(abconfig.parse_config(config(retries=1)), fake.url, cache=None)
    assert all(not t.ok and t.attempts == 2 and "503" in t.error for t in report.trials)
    assert len(fake.bodies) == 12 and report.variants["terse"].pass_rate == 0.0


def judged(prefer: str):
    """Variants answer differently ("terse" with the city alone, "plain" in a sentence); the judge picks the
    answer holding `prefer`'s style, wherever it is shown, or always "A" when prefer is "first"."""

    def answer(body, n):
        text = body["messages"][-1]["content"]
        if "Which answer is better?" not in text:
            sentence = body["messages"][0]["content"] == "You are an assistant."
            return 200, (f"The capital is {capital_of(body)}." if sentence else capital_of(body))
        if prefer == "first":
            return 200, "A"
        a = text.split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
        return 200, "A" if a.startswith("The capital") == (prefer == "plain") else "B"

    return answer


@pytest.mark.parametrize("prefer, wins, losses, ties", [("plain", 3, 0, 0), ("terse", 0, 3, 0), ("first", 0, 0, 3)])
def test_the_judge_is_asked_in_both_orders_and_a_position_preference_is_a_tie(tmp_path, prefer, wins, losses, ties):
    with ScriptedServer(judged(prefer)) as fake:
        report = abtest.run(abconfig.parse_config(config(judge={})), fake.url, cache=None)
    votes = report.judge_summary()["plain"]
    assert (votes["wins"], votes["losses"], votes["ties"]) == (wins, losses, ties)
    assert [(j.first, j.second) for j in report.judgements] == [
        {"plain": ("B", "A"), "terse": ("A", "B"), "first": ("A", "A")}[prefer]
    ] * 3
    assert sum("Which answer is better?" in b["messages"][-1]["content"] for b in fake.bodies) == 6
    assert f"Judge: plain won {wins}, lost {losses}, tied {ties} against terse" in report.verdict
