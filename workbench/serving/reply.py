"""reply.py holds what one request gives back: a `Result` (text, reasoning, tool calls, usage, finish reason, time
to first token, inter-token gaps, tokens/s), whether it is a plain answer and the line that says why not; the pieces
of a streamed answer (`StreamEvent`); and the `Clock` that times every request the same way (the client's and the
benchmark's). It knows nothing of how a request is sent.
"""

import time
from dataclasses import asdict, dataclass, field

from workbench.serving.thinking import THINKING_FIX


@dataclass(frozen=True)
class ToolCall:
    id: str | None
    name: str
    arguments: str  # raw JSON text as the model wrote it; validate before use


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int | None = None  # of completion_tokens; vLLM counts them only with a reasoning parser


def ttft_text(ttft_s: float | None) -> str:
    """A time to first token as every timing line writes it: "113 ms", or "n/a" when no token came."""
    return f"{ttft_s * 1000:.0f} ms" if ttft_s is not None else "n/a"


def rate_text(tokens_per_s: float | None) -> str:
    """A decode speed as every timing line writes it: "26.9 tok/s", or "n/a tok/s" for fewer than two tokens."""
    return f"{tokens_per_s:.1f} tok/s" if tokens_per_s else "n/a tok/s"


@dataclass(frozen=True)
class Result:
    """One finished request, streamed or not."""

    text: str
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    ttft_s: float | None = None  # request sent → first token (content or reasoning)
    itl_s: tuple[float, ...] = ()  # gaps between streamed chunks after the first
    total_s: float = 0.0
    model: str = ""

    @property
    def ran_out_thinking(self) -> bool:
        """The token budget ended while the model was still thinking: reasoning, but no answer and no call."""
        return (
            self.finish_reason == "length"
            and bool(self.reasoning.strip())
            and not self.text.strip()
            and not self.tool_calls
        )

    @property
    def status(self) -> str:
        """'answered', 'tool calls', 'ran out while thinking', 'cut off' (the answer hit max_tokens) or 'empty'."""
        if self.ran_out_thinking:
            return "ran out while thinking"
        if self.tool_calls:
            return "tool calls"
        if self.finish_reason == "length":
            return "cut off"
        return "answered" if self.text.strip() else "empty"

    def notice(self) -> str | None:
        """One line for a reply that is not a plain answer, so that it is never shown as an empty one."""
        if self.ran_out_thinking:
            return (
                f"no answer: the model ran out of tokens while thinking ({self.usage.completion_tokens} tokens, "
                f"{len(self.reasoning):,} characters of reasoning, no answer yet). Fix: {THINKING_FIX}."
            )
        if self.status == "cut off":
            return f"the answer was cut off at {self.usage.completion_tokens} tokens (max_tokens). Fix: raise it."
        if self.status == "empty":
            return (
                "the model thought but wrote no answer."
                if self.reasoning.strip()
                else "the model returned an empty answer."
            )
        return None

    @property
    def tokens_per_s(self) -> float | None:
        """Decode speed: tokens after the first, over the time after the first."""
        n = self.usage.completion_tokens
        if self.ttft_s is None or n < 2 or self.total_s <= self.ttft_s:
            return None
        return (n - 1) / (self.total_s - self.ttft_s)

    def timing_line(self) -> str:
        """The line every face shows under an answer (the CLI, the Engine tab, the notebooks' chat): TTFT, the
        tokens in and out (the thinking apart), decode speed."""
        thinking = f" (thinking {self.usage.reasoning_tokens})" if self.usage.reasoning_tokens else ""
        return (
            f"TTFT {ttft_text(self.ttft_s)} · prompt {self.usage.prompt_tokens} tokens · "
            f"answer {self.usage.completion_tokens} tokens{thinking} · {rate_text(self.tokens_per_s)}"
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d["tokens_per_s"] = self.tokens_per_s
        return d


@dataclass
class StreamEvent:
    """One piece of a streaming answer, for UIs that show text as it arrives."""

    kind: str  # "content", "reasoning", "done"
    text: str = ""
    result: Result | None = None


class Clock:
    """Time to the first token and the gaps between the ones after it."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.ttft_s: float | None = None
        self.gaps_s: list[float] = []

    def tick(self) -> None:
        now = time.perf_counter()
        if self.ttft_s is None:
            self.ttft_s = now - self.start
        else:
            self.gaps_s.append(now - self.last)
        self.last = now

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.start


def usage_of(usage) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        reasoning_tokens=getattr(details, "reasoning_tokens", None) if details is not None else None,
    )
