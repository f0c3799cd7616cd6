"""Helpers the tests share (the UI tests have theirs in tests/ui/helpers.py)."""

import datetime as dt

from workbench.tasks import demo_tools, tools

TODAY = dt.date(2026, 11, 25)  # the tool-calling tests' "today", so that "tomorrow" is a known date


def make_policy(tmp_path, confirm=None, extra_tools=None, **limits) -> tools.Policy:
    """The demo tools (and `extra_tools`, JSON-schema entries) under the policy, audited in tmp_path."""
    return demo_tools.policy(
        tmp_path / "data",
        tmp_path / "audit.jsonl",
        list(extra_tools or ()),
        confirm=confirm,
        limits=tools.Limits(**limits),
    )


# A small A/B test: three capitals, two system prompts, a check that names the capital.
AB_SYSTEM = "You are a concise, factual assistant."
AB_ROWS = [
    {"id": "fr", "country": "France", "capital": "Paris"},
    {"id": "jp", "country": "Japan", "capital": "Tokyo"},
    {"id": "eg", "country": "Egypt", "capital": "Cairo"},
]


def ab_config(**changes) -> dict:
    data = {
        "name": "t",
        "dataset": AB_ROWS,
        "prompt": "What is the capital of {country}?",
        "defaults": {"temperature": 0, "max_tokens": 16},
        "variants": [{"name": "terse", "system": AB_SYSTEM}, {"name": "plain", "system": "You are an assistant."}],
        "assert": [{"type": "contains", "value": "{capital}", "ignore_case": True}],
        "concurrency": 3,
    }
    data.update(changes)
    return data
