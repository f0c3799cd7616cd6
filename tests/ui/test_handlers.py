"""The UI's one error path: a WorkbenchError from the core reaches the person as gr.Error, from plain and
streaming (generator) handlers alike; anything else is left alone."""

import gradio as gr
import pytest

from workbench.errors import ConfigError
from workbench.ui.handlers import shows_errors


def test_a_plain_handler_shows_the_message():
    @shows_errors
    def plan(gpu):
        raise ConfigError(f"GPU {gpu!r} is not in the catalog. Fix: use RTX 3090.")

    with pytest.raises(gr.Error, match="'GTX 9999' is not in the catalog. Fix: use RTX 3090."):
        plan("GTX 9999")


def test_a_streaming_handler_keeps_what_it_streamed_and_then_shows_the_message():
    @shows_errors
    def chat(message):
        yield "The capital"
        yield "The capital of France"
        raise ConfigError("the engine stopped. Fix: press Start.")

    pieces = []
    with pytest.raises(gr.Error, match="the engine stopped. Fix: press Start."):
        for piece in chat("hi"):
            pieces.append(piece)
    assert pieces == ["The capital", "The capital of France"]


def test_the_wrapped_handler_keeps_its_signature_for_gradio():
    import inspect

    @shows_errors
    def handler(message, history, system_prompt="x"):
        yield message

    assert list(inspect.signature(handler).parameters) == ["message", "history", "system_prompt"]
    assert inspect.isgeneratorfunction(handler)


def test_a_bug_is_not_dressed_up_as_a_user_error():
    @shows_errors
    def broken():
        return {}["missing"]

    with pytest.raises(KeyError):
        broken()


def test_a_long_running_app_forgets_old_finished_jobs():
    from workbench.ui.jobs import Job, JobRegistry

    registry = JobRegistry(keep=3, forget_after_s=0.0)
    old = [registry.add(Job("a").run(lambda: 1)) for _ in range(3)]
    for job in old:
        job.wait(5)
    running = registry.add(Job("b").run(lambda: __import__("time").sleep(0.5)))
    assert list(registry.jobs) == [running.id]  # the finished ones went, the new one stays
    registry.add(Job("c"))  # not started: never finished, so kept
    assert running.id in registry.jobs
