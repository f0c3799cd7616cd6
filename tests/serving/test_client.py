"""The client against the real engine: answers, streaming timings, token counts, logprobs."""

import pytest

from tests.fakes import FakeKeepAliveServer, FakeOpenAIServer, chat_completion
from workbench import cli
from workbench.errors import ConfigError, EngineUnavailableError, ModelNotServedError, RequestRejectedError
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT, KEEPALIVE_EXPIRY_S, Client, ServerParsers, http_client
from workbench.serving.engine import free_port
from workbench.serving.thinking import THINKING_DEFAULTS


@pytest.fixture
def recording_server():
    """Records each request body and answers with `status` (200: a chat completion)."""

    def respond(body):
        status = server.status
        return status, chat_completion("yes") if status == 200 else {
            "error": {"message": f"answered {status}", "code": status}
        }

    with FakeOpenAIServer(respond) as server:
        server.status = 200
        yield server


def test_chat_answers_the_capital_of_france(client):
    result = client.chat("What is the capital of France?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=32)
    assert "Paris" in result.text
    assert result.ttft_s is not None and 0 < result.ttft_s < result.total_s
    assert result.usage.prompt_tokens > 10 and result.usage.completion_tokens > 0
    assert result.finish_reason == "stop"


def test_streaming_gives_pieces_then_one_result(client):
    events = list(client.chat_stream("Name three colours.", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=24))
    pieces = [e.text for e in events if e.kind == "content"]
    assert len(pieces) > 3 and events[-1].kind == "done"
    result = events[-1].result
    assert "".join(pieces) == result.text
    assert len(result.itl_s) >= len(pieces) - 1 and all(gap >= 0 for gap in result.itl_s)
    assert result.tokens_per_s and result.tokens_per_s > 1


def test_non_streaming_matches_streaming_at_temperature_zero(client):
    a = client.chat("What is 2 + 2?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=16)
    b = client.chat("What is 2 + 2?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=16, stream=False)
    assert a.text == b.text and b.ttft_s is None


def test_token_count_uses_the_servers_tokenizer(client):
    assert client.count_tokens("hello world") == 2
    as_chat = client.count_tokens([{"role": "user", "content": "hello world"}])
    assert as_chat > 2  # the chat template adds the default system prompt and role markers


def test_completion_and_prompt_logprobs(client):
    result = client.complete("The capital of France is", max_tokens=4, temperature=0)
    assert result.text and result.usage.completion_tokens == 4
    logprobs = client.prompt_logprobs("The capital of France is Paris.")
    assert logprobs[0] is None and len(logprobs) == 7
    assert all(lp < 0 for lp in logprobs[1:])
    assert logprobs[-2] > -1.0  # "Paris" after "The capital of France is" is likely


def test_enable_thinking_reaches_the_server_in_the_chat_template_kwargs(recording_server):
    client = Client(recording_server.url, model="fake")
    client.chat("Say yes.", enable_thinking=False, max_tokens=4, stream=False)
    client.chat("Say yes.", max_tokens=4, stream=False)
    with_flag, without = recording_server.bodies
    assert with_flag["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in without


def test_the_real_engine_accepts_the_thinking_switch(client):
    # The bundled template ignores enable_thinking; vLLM must still accept the request.
    result = client.chat("Say yes.", enable_thinking=False, temperature=0, max_tokens=4)
    assert result.usage.completion_tokens > 0


def test_an_unknown_model_name_lists_the_served_ones(engine):
    with pytest.raises(
        ModelNotServedError, match="'no-such-model' is not served.*Served: smollm2-135m-instruct"
    ) as info:
        Client(engine.base_url, model="no-such-model").chat("hi", max_tokens=2)
    assert info.value.status == 404 and info.value.served == ["smollm2-135m-instruct"]


def test_a_request_the_engine_refuses_keeps_its_status_and_words(client):
    with pytest.raises(RequestRejectedError, match=r"HTTP 400.*max_tokens=999999") as info:
        client.chat("hi", max_tokens=999_999)
    assert info.value.status == 400 and not info.value.retryable
    with pytest.raises(RequestRejectedError, match="temperature") as info:
        client.chat("hi", temperature=-3, max_tokens=2)
    assert info.value.status == 400


def test_an_unknown_model_at_tokenize_is_the_same_error(engine):
    with pytest.raises(ModelNotServedError, match="Served: smollm2-135m-instruct"):
        Client(engine.base_url, model="typo").count_tokens("hello")


@pytest.mark.parametrize("status, retryable", [(429, True), (500, True), (503, True), (401, False), (422, False)])
def test_http_errors_keep_their_status(recording_server, status, retryable):
    recording_server.status = status
    with pytest.raises(RequestRejectedError, match=rf"HTTP {status}\): answered {status}") as info:
        Client(recording_server.url, model="fake").chat("hi", max_tokens=2)
    assert info.value.status == status and info.value.retryable is retryable


def test_a_dead_port_is_engine_unavailable():
    with pytest.raises(EngineUnavailableError, match="is not answering.*workbench serve"):
        Client(f"http://127.0.0.1:{free_port()}").models()


@pytest.mark.parametrize("sdk", ["sync", "async"])
def test_a_connection_the_server_is_closing_is_never_reused(sdk):
    """vLLM closes a connection idle for 5 s; httpx keeps one for 5 s, and counts from later (after it has read the
    answer; later still under load), so a request can cross the server's close. The fake closes at 2.5 s of its own
    idle time; a client that waits 3 s must open a fresh connection rather than lose its request (CI saw this as
    'the engine is not answering' with 20 threads sharing one Client)."""
    import asyncio
    import time

    import openai

    with FakeKeepAliveServer(keep_alive_s=KEEPALIVE_EXPIRY_S + 0.5) as server:
        if sdk == "sync":
            client = Client(server.url, model="fake")
            answers = [client.chat("hi", max_tokens=1, stream=False).text]
            time.sleep(KEEPALIVE_EXPIRY_S + 1)
            answers.append(client.chat("hi", max_tokens=1, stream=False).text)
        else:  # measurement/bench.py's client

            async def two():
                sdk = openai.AsyncOpenAI(
                    base_url=server.url + "/v1",
                    api_key="EMPTY",
                    max_retries=0,
                    http_client=http_client(openai.DefaultAsyncHttpxClient, 10),
                )
                first = await sdk.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
                await asyncio.sleep(KEEPALIVE_EXPIRY_S + 1)
                second = await sdk.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi"}])
                return [first.choices[0].message.content, second.choices[0].message.content]

            answers = asyncio.run(two())
    assert answers == ["yes", "yes"]
    assert server.connections == 2


def test_a_url_without_a_scheme_is_refused_before_any_request():
    with pytest.raises(ConfigError, match="'localhost:8000' is not an http"):
        Client("localhost:8000")


def test_the_only_model_is_the_default(engine):
    assert Client(engine.base_url).model == "smollm2-135m-instruct"


def test_several_models_need_a_name():
    client = Client("http://127.0.0.1:9/v1")
    client.models = lambda: ["a", "b"]
    with pytest.raises(ConfigError, match=r"\['a', 'b'\]"):
        client.model


# -- thinking ---------------------------------------------------------------------------------------------------
def test_the_client_reads_what_each_server_parses(client, qwen3_engine):
    """The bundled engine runs with the hermes tool parser and no reasoning parser; the tiny Qwen3 with both."""
    assert Client(client.base_url).server_parsers() == ServerParsers(tools=True, reasoning=False)
    assert Client(qwen3_engine.base_url).server_parsers() == ServerParsers(tools=True, reasoning=True)


def test_structured_steps_default_to_thinking_off_without_asking_the_server():
    for task in ("tools-arguments", "tools-choice", "docqa-quote", "docqa-values"):
        assert THINKING_DEFAULTS[task] is False
        assert Client(f"http://127.0.0.1:{free_port()}").thinking(task) is False  # nothing listens: no probe was sent


def test_thinking_asked_of_a_server_without_a_reasoning_parser_is_refused_before_the_request(client, capsys):
    with pytest.raises(ConfigError, match=r"no reasoning parser .*--enable-reasoning.*--no-thinking"):
        Client(client.base_url).chat("Say yes.", task="chat", enable_thinking=True, max_tokens=4)
    assert cli.main(["chat", "Say yes.", "--thinking", "--url", client.base_url]) == 2
    assert capsys.readouterr().err.startswith("error: thinking was asked of the server")


def test_an_unclosed_think_block_is_reasoning_never_the_answer(client):
    """Without a reasoning parser a thinking model's <think> stays in the text; cut off inside it (forced here
    with structured outputs), the reply is one that ran out while thinking, not an answer."""
    result = client.chat(
        "Think.",
        stream=False,
        temperature=0,
        max_tokens=12,
        extra_body={"structured_outputs": {"regex": "<think>\\n[a-z ]{80}"}},
    )
    assert (result.text, result.status) == ("", "ran out while thinking")
    assert result.reasoning and "<think>" not in result.reasoning
    assert "ran out of tokens while thinking" in result.notice()
