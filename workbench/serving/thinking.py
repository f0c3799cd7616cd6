"""thinking.py holds Qwen3's thinking rules (the <think> block, switched per request by the chat template's
`enable_thinking`): whether each task thinks unless told (THINKING_DEFAULTS), the switch the faces offer, the budget a
thinking request gets on top of its answer's, and how a <think> block left in the text is split from the answer.
Client.thinking applies them to a server (whether it has a reasoning parser); this module asks no server.
"""

# Whether a task thinks unless the request (or the Client) says otherwise. None: the model's own default, which for
# a server with a reasoning parser is to think (Qwen3's template thinks unless told not to) and elsewhere changes
# nothing. Structured steps run with thinking off: with a reasoning parser vLLM applies structured outputs only after
# </think>, so a constrained step would spend its budget thinking before its first constrained token.
THINKING_DEFAULTS = {
    "chat": None,  # the Engine tab's chat, `workbench chat`
    "tools-native": None,  # a native tool step: vLLM's tool parser reads the call after </think>
    "tools-arguments": False,  # constrained (and two-stage's second request): the call's JSON under a schema
    "tools-choice": False,  # two-stage's first request: the next step, from an enum
    "docqa-answer": None,  # a free question about a document
    "docqa-quote": False,  # the sentence a field comes from, from a schema
    "docqa-values": False,  # a field's value, one line
}
# The per-request switch as faces offer it (a UI radio, a compare option): default leaves the task's default.
THINKING_SWITCH = {"default": None, "on": True, "off": False}
# What a thinking request may spend thinking, on top of its answer's own budget (the answer keeps all of its own):
# 1,024 tokens for an answer in words; a tool step thinks about one choice (which tool, which arguments), 256.
REASONING_BUDGET_TOKENS = 1024
REASONING_BUDGETS = {"tools-native": 256, "tools-arguments": 256, "tools-choice": 256}
THINKING_FIX = "raise the budget, or turn thinking off (--no-thinking, or untick Thinking)"


def budget(answer_tokens: int, thinking: bool | None, task: str | None = None) -> int:
    """max_tokens for a request: the answer's budget, plus the task's reasoning budget (REASONING_BUDGETS, else
    REASONING_BUDGET_TOKENS) when it thinks."""
    return answer_tokens + (REASONING_BUDGETS.get(task, REASONING_BUDGET_TOKENS) if thinking else 0)


def check_task(task: str) -> None:
    if task not in THINKING_DEFAULTS:
        raise ValueError(f"unknown thinking task {task!r}; known: {', '.join(THINKING_DEFAULTS)}")


def split_think(text: str, reasoning: str) -> tuple[str, str]:
    """(answer, reasoning). A server without a reasoning parser leaves Qwen3's <think> block in the text: it is
    moved out here, and an unclosed one (the budget ended while thinking) is all reasoning, never the answer."""
    if reasoning or not text.lstrip().startswith("<think>"):
        return text, reasoning
    inner = text.lstrip()[len("<think>") :]
    thought, closed, answer = inner.partition("</think>")
    return (answer.lstrip() if closed else ""), thought.strip()
