"""The error tree. Core modules raise these; only the edges (CLI, UI) translate them.

Every message names the bad value, the valid options and the fix.
"""


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class ConfigError(WorkbenchError, ValueError):
    """A value a person typed (flag, form field, file) is not valid."""


class ModelError(WorkbenchError):
    """A model name or folder cannot be used, or the bundled model cannot be prepared."""


class DoesNotFitError(WorkbenchError):
    """A plan does not fit in the memory it was given."""


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
    """The server went away or did not answer in time while we were talking to it."""


class DocumentError(WorkbenchError):
    """A file cannot be turned into text (encrypted, corrupt, empty, scanned, too big, unknown type)."""
