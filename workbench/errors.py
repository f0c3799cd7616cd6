"""The error tree. Core modules raise these; only the edges (CLI, UI) translate them, each in one place.

Every message names the bad value, the valid options and the fix.
"""

import difflib


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class ConfigError(WorkbenchError, ValueError):
    """A value a person typed (flag, form field, file) is not valid."""


class ModelError(WorkbenchError):
    """A model name or folder cannot be used, or the bundled model cannot be prepared."""


class EngineStartupError(WorkbenchError):
    """The vLLM server did not come up. Carries the last lines of its log."""

    def __init__(self, message: str, log_tail: str = "", log_path: str | None = None):
        self.log_tail = log_tail
        self.log_path = log_path
        text = message
        if log_tail:
            text += f"\n--- last lines of the engine log ({log_path}) ---\n{log_tail}"
        super().__init__(text)


class EngineUnavailableError(WorkbenchError):
    """The server cannot be reached, went away, or did not answer in time. No HTTP status."""


class RequestRejectedError(WorkbenchError):
    """The server answered with an HTTP error: 4xx for a request it refuses, 5xx for its own failure.

    `status` keeps the HTTP status so that callers can decide (A/B runs retry 429 and 5xx only)."""

    def __init__(self, message: str, status: int):
        self.status = status
        super().__init__(message)

    @property
    def retryable(self) -> bool:
        """Overload (429) and server faults (5xx) may pass on a second try; a refusal (4xx) will not."""
        return self.status == 429 or self.status >= 500


class ModelNotServedError(RequestRejectedError, ConfigError):
    """The model named in a request is not one the server serves (HTTP 404)."""

    def __init__(self, message: str, served: list[str]):
        self.served = served
        super().__init__(message, 404)


class DocumentError(WorkbenchError):
    """A file cannot be turned into text (encrypted, corrupt, empty, scanned, too big, unknown type)."""


class DatabaseError(WorkbenchError):
    """A database cannot be reached, refuses the credentials, or refuses a statement. Never carries a password."""


def field_errors(exc, fields_at) -> list[str]:
    """One line per field of a pydantic ValidationError, in people's words: the field's dotted path, what is wrong
    with it and the value given; an unknown field gets the closest valid name (`fields_at(loc)` lists the valid
    fields where it stands)."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = ".".join(str(p) for p in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            valid = fields_at(loc)
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"{path}: unknown field{hint} Valid fields here: {', '.join(valid)}.")
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) or error["type"] == "missing" else f" (got {got!r})"
            lines.append(f"{path}: {error['msg'].removeprefix('Value error, ')}{shown}.")
    return lines
