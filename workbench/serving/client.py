"""client.py talks to an OpenAI-compatible server through the official openai SDK and times it.

It returns small result objects (reply.py: text, reasoning, tool calls, usage, time to first token, inter-token
latencies, tokens/s). It applies Qwen3's thinking rules (thinking.py) to a server: each task's default, the budget a
thinking request gets on top of its answer's, and what the server can do (its tool and reasoning parsers, probed
once).

Every failure leaves it as a WorkbenchError (client_errors.py): `EngineUnavailableError` when the server cannot be
reached, `RequestRejectedError` (with the HTTP status) when it answers with an error, `ModelNotServedError` (with the
served names) for an unknown model. Interactive callers let them reach the edge; batch callers record them as data.
Knows nothing about processes.
"""

import copy
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from workbench.errors import ConfigError, EngineUnavailableError, ModelNotServedError, RequestRejectedError
from workbench.serving.client_errors import TranslateErrors, http_text
from workbench.serving.reply import Clock, Result, StreamEvent, ToolCall, Usage, usage_of
from workbench.serving.thinking import THINKING_DEFAULTS, budget, check_task, split_think

DEFAULT_TIMEOUT_S = 120.0
# vLLM's server closes a connection idle for VLLM_HTTP_TIMEOUT_KEEP_ALIVE seconds (5 by default, vllm/envs.py), and
# httpx keeps an idle connection for 5 s too. A request sent on a pooled connection near that mark can cross the
# server's close and fail with "Server disconnected without sending a response" (seen with 20 threads sharing a
# Client in CI). Idle connections are dropped here well before the server drops them.
KEEPALIVE_EXPIRY_S = 2.0
# The bundled 135M model is a coin flip at temperature 0 without a system prompt ("What is the
# capital of France?" starts with "The" or "L'" at equal log-probability, -1.91 each, on vLLM's
# CPU build). A short system prompt makes it decisive; the CLI and UI use this one unless told.
DEFAULT_SYSTEM_PROMPT = "You are a concise, factual assistant."


def http_client(sdk_class, timeout_s: float):
    """The openai SDK's own HTTP client (`openai.DefaultHttpxClient` or `DefaultAsyncHttpxClient`), with the SDK's
    connection limits except that idle connections are dropped after KEEPALIVE_EXPIRY_S. The Limits class is the
    SDK's own (httpx's for openai 1.x and 2.x, httpx2's for 3.x)."""
    import openai

    sdk = openai.DEFAULT_CONNECTION_LIMITS
    limits = type(sdk)(
        max_connections=sdk.max_connections,
        max_keepalive_connections=sdk.max_keepalive_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return sdk_class(timeout=timeout_s, limits=limits)


@dataclass(frozen=True)
class ServerParsers:
    """What the server can parse: tool calls (--enable-auto-tool-choice --tool-call-parser) and reasoning
    (--reasoning-parser)."""

    tools: bool
    reasoning: bool

    @classmethod
    def from_argv(cls, argv: list[str]) -> "ServerParsers":
        """What an engine started here parses, from its command line (no probe needed)."""
        return cls(tools="--enable-auto-tool-choice" in argv, reasoning="--reasoning-parser" in argv)


def _messages(prompt_or_messages, system: str | None = None) -> list[dict]:
    if isinstance(prompt_or_messages, str):
        messages = [{"role": "user", "content": prompt_or_messages}]
    else:
        messages = list(prompt_or_messages)
    if system and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": system})
    return messages


class Client:
    """A thin, timed layer over `openai.OpenAI` for one server.

    client = Client("http://127.0.0.1:8000/v1")
    print(client.chat("What is the capital of France?").text)
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str = "EMPTY",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = 0,
        thinking: bool | None = None,
        parsers: ServerParsers | None = None,
    ):
        """`thinking` is this client's choice for every task that does not say (None: each task's default);
        `parsers` what the server can parse, when the caller knows (an engine started here), else probed once."""
        import httpx  # noqa: F401 - the SDK imports it lazily; threads that first use a Client together race
        import openai

        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"engine URL {base_url!r} is not an http(s) URL. "
                "Fix: pass it as http://127.0.0.1:PORT (`workbench serve` prints it)."
            )
        base_url = base_url.rstrip("/")
        if not base_url.endswith("/v1"):
            base_url += "/v1"
        self.base_url = base_url
        self.server_url = base_url.removesuffix("/v1")
        self._openai = openai
        self.sdk = openai.OpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=http_client(openai.DefaultHttpxClient, timeout_s),
        )
        self._model = model
        self.thinking_choice = thinking
        self._parsers = parsers

    # -- discovery -------------------------------------------------------------------------
    def models(self) -> list[str]:
        with self._errors():
            return [m.id for m in self.sdk.models.list().data]

    @property
    def model(self) -> str:
        """The model to ask: the one given, else the server's only one."""
        if self._model is None:
            names = self.models()
            if len(names) != 1:
                raise ConfigError(f"the server serves {names}; name one with model=... / --model.")
            self._model = names[0]
        return self._model

    def tokenize(self, text_or_messages) -> list[int]:
        """Token ids through the server's own tokenizer (/tokenize); messages get the chat template."""
        body = {"model": self.model}
        if isinstance(text_or_messages, str):
            body["prompt"] = text_or_messages
        else:
            body["messages"] = _messages(text_or_messages)
        request = urllib.request.Request(
            f"{self.server_url}/tokenize",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        return json.loads(http_text(self, request, self.sdk.timeout))["tokens"]

    def model_card(self) -> dict:
        """The served model's entry in /v1/models: id, root (the folder it was loaded from),
        max_model_len."""
        with self._errors():
            served = self.sdk.models.list().data
        model = next((m for m in served if m.id == self.model), None)
        if model is None:
            names = [m.id for m in served]
            raise ModelNotServedError(
                f"model {self.model!r} is not served at {self.base_url}. Served: "
                f"{', '.join(names)}. Fix: use one of those names.",
                names,
            )
        extra = model.model_extra or {}
        return {"id": model.id, "root": extra.get("root"), "max_model_len": extra.get("max_model_len")}

    def server_version(self) -> str | None:
        """vLLM's version from its /version route; None for a server without one."""
        try:
            return json.loads(http_text(self, f"{self.server_url}/version", 10)).get("version")
        except (RequestRejectedError, ModelNotServedError, ValueError, AttributeError):
            return None

    def max_model_len(self) -> int:
        """The served model's context limit, from /v1/models."""
        return int(self.model_card()["max_model_len"])

    def served_cache(self) -> dict:
        """The KV cache the server built (vLLM's `cache_config_info` metric) and the served model's
        folder and max_model_len (/v1/models)."""
        metrics = http_text(self, f"{self.server_url}/metrics", 10)
        line = next((row for row in metrics.splitlines() if row.startswith("vllm:cache_config_info")), None)
        if line is None:
            raise EngineUnavailableError(f"{self.server_url}/metrics has no vllm:cache_config_info; is it vLLM?")
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        card = self.model_card()
        return {
            "model": card["id"],
            "root": card["root"],
            "max_model_len": card["max_model_len"],
            "kv_cache_bytes": int(labels["kv_cache_memory_bytes"]),
            "kv_cache_tokens": int(labels["kv_cache_size_tokens"]),
            "block_size": int(labels["block_size"]),
            "cache_dtype": labels.get("cache_dtype", "auto"),
            "max_concurrency": float(labels["kv_cache_max_concurrency"]),
            "gpu_memory_utilization": float(labels.get("gpu_memory_utilization", "nan")),
        }

    def count_tokens(self, text_or_messages) -> int:
        return len(self.tokenize(text_or_messages))

    def with_thinking(self, thinking: bool | None) -> "Client":
        """This client (the same connection and probe), with `thinking` as its choice for every task."""
        other = copy.copy(self)
        other.thinking_choice = thinking
        return other

    def server_parsers(self) -> ServerParsers:
        """Whether the server parses tool calls and reasoning, asked once with 1-token requests: vLLM refuses
        tool_choice "auto" (HTTP 400) without --enable-auto-tool-choice, and counts reasoning tokens in the usage
        (completion_tokens_details) only with a --reasoning-parser (vllm/entrypoints/openai/chat_completion)."""
        if self._parsers is None:
            probe = {
                "model": self.model,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 1,
                "temperature": 0,
            }
            tool = {
                "type": "function",
                "function": {
                    "name": "probe",
                    "description": "probe",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
            tools = True
            try:
                with self._errors():
                    response = self.sdk.chat.completions.create(**probe, tools=[tool], tool_choice="auto")
            except RequestRejectedError as exc:
                if exc.status != 400 or "tool" not in str(exc):
                    raise
                tools = False
                with self._errors():
                    response = self.sdk.chat.completions.create(**probe)
            details = response.usage.completion_tokens_details if response.usage else None
            self._parsers = ServerParsers(tools=tools, reasoning=details is not None)
        return self._parsers

    def thinking(self, task: str, asked: bool | None = None) -> bool | None:
        """Whether a request for `task` thinks: what was asked, else this client's choice, else the task's default
        (THINKING_DEFAULTS). Asked to think, the server must have a reasoning parser (ConfigError naming the flag);
        left to the model, a server with a reasoning parser thinks (True, so the budget counts it), one without is
        left alone (None: no switch sent)."""
        check_task(task)
        wanted = asked if asked is not None else self.thinking_choice
        wanted = wanted if wanted is not None else THINKING_DEFAULTS[task]
        if wanted is False:
            return False
        if wanted:
            self.require(reasoning=True, what="thinking")
            return True
        return True if self.server_parsers().reasoning else None

    def require(self, tools: bool = False, reasoning: bool = False, what: str = "this") -> None:
        """Refuse, before the first request, what the server cannot serve, naming the flag it lacks."""
        parsers = self.server_parsers()
        if tools and not parsers.tools:
            raise ConfigError(
                f"{what} needs vLLM's tool parser, and the server at {self.base_url} runs without it (it refuses "
                "tool_choice 'auto': --enable-auto-tool-choice is not set). Nothing was scored. Fix: serve the model "
                "with --enable-tools (`workbench serve` turns it on for a family with a tool parser: Qwen, Llama 3, "
                "Mistral), or pick a design that needs no parser: constrained or two-stage."
            )
        if reasoning and not parsers.reasoning:
            raise ConfigError(
                f"{what} was asked of the server at {self.base_url}, which has no reasoning parser (no "
                "--reasoning-parser), so the thoughts would come back as the answer. Fix: serve a reasoning model with "
                "--enable-reasoning (`workbench serve` turns it on for Qwen3), or leave thinking off (--no-thinking)."
            )

    # -- generation ------------------------------------------------------------------------
    def chat(
        self,
        prompt_or_messages,
        *,
        system: str | None = None,
        stream: bool = True,
        enable_thinking: bool | None = None,
        task: str | None = None,
        **params,
    ) -> Result:
        """One chat completion. Streams by default so that TTFT and inter-token gaps are real.
        `system` is put first unless the messages already start with a system message. With a `task`
        (THINKING_DEFAULTS), `enable_thinking` None is that task's default, and a request that thinks gets the
        reasoning budget on top of `max_tokens` (see `thinking`); without one, `enable_thinking` goes as it is."""
        if stream:
            result = None
            for event in self.chat_stream(
                prompt_or_messages, system=system, enable_thinking=enable_thinking, task=task, **params
            ):
                result = event.result or result
            return result
        kwargs = self._chat_kwargs(prompt_or_messages, system, enable_thinking, params, task)
        start = time.perf_counter()
        with self._errors():
            response = self.sdk.chat.completions.create(**kwargs)
        total = time.perf_counter() - start
        choice = response.choices[0]
        message = choice.message
        text, reasoning = split_think(
            message.content or "",
            getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None) or "",
        )
        return Result(
            text=text,
            reasoning=reasoning,
            tool_calls=tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()),
            usage=usage_of(response.usage),
            finish_reason=choice.finish_reason,
            total_s=total,
            model=response.model,
        )

    def chat_stream(
        self,
        prompt_or_messages,
        *,
        system: str | None = None,
        enable_thinking: bool | None = None,
        task: str | None = None,
        **params,
    ) -> Iterator[StreamEvent]:
        """Yield content and reasoning pieces as they arrive, then one 'done' event with the Result (`task` as in
        `chat`)."""
        kwargs = self._chat_kwargs(prompt_or_messages, system, enable_thinking, params, task)
        kwargs.update(stream=True, stream_options={"include_usage": True})
        clock = Clock()
        text, reasoning = [], []
        calls: dict[int, dict] = {}
        usage, finish, model = Usage(), None, ""
        with self._errors():
            for chunk in self.sdk.chat.completions.create(**kwargs):
                model = chunk.model or model
                if chunk.usage:
                    usage = usage_of(chunk.usage)
                for choice in chunk.choices:
                    delta = choice.delta
                    finish = choice.finish_reason or finish
                    piece = delta.content or ""
                    thought = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None) or ""
                    for call in delta.tool_calls or ():
                        slot = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                        slot["id"] = call.id or slot["id"]
                        if call.function:
                            slot["name"] += call.function.name or ""
                            slot["arguments"] += call.function.arguments or ""
                    if piece or thought or delta.tool_calls:
                        clock.tick()
                    if thought:
                        reasoning.append(thought)
                        yield StreamEvent("reasoning", thought)
                    if piece:
                        text.append(piece)
                        yield StreamEvent("content", piece)
        text, thought = split_think("".join(text), "".join(reasoning))
        result = Result(
            text=text,
            reasoning=thought,
            tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(calls.items())),
            usage=usage,
            finish_reason=finish,
            ttft_s=clock.ttft_s,
            itl_s=tuple(clock.gaps_s),
            total_s=clock.elapsed_s(),
            model=model,
        )
        yield StreamEvent("done", result=result)

    def complete(self, prompt: str, *, max_tokens: int = 64, **params) -> Result:
        """A plain (non-chat) completion, streamed for timings."""
        clock, text = Clock(), []
        usage, finish, model = Usage(), None, ""
        with self._errors():
            stream = self.sdk.completions.create(
                model=self.model,
                prompt=prompt,
                max_tokens=max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                **params,
            )
            for chunk in stream:
                model = chunk.model or model
                if chunk.usage:
                    usage = usage_of(chunk.usage)
                for choice in chunk.choices:
                    finish = choice.finish_reason or finish
                    if choice.text:
                        clock.tick()
                        text.append(choice.text)
        return Result(
            text="".join(text),
            usage=usage,
            finish_reason=finish,
            ttft_s=clock.ttft_s,
            itl_s=tuple(clock.gaps_s),
            total_s=clock.elapsed_s(),
            model=model,
        )

    def prompt_logprobs(self, text: str) -> list[float | None]:
        """Log-probability of every prompt token (the first has none), for perplexity."""
        with self._errors():
            response = self.sdk.completions.create(
                model=self.model,
                prompt=text,
                max_tokens=1,
                temperature=0,
                extra_body={"prompt_logprobs": 0},
            )
        entries = response.choices[0].model_extra.get("prompt_logprobs") or []
        out: list[float | None] = []
        for entry in entries:
            if not entry:
                out.append(None)
                continue
            out.append(
                max(v["logprob"] for v in entry.values()) if len(entry) == 1 else next(iter(entry.values()))["logprob"]
            )
        return out

    # -- helpers ---------------------------------------------------------------------------
    def _chat_kwargs(self, prompt_or_messages, system, enable_thinking, params, task=None) -> dict:
        params = dict(params)
        if task is not None:
            enable_thinking = self.thinking(task, enable_thinking)
            if params.get("max_tokens") is not None:
                params["max_tokens"] = budget(params["max_tokens"], enable_thinking, task)
        kwargs = {"model": params.pop("model", None) or self.model, "messages": _messages(prompt_or_messages, system)}
        extra_body = dict(params.pop("extra_body", None) or {})
        if enable_thinking is not None:
            template_kwargs = dict(extra_body.get("chat_template_kwargs") or {})
            template_kwargs["enable_thinking"] = enable_thinking
            extra_body["chat_template_kwargs"] = template_kwargs
        if extra_body:
            kwargs["extra_body"] = extra_body
        kwargs.update(params)
        return kwargs

    def _errors(self):
        return TranslateErrors(self)
