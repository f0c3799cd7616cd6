"""The client against the real engine: answers, streaming timings, token counts, logprobs."""

import pytest

from workbench.client import DEFAULT_SYSTEM_PROMPT, Client
from workbench.errors import ConfigError


def test_chat_answers_the_capital_of_france(client):
    result = client.chat("What is the capital of France?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=32)
    assert "Paris" in result.text
    assert result.ttft_s is not None and 0 < result.ttft_s < result.total_s
    assert result.usage.prompt_tokens > 10 and result.usage.completion_tokens > 0
    assert result.finish_reason == "stop"


def test_streaming_gives_pieces_then_one_result(client):
    events = list(client.chat_stream("Name three colours.", system=DEFAULT_SYSTEM_PROMPT, temperature=0,
                                     max_tokens=24))
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


def test_enable_thinking_is_passed_through_the_chat_template(client):
    # The bundled template ignores enable_thinking; the request must still be accepted.
    result = client.chat("Say yes.", enable_thinking=False, temperature=0, max_tokens=4)
    assert result.usage.completion_tokens > 0


def test_an_unknown_model_name_is_a_clear_error(engine):
    import openai

    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        Client(engine.base_url, model="no-such-model").chat("hi", max_tokens=2)


def test_the_only_model_is_the_default(engine):
    assert Client(engine.base_url).model == "smollm2-135m-instruct"


def test_several_models_need_a_name():
    client = Client("http://127.0.0.1:9/v1")
    client.models = lambda: ["a", "b"]
    with pytest.raises(ConfigError, match=r"\['a', 'b'\]"):
        client.model
