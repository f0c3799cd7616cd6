"""How much of the context can I trust? Facts planted in the user's own documents at chosen depths and lengths,
asked for through document QA, scored (found only with a verified quote and the right value), and set beside the
planner's memory answer: planting.py, scoring.py, grid.py. `run(ContextRequest(...), url)` is the one call."""

from workbench.context.grid import (
    ContextReport,
    ContextRequest,
    check,
    parse_depths,
    parse_lengths,
    parse_thinking,
    run,
)

__all__ = ["ContextReport", "ContextRequest", "check", "parse_depths", "parse_lengths", "parse_thinking", "run"]
