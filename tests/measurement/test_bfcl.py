"""BFCL v4 through its own data and its own AST checker (bfcl-eval, from PyPI, unchanged): the checker's verdicts
on fixed outputs, the suite's sizes, every function doc as a JSON-schema tool, the stratified sample, bad input,
and a run against the real engine that resumes without asking again."""

import json
import subprocess
import sys

import jsonschema
import pytest

from workbench import settings
from workbench.errors import ConfigError
from workbench.measurement import bfcl
from workbench.tasks import agent


def entry(entry_id: str) -> bfcl.Entry:
    category = entry_id.rsplit("_", 1)[0]
    return next(e for e in bfcl.load(category) if e.id == entry_id)


def test_the_suite_is_bfcl_v4_as_published():
    assert {c: len(bfcl.load(c)) for c in bfcl.CATEGORIES} == bfcl.CATEGORIES
    checker, language = bfcl.checker()
    assert checker.__module__ == "bfcl_eval.eval_checker.ast_eval.ast_checker" and language.PYTHON.value == "python"
    assert str(bfcl.suite_dir()).startswith(str(settings.cache_dir()))  # downloaded, not part of the workbench


def test_the_checker_scores_a_right_and_a_wrong_call_as_bfcl_does():
    """simple_python_0: the triangle's area for base 10 and height 5; `unit` is optional (BFCL's "")."""
    triangle = entry("simple_python_0")
    assert triangle.answer == ({"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}},)
    assert bfcl.score(triangle, [("calculate_triangle_area", {"base": 10, "height": 5})])["valid"]
    assert bfcl.score(triangle, [("calculate_triangle_area", {"base": 10, "height": 5, "unit": "units"})])["valid"]
    wrong = bfcl.score(triangle, [("calculate_triangle_area", {"base": 11, "height": 5})])
    assert (wrong["valid"], wrong["error_type"]) == (False, "value_error:others")
    assert "Invalid value for parameter 'base': 11. Expected one of [10]." in wrong["error"]
    assert (
        bfcl.score(triangle, [("calculate_area", {"base": 10, "height": 5})])["error_type"]
        == "simple_function_checker:wrong_func_name"
    )
    assert (
        bfcl.score(triangle, [("calculate_triangle_area", {"base": 10})])["error_type"]
        == "simple_function_checker:missing_required"
    )
    assert (
        bfcl.score(triangle, [("calculate_triangle_area", {"base": "10", "height": 5})])["error_type"]
        == "type_error:simple"
    )
    assert bfcl.score(triangle, "The area is 25.")["error_type"] == "no_call"


def test_dotted_names_are_called_with_underscores_as_openai_style_apis_need():
    factorial = entry("simple_python_1")
    assert factorial.functions[0]["name"] == "math.factorial"
    assert bfcl.score(factorial, [("math_factorial", {"number": 5})])["valid"]
    assert not bfcl.score(factorial, [("math.factorial", {"number": 5})])["valid"]


def test_parallel_calls_match_in_any_order_and_irrelevance_wants_no_call():
    parallel = entry("parallel_0")
    calls = [
        (bfcl.tool_name(name), {k: v[0] for k, v in args.items() if v[0] != ""})
        for answer in parallel.answer
        for name, args in answer.items()
    ]
    assert len(calls) > 1
    assert bfcl.score(parallel, calls)["valid"] and bfcl.score(parallel, calls[::-1])["valid"]
    assert bfcl.score(parallel, calls[:1])["error_type"] == "parallel_function_checker_no_order:wrong_count"
    irrelevant = entry("irrelevance_0")
    assert bfcl.score(irrelevant, "I cannot do that with these tools.")["valid"]
    assert bfcl.score(irrelevant, agent.Unusable("<tool_call>{", "cut off"))["valid"]  # no call came back
    assert not bfcl.score(irrelevant, [("anything", {})])["valid"]


def test_every_function_doc_becomes_a_valid_json_schema_tool(tmp_path):
    types = set()
    for category in bfcl.CATEGORIES:
        for e in bfcl.load(category):
            policy = bfcl.policy_for(e, tmp_path / "audit.jsonl")  # registered: the registry checks the schema too
            for tool in policy.registry.tools:
                jsonschema.Draft202012Validator.check_schema(tool.parameters)
            types |= {p.get("type") for f in e.functions for p in f["parameters"].get("properties", {}).values()}
    assert {"dict", "integer", "float", "tuple", "any", "array", "boolean", "string"} <= types
    assert bfcl.schema({"type": "float"})["type"] == "number" and bfcl.schema({"type": "any"})["type"] == "string"
    assert bfcl.schema({"type": "tuple", "items": {"type": "float"}}) == {"type": "array", "items": {"type": "number"}}


def test_the_sample_is_stratified_and_the_same_for_the_same_seed():
    first = bfcl.sample(per_category=3, seed=1)
    assert [e.id for e in first] == [e.id for e in bfcl.sample(per_category=3, seed=1)]
    assert {c: sum(e.category == c for e in first) for c in bfcl.CATEGORIES} == {c: 3 for c in bfcl.CATEGORIES}
    assert [e.id for e in first] != [e.id for e in bfcl.sample(per_category=3, seed=2)]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: bfcl.sample(["simple_java"]), ["'simple_java' is unknown", "simple_python, multiple", "Fix:"]),
        (lambda: bfcl.sample(per_category=0), ["per_category 0 draws nothing", "at least 1"]),
    ],
)
def test_bad_input_names_the_value_and_the_options(call, words):
    with pytest.raises(ConfigError) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_the_cli_scores_the_served_model_and_a_rerun_asks_nothing_again(engine, tmp_path):
    argv = [
        sys.executable,
        "-m",
        "workbench.cli",
        "tools-eval",
        "--suite",
        "bfcl",
        "--per-category",
        "1",
        "--designs",
        "constrained",
        "native",
        "--concurrency",
        "16",  # every entry at once: vLLM batches them
        "--url",
        engine.url,
        "--json",
        "--save",
        str(tmp_path),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["rows"]) == 16 and {r["mode"] for r in report["rows"]} == {"constrained", "native"}
    overall = [t for t in report["table"] if t["category"] == "overall"]
    for t in overall:
        assert t["n"] == 8 and t["ci_low"] <= t["accuracy"] <= t["ci_high"]
    assert (tmp_path / "tools-eval-bfcl.csv").read_text().startswith("design,category,n,correct,accuracy")
    scored = {p: p.stat().st_mtime_ns for p in (settings.cache_dir() / "bfcl" / "runs").glob("*/results/*.json")}
    assert len(scored) >= 16  # one result per (design, entry) in the result store
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert json.loads(again.stdout)["rows"] == report["rows"]
    after = {p: p.stat().st_mtime_ns for p in (settings.cache_dir() / "bfcl" / "runs").glob("*/results/*.json")}
    assert after == scored  # every entry came from the store: nothing asked or written again


# What vLLM answers to tool_choice "auto" when it was started without --enable-auto-tool-choice
# (vllm/renderers/online_renderer.py).
VLLM_WITHOUT_TOOL_PARSER = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'


def test_native_against_a_server_without_a_tool_parser_is_refused_before_the_first_request(capsys):
    """The shared engines run with the parser; a fake stands in for one started without it, answering as vLLM does.
    The CLI refuses, naming the flag, after the 1-token probes alone: nothing is scored, no 0 % is printed."""
    from tests.fakes import FakeOpenAIServer, chat_completion
    from workbench import cli

    def respond(body):
        if body.get("tool_choice") == "auto":
            return 400, {"object": "error", "message": VLLM_WITHOUT_TOOL_PARSER, "type": "BadRequestError", "code": 400}
        return 200, chat_completion("hi")

    with FakeOpenAIServer(respond) as server:
        code = cli.main(
            ["tools-eval", "--suite", "bfcl", "--designs", "native", "--per-category", "1", "--url", server.url]
        )
    out, err = capsys.readouterr()
    assert code == 2 and "%" not in out
    assert err.startswith("error: native mode needs vLLM's tool parser") and "--enable-tools" in err
    assert [b["max_tokens"] for b in server.bodies] == [1, 1]  # the probes, and no scored request
