"""agent.py runs one turn of tool use: model → proposed calls → policy → results back → answer.

Three modes. **native**: the OpenAI `tools` API parsed by vLLM's hermes tool parser (Qwen3's template).
**constrained**: schema-guided decoding over the union of the tools' call schemas, every argument
bounded (tools.bounded_schema), so even a small model returns a well-formed call (or an answer).
**two-stage**: two schema-guided requests: first the next step alone (a tool's name or "answer", from an
enum), then only that tool's arguments (or the answer). `few_shot` adds worked examples to the system
prompt in any mode. Dates: the system prompt states today and tomorrow, so "tomorrow" resolves without a call.
Every proposed call goes through tools.Policy; validation errors go back to the model as tool results
so that it can repair the call. A reply that cannot be used (a call cut off at max_tokens, text that
is not JSON, a tool call the parser did not read) is audited as an error step and ends the turn with a
plain sentence: it is never shown as the answer.

Thinking (Qwen3): each step names its task to the client, which decides: `thinking` when given, else the task's
default (thinking.THINKING_DEFAULTS): native steps leave it to the model, the constrained call and the two-stage
choice run with it off. A thinking step gets its reasoning budget on top of its answer's; one that runs out
while thinking ends the turn as unusable, saying so. Native mode needs the server's tool parser, and is refused
before its first request where the server has none.
"""

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.errors import ConfigError
from workbench.tasks.tools import Policy, Step, bounded_schema

MODES = ("native", "constrained", "two-stage")
# what measured best on the bundled model (docs/function-calling.md)
DEFAULT_MODE, DEFAULT_FEW_SHOT = "constrained", False


@dataclass
class Turn:
    answer: str
    steps: list[Step] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    mode: str = "constrained"
    usable: bool = True  # False: the turn ended without an answer, and `answer` says why

    def as_dict(self) -> dict:
        return {
            "answer": self.answer,
            "usable": self.usable,
            "mode": self.mode,
            "steps": [s.as_dict() for s in self.steps],
        }

    def to_markdown(self) -> str:
        """The steps as a table (tool, arguments, status, reason, result), then the answer."""
        cell = lambda v: json.dumps(v, ensure_ascii=False, default=str).replace("|", "\\|")  # noqa: E731
        rows = ["| # | tool | arguments | status | reason | result |", "|---|---|---|---|---|---|"]
        rows += [
            f"| {n} | {s.tool} | {cell(s.arguments)} | **{s.status}** | {s.reason.replace('|', '/')} | "
            f"{'' if s.result is None else cell(s.result)} |"
            for n, s in enumerate(self.steps, 1)
        ]
        answer = self.answer if self.usable else f"⚠️ no usable answer: {self.answer}"
        return ("\n".join(rows) + "\n\n" if self.steps else "") + f"**Answer** ({self.mode}): {answer}"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


@dataclass(frozen=True)
class Unusable:
    """A model reply that is neither an answer nor a call that can be read."""

    text: str
    reason: str


def few_shot_examples(policy: Policy, today: dt.date) -> list[str]:
    """Worked examples (request, reply in the constrained JSON form), English and Chinese, one with a date
    resolved from today; an example is kept only when every tool it calls is registered."""
    later = (today + dt.timedelta(days=2)).isoformat()
    examples = [
        (
            "What will the weather be in Paris on 2031-05-02?",
            {"tool_calls": [{"tool": "get_weather", "arguments": {"city": "Paris", "date": "2031-05-02"}}]},
        ),
        (
            "上海和北京后天的天气如何？",
            {
                "tool_calls": [
                    {"tool": "get_weather", "arguments": {"city": c, "date": later}} for c in ("Shanghai", "Beijing")
                ]
            },
        ),
        (
            "How much is 12 * (3 + 4)?",
            {"tool_calls": [{"tool": "calculator", "arguments": {"expression": "12 * (3 + 4)"}}]},
        ),
        ("What is the capital of Italy?", {"answer": "Rome."}),
    ]
    return [
        f"User: {request}\nReply: {json.dumps(reply, ensure_ascii=False)}"
        for request, reply in examples
        if all(policy.registry.get(c["tool"]) for c in reply.get("tool_calls", []))
    ]


def system_prompt(policy: Policy, today: dt.date | None = None, few_shot: bool = False) -> str:
    today = today or dt.date.today()
    lines = [
        f"You are a helpful assistant that can call tools. Today is {today.isoformat()} "
        f"(tomorrow is {(today + dt.timedelta(days=1)).isoformat()}). Only these tools exist:"
    ]
    for tool in policy.registry.tools:
        lines.append(f"- {tool.name}: {tool.description} Arguments: {json.dumps(tool.parameters['properties'])}")
    examples = few_shot_examples(policy, today) if few_shot else []
    if examples:
        lines += ["Call a tool only when the request needs one; otherwise answer in words. Examples:", *examples]
    return "\n".join(lines)


def call_schema(policy: Policy, allow_calls: bool = True, tool_choice: str = "auto") -> dict:
    """Either {"tool_calls": [{"tool": name, "arguments": {...}}, ...]} or {"answer": "..."}.
    tool_choice "required" leaves out the answer; a tool's name also leaves out the other tools."""
    answer = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 600}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    if not allow_calls:
        return answer
    offered = [t for t in policy.registry.tools if tool_choice in ("auto", "required", t.name)]
    calls = [
        {
            "type": "object",
            "properties": {"tool": {"enum": [t.name]}, "arguments": bounded_schema(t.parameters, policy.limits)},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for t in offered
    ]
    call_list = {
        "type": "object",
        "properties": {
            "tool_calls": {
                "type": "array",
                "items": {"anyOf": calls},
                "minItems": 1,
                "maxItems": min(3, policy.limits.max_calls_per_turn),
            }
        },
        "required": ["tool_calls"],
        "additionalProperties": False,
    }
    return call_list if tool_choice != "auto" else {"anyOf": [call_list, answer]}


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is not one of {', '.join(MODES)}. Fix: pick one of them.")


def check_tool_choice(policy: Policy, tool_choice: str) -> None:
    """'auto' (the model decides), 'required' (it must call a tool first) or the name of a registered tool."""
    valid = ["auto", "required", *policy.registry.names()]
    if tool_choice not in valid:
        raise ConfigError(
            f"tool_choice {tool_choice!r} is not one of {', '.join(valid)}. Fix: use 'auto', "
            "'required' or a registered tool's name."
        )


def check_server(client, mode: str, thinking: bool | None = None) -> None:
    """Refuse before the first request what the server cannot serve: native mode without its tool parser, thinking
    (asked here, or the client's own choice) without a reasoning parser (ConfigError naming the flag)."""
    check_mode(mode)
    if mode == "native":
        client.require(tools=True, what="native mode")
    if thinking or (thinking is None and client.thinking_choice):
        client.require(reasoning=True, what="thinking")


def run_turn(
    client,
    policy: Policy,
    message: str,
    mode: str = "constrained",
    history: list[dict] | None = None,
    on_step: Callable[[Step], None] | None = None,
    today: dt.date | None = None,
    max_tokens: int = 400,
    tool_choice: str = "auto",
    few_shot: bool = False,
    thinking: bool | None = None,
) -> Turn:
    """One turn. `tool_choice` applies to the model's first step ('required' or a tool's name force a call,
    as in the OpenAI API); after the tools' results come back the model may always answer. `thinking` None leaves
    each step its default (thinking.THINKING_DEFAULTS)."""
    check_mode(mode)
    check_tool_choice(policy, tool_choice)
    check_server(client, mode, thinking)
    messages = [
        {"role": "system", "content": system_prompt(policy, today, few_shot)},
        *(history or []),
        {"role": "user", "content": message},
    ]
    turn = Turn("", [], messages, mode)
    for step_number in range(policy.limits.max_steps_per_turn + 1):
        last = (
            step_number == policy.limits.max_steps_per_turn or len(turn.steps) >= policy.limits.max_calls_per_turn
        )  # limits reached: answer now
        choice = tool_choice if step_number == 0 else "auto"
        proposed = STEPS[mode](client, policy, messages, last, max_tokens, choice, thinking)
        if isinstance(proposed, Unusable):
            step = policy.record_unusable(proposed.text, proposed.reason)
            turn.steps.append(step)
            if on_step:
                on_step(step)
            turn.answer, turn.usable = f"No usable answer: {proposed.reason}.", False
            return turn
        if isinstance(proposed, str):
            turn.answer = proposed
            return turn
        results = []
        for call_id, name, arguments in proposed:
            step = policy.run(name, arguments, calls_so_far=len(turn.steps))
            turn.steps.append(step)
            if on_step:
                on_step(step)
            results.append((call_id, step))
        _send_results(messages, mode, results)
    turn.answer = "I could not finish within the step limit."
    return turn


def _ran_out(result, max_tokens: int) -> "Unusable | None":
    """A reply that thought and then wrote neither a call nor an answer: unusable, saying which."""
    if result.tool_calls or result.text.strip() or not result.reasoning.strip():
        return None
    if result.ran_out_thinking:
        return Unusable(
            result.reasoning[-300:],
            f"the model ran out of tokens while thinking (max_tokens="
            f"{max_tokens} for the answer, plus its reasoning budget) and wrote no "
            "call or answer",
        )
    return Unusable(result.reasoning[-300:], "the model thought but wrote no call or answer")


def _native_step(client, policy, messages, last, max_tokens, tool_choice="auto", thinking=None):
    params = {
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": False,
        "task": "tools-native",
        "enable_thinking": thinking,
    }
    if not last:
        choice = (
            tool_choice
            if tool_choice in ("auto", "required")
            else {"type": "function", "function": {"name": tool_choice}}
        )
        params.update(tools=[t.openai_spec() for t in policy.registry.tools], tool_choice=choice)
    result = client.chat(messages, **params)
    if (ran_out := _ran_out(result, max_tokens)) is not None:
        return ran_out
    if not result.tool_calls:
        messages.append({"role": "assistant", "content": result.text})
        if "<tool_call>" in result.text or result.text.lstrip().startswith('{"name"'):
            return Unusable(
                result.text,
                "the model wrote a tool call that vLLM's parser could not read"
                + (f" (cut off at max_tokens={max_tokens})" if result.finish_reason == "length" else ""),
            )
        return result.text
    messages.append(
        {
            "role": "assistant",
            "content": result.text or None,
            "tool_calls": [
                {"id": c.id or f"call_{i}", "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for i, c in enumerate(result.tool_calls)
            ],
        }
    )
    return [(c.id or f"call_{i}", c.name, c.arguments) for i, c in enumerate(result.tool_calls)]


def _constrained_step(client, policy, messages, last, max_tokens, tool_choice="auto", thinking=None):
    schema = call_schema(policy, allow_calls=not last, tool_choice=tool_choice)
    result = client.chat(
        messages,
        temperature=0,
        max_tokens=max_tokens,
        stream=False,
        task="tools-arguments",
        enable_thinking=thinking,
        response_format={"type": "json_schema", "json_schema": {"name": "turn", "schema": schema}},
    )
    if (ran_out := _ran_out(result, max_tokens)) is not None:
        return ran_out
    messages.append({"role": "assistant", "content": result.text})
    try:
        data = json.loads(result.text)
    except json.JSONDecodeError as exc:
        if result.finish_reason == "length":
            return Unusable(
                result.text,
                f"the model's reply was cut off at max_tokens={max_tokens} before it was a complete call or answer",
            )
        return Unusable(result.text, f"the model's reply is not valid JSON ({exc.msg})")
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list):
        calls = [c for c in data["tool_calls"] if isinstance(c, dict)]
        unique = [c for i, c in enumerate(calls) if c not in calls[:i]]  # a call written twice runs once
        return [(f"call_{i}", c.get("tool"), c.get("arguments")) for i, c in enumerate(unique)]
    return str(data.get("answer", "")) if isinstance(data, dict) else str(data)


CHOICE_TOKENS = 20  # two-stage's first answer: {"next": "<a tool's name>"}


def next_step_schema(options: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {"next": {"enum": options}},
        "required": ["next"],
        "additionalProperties": False,
    }


def _two_stage_step(client, policy, messages, last, max_tokens, tool_choice="auto", thinking=None):
    """Stage 1 picks the next step from an enum of the offered tools' names (and "answer" when the model may
    answer); stage 2 decodes only that tool's call (or the answer) with the plain constrained schema."""
    offered = [t for t in policy.registry.tools if tool_choice in ("auto", "required", t.name)]
    options = ([] if last else [t.name for t in offered]) + (["answer"] if last or tool_choice == "auto" else [])
    if len(options) > 1:
        menu = "\n".join(
            [f"- {t.name}: {t.description}" for t in offered]
            + ["- answer: reply in words, without a tool (for anything the tools do not do)"]
        )
        ask = {
            "role": "user",
            "content": f'Choose the next step for the request above:\n{menu}\nReply as JSON with the step in "next".',
        }
        schema = {"name": "next", "schema": next_step_schema(options)}
        result = client.chat(
            [*messages, ask],
            temperature=0,
            max_tokens=CHOICE_TOKENS,
            stream=False,
            task="tools-choice",
            enable_thinking=thinking,
            response_format={"type": "json_schema", "json_schema": schema},
        )
        if (ran_out := _ran_out(result, CHOICE_TOKENS)) is not None:
            return ran_out
        try:
            choice = json.loads(result.text)["next"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return Unusable(result.text, "the model's choice of the next step is not valid JSON")
    else:
        choice = options[0]
    if choice == "answer":
        return _constrained_step(client, policy, messages, True, max_tokens, thinking=thinking)
    return _constrained_step(client, policy, messages, False, max_tokens, choice, thinking)


STEPS = {"native": _native_step, "constrained": _constrained_step, "two-stage": _two_stage_step}


def _send_results(messages, mode, results) -> None:
    def content(step: Step) -> str:
        if step.status == "executed":
            return json.dumps({"result": step.result}, ensure_ascii=False, default=str)
        return json.dumps({"error": f"{step.status}: {step.reason}"}, ensure_ascii=False)

    if mode == "native":
        for call_id, step in results:
            messages.append({"role": "tool", "tool_call_id": call_id, "content": content(step)})
    else:
        lines = [f"{step.tool}: {content(step)}" for _, step in results]
        messages.append(
            {
                "role": "user",
                "content": "Tool results:\n"
                + "\n".join(lines)
                + "\nNow answer the original question, or call a tool to fix an error.",
            }
        )


def propose(
    client,
    policy: Policy,
    message: str,
    mode: str = "constrained",
    today: dt.date | None = None,
    max_tokens: int = 400,
    few_shot: bool = False,
    history: list[dict] | None = None,
    thinking: bool | None = None,
) -> "list[tuple[str, object]] | str | Unusable":
    """The model's first response only: the calls it proposes (name, arguments), its answer, or an
    Unusable reply. Nothing is executed; used for scoring. `history` goes between the system prompt and the
    message (a suite's own system or earlier turns)."""
    check_mode(mode)
    messages = [
        {"role": "system", "content": system_prompt(policy, today, few_shot)},
        *(history or []),
        {"role": "user", "content": message},
    ]
    out = STEPS[mode](client, policy, messages, False, max_tokens, "auto", thinking)
    if isinstance(out, Unusable):
        return out
    if isinstance(out, str):
        return out
    parsed = []
    for _, name, arguments in out:
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                pass
        parsed.append((name, arguments))
    return parsed
