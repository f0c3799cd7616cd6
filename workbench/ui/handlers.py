"""What every tab handler shares: the one error path and the reading of form fields.

A WorkbenchError raised by the core becomes a gr.Error, which Gradio shows as a toast with the message
(the value, the valid options, the fix) and no traceback. Every tab handler is wrapped by
`@shows_errors`, generator handlers (streaming) included.

A browser sends what a widget holds: an emptied Number arrives as 0 (or None through the API), so a
field whose 0 means nothing reads as its default through `filled`."""

import functools
import inspect

import gradio as gr

from workbench.errors import WorkbenchError

# The queue's pools (see ui/app.py): chat never waits behind a long run.
CHAT = {"concurrency_limit": 16, "concurrency_id": "chat"}  # vLLM batches the streams
HEAVY = {"concurrency_limit": 2, "concurrency_id": "heavy"}  # A/B runs, document QA: many requests each


def shows_errors(fn):
    """Wrap a Gradio handler so that WorkbenchError reaches the person as gr.Error."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                return (yield from fn(*args, **kwargs))
            except WorkbenchError as exc:
                raise gr.Error(str(exc)) from exc

        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            raise gr.Error(str(exc)) from exc

    return call


def filled(value, default):
    """A form number, or `default` when the field was left empty (None, "" or the browser's 0)."""
    if value is None or value == "" or value == 0:
        return default
    return value
