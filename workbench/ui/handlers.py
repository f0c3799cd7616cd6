"""The UI's one error path: a WorkbenchError raised by the core becomes a gr.Error, which Gradio
shows as a toast with the message (the value, the valid options, the fix) and no traceback.

Every tab handler is wrapped by `@shows_errors`, generator handlers (streaming) included."""

import functools
import inspect

import gradio as gr

from workbench.errors import WorkbenchError


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
