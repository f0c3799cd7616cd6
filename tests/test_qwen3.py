"""The reference case's parsers for real: a tiny random-weight Qwen3 with Qwen3's own vocabulary, served by
vLLM's CPU build with `--enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser qwen3`.

Random weights write nothing useful, so each request forces its text with vLLM's structured outputs (a regex
the decoder must follow); everything after the text — vLLM's hermes and qwen3 parsers, the chat template's
`enable_thinking`, the workbench's client, agent loop, policy and audit — is the real thing."""

import datetime as dt
import json
import re

import pytest

from workbench.measurement import toolseval
from workbench.planner import gpu_plan
from workbench.serving import hardware, models
from workbench.serving.client import Client
from workbench.serving.thinking import REASONING_BUDGETS
from workbench.tasks import agent, demo_tools, tools

TODAY = dt.date(2026, 11, 25)
CALL = {"name": "get_weather", "arguments": {"city": "Hangzhou", "date": "2026-11-26"}}
CALL_TEXT = f"<tool_call>\n{json.dumps(CALL)}\n</tool_call>"
THOUGHT = "<think>\nThe user asks for a number; any will do.\n</think>\n\n42"


# <tool_call> </tool_call> <think> </think>: the regex admits them spelled in ordinary tokens too ("</", "think",
# ">"), which a real Qwen3 never writes and vLLM's streaming parsers do not read (they match these token ids).
# The bias makes the decoder pick Qwen3's own token wherever the regex allows it.
OWN_TOKENS = {"151657": 100, "151658": 100, "151667": 100, "151668": 100}


def forced(regex: str) -> dict:
    """The request parameters that force the reply's text: vLLM's structured outputs, in Qwen3's tokens."""
    return {"extra_body": {"structured_outputs": {"regex": regex}}, "logit_bias": OWN_TOKENS}


@pytest.fixture(scope="module")
def qwen3(qwen3_engine):
    return Client(qwen3_engine.base_url)


def test_the_tokenizer_is_qwens(tmp_path):
    """Ids from Qwen's public tokenizer files: "Hello" 9707, " world" 1879, "你好" 108386, and the added tokens
    at 151643 and up (tokenizer_config.json's added_tokens_decoder)."""
    from transformers import PreTrainedTokenizerFast

    from tests.tiny_models import QWEN3_PLAIN, QWEN3_SPECIAL, save_qwen3_tokenizer

    save_qwen3_tokenizer(tmp_path)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert tokenizer("Hello, world!")["input_ids"] == [9707, 11, 1879, 0]
    assert tokenizer("你好")["input_ids"] == [108386]
    added = QWEN3_SPECIAL + QWEN3_PLAIN
    assert [tokenizer.convert_tokens_to_ids(t) for t in added] == list(range(151643, 151643 + len(added)))
    assert tokenizer.convert_tokens_to_ids(["<|im_start|>", "<tool_call>", "<think>"]) == [151644, 151657, 151667]
    assert tokenizer.decode([151657, 151667]) == "<tool_call><think>"  # kept in text, for vLLM's parsers


def test_served_with_the_flags_the_planner_prints_for_qwen3_14b(qwen3_engine):
    plan = gpu_plan.plan(models.CATALOG["Qwen3-14B"], hardware.find_gpu("RTX 3090"), "gptq-int4")
    wanted = ["--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--reasoning-parser", "qwen3"]
    assert " ".join(wanted) in " ".join(plan.vllm_args)
    assert " ".join(wanted) in " ".join(qwen3_engine.argv)


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_comes_back_as_tool_calls_through_the_hermes_parser(qwen3, tmp_path, stream):
    registry = demo_tools.builtin_registry(tmp_path)
    result = qwen3.chat(
        "Weather in Hangzhou tomorrow?",
        stream=stream,
        temperature=0,
        max_tokens=80,
        tools=[registry.get("get_weather").openai_spec()],
        tool_choice="auto",
        enable_thinking=False,
        **forced(re.escape(CALL_TEXT)),
    )
    assert result.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [(CALL["name"], CALL["arguments"])]
    assert "<tool_call>" not in result.text


@pytest.mark.parametrize("stream", [False, True])
def test_a_think_block_comes_back_as_reasoning_through_the_qwen3_parser(qwen3, stream):
    result = qwen3.chat("Give me a number.", stream=stream, temperature=0, max_tokens=60, **forced(re.escape(THOUGHT)))
    assert result.reasoning.strip() == "The user asks for a number; any will do."
    assert result.text.strip() == "42"
    assert "<think>" not in result.text + result.reasoning


def test_enable_thinking_false_reaches_the_chat_template(qwen3):
    """Qwen3's template closes an empty <think></think> after the generation prompt when thinking is off
    (4 more prompt tokens), and the qwen3 parser then reads the reply as content, not reasoning."""
    thinking = qwen3.chat("A number?", stream=False, temperature=0, max_tokens=5, **forced("42"))
    plain = qwen3.chat("A number?", stream=False, temperature=0, max_tokens=5, enable_thinking=False, **forced("42"))
    assert plain.usage.prompt_tokens == thinking.usage.prompt_tokens + 4
    assert (thinking.reasoning, thinking.text) == ("42", "")
    assert (plain.reasoning, plain.text) == ("", "42")


class SteeredClient(Client):
    """The real Client to the real engine, each request's text forced by structured outputs: a tool call
    while tools are offered, a sentence once they are not. Nothing is answered here; vLLM answers. Thinking is off
    unless a request asks for it (the engine forces the text inside <think> too: `enable_in_reasoning`)."""

    def __init__(self, client: Client, call_regex: str, answer_regex: str):
        super().__init__(client.base_url, thinking=False)
        self.call_regex, self.answer_regex = call_regex, answer_regex

    def chat(self, messages, **params):
        force = forced(self.call_regex if params.get("tools") else self.answer_regex)
        return super().chat(messages, **params, **force)


def policy_for(tmp_path, **limits) -> tools.Policy:
    return tools.Policy(
        demo_tools.builtin_registry(tmp_path / "data"), tools.AuditLog(tmp_path / "audit.jsonl"), tools.Limits(**limits)
    )


def test_the_agent_loop_runs_a_parsed_call_and_audits_it(qwen3, tmp_path):
    policy = policy_for(tmp_path, max_steps_per_turn=1)
    steered = SteeredClient(qwen3, re.escape(CALL_TEXT), "Take an umbrella: rain is forecast\\.")
    turn = agent.run_turn(steered, policy, "Check tomorrow's weather in Hangzhou.", "native", today=TODAY)
    assert turn.usable and turn.answer == "Take an umbrella: rain is forecast."
    [step] = turn.steps
    assert (step.tool, step.status, step.arguments) == ("get_weather", "executed", CALL["arguments"])
    assert "DEMO DATA" in step.result["source"]
    assert [e["event"] for e in policy.audit.events()] == ["proposed", "executed"]
    assert (
        turn.messages[-2]["role"] == "tool" and json.loads(turn.messages[-2]["content"])["result"]["city"] == "Hangzhou"
    )


def test_a_call_cut_off_by_max_tokens_is_an_audited_error_not_an_answer(qwen3, tmp_path):
    policy = policy_for(tmp_path)
    steered = SteeredClient(qwen3, re.escape(CALL_TEXT), "unused")
    turn = agent.run_turn(steered, policy, "Weather in Hangzhou?", "native", today=TODAY, max_tokens=16)
    assert not turn.usable
    assert "vLLM's parser could not read" in turn.answer and "max_tokens=16" in turn.answer
    [step] = turn.steps
    assert step.status == "error" and step.tool == "get_weather"
    assert [e["event"] for e in policy.audit.events()] == ["proposed", "error"]


# -- thinking under control -------------------------------------------------------------------------------------
def test_structured_steps_run_with_thinking_off_unless_asked(qwen3):
    """The same forced reply: a chat (the model's default: Qwen3 thinks) reads it as reasoning, a constrained tool
    step (thinking.THINKING_DEFAULTS: off) as its content, and the step asked to think as reasoning again."""
    ask = dict(stream=False, temperature=0, max_tokens=5, **forced("42"))
    chat = qwen3.chat("A number?", task="chat", **ask)
    step = qwen3.chat("A number?", task="tools-arguments", **ask)
    asked = qwen3.chat("A number?", task="tools-arguments", enable_thinking=True, **ask)
    assert (chat.reasoning, chat.text) == ("42", "")
    assert (step.reasoning, step.text) == ("", "42")
    assert (asked.reasoning, asked.text) == ("42", "")


@pytest.mark.parametrize("stream", [False, True])
def test_the_reasoning_has_its_own_budget_and_running_out_of_it_is_said(qwen3, stream):
    """max_tokens=4 is the answer's: a thinking chat gets the reasoning budget on top and answers "42"; the bare
    request (no task) spends its 4 tokens thinking, and says so rather than showing an empty answer."""
    ask = dict(stream=stream, temperature=0, max_tokens=4, **forced(re.escape(THOUGHT)))
    budgeted = qwen3.chat("Give me a number.", task="chat", **ask)
    assert (budgeted.text.strip(), budgeted.status) == ("42", "answered")
    assert budgeted.usage.reasoning_tokens > 4
    bare = qwen3.chat("Give me a number.", **ask)
    assert (bare.text, bare.status, bare.finish_reason) == ("", "ran out while thinking", "length")
    assert bare.notice().startswith("no answer: the model ran out of tokens while thinking")


def test_a_tool_step_that_runs_out_while_thinking_is_an_audited_error(qwen3, tmp_path, monkeypatch):
    monkeypatch.setitem(REASONING_BUDGETS, "tools-native", 4)
    policy = policy_for(tmp_path)
    steered = SteeredClient(qwen3, "<think>\n[a-z ]{200}", "unused")  # a thought that does not end
    turn = agent.run_turn(steered, policy, "Weather in Hangzhou?", "native", today=TODAY, max_tokens=16, thinking=True)
    assert not turn.usable and "ran out of tokens while thinking" in turn.answer
    assert [e["event"] for e in policy.audit.events()] == ["proposed", "error"]


class RecordingClient(SteeredClient):
    """SteeredClient that keeps the thinking switch and the budget of every request it sends."""

    def __init__(self, *args):
        super().__init__(*args)
        self.sent = []

    def _chat_kwargs(self, *args, **kwargs):
        out = super()._chat_kwargs(*args, **kwargs)
        self.sent.append((out["extra_body"]["chat_template_kwargs"]["enable_thinking"], out["max_tokens"]))
        return out


def test_tools_eval_scores_thinking_on_against_off(qwen3, tmp_path, monkeypatch):
    """One case, native, with thinking on and then off, each scored under its own name; the thinking one reasons
    first ("<think>…</think>", forced), within its own budget on top of the answer's 400 tokens."""
    monkeypatch.setitem(REASONING_BUDGETS, "tools-native", 64)
    thought_then_call = re.escape("<think>\nThe weather tool.\n</think>\n\n" + CALL_TEXT)
    steered = RecordingClient(qwen3, thought_then_call, "unused")
    report = toolseval.compare(
        steered,
        lambda name: policy_for(tmp_path / name),
        [("native", False)],
        cases=toolseval.CASES[:1],
        thinking=toolseval.THINKING["both"],
    )
    assert {name: r["overall"]["exact"] for name, r in report.items()} == {
        "native+thinking": 1.0,
        "native+no-thinking": 1.0,
    }
    assert steered.sent == [(True, 464), (False, 400)]
