"""toolseval.py scores proposed tool calls the way BFCL does (function name, required parameters,
types, values) on cases this project writes, in four categories: simple (one tool, one call),
multiple (the right tool among several), parallel (several calls at once), irrelevance (no call)."""

import datetime as dt
from dataclasses import dataclass

from workbench import agent

TODAY = dt.date(2026, 11, 25)


@dataclass(frozen=True)
class Case:
    category: str
    message: str
    expected: tuple[tuple[str, dict], ...]  # (tool, {argument: expected value (str: case-insensitive substring)})


CASES = [
    Case("simple", "What is the weather in Hangzhou on 2026-11-26?", (("get_weather", {"city": "Hangzhou", "date": "2026-11-26"}),)),
    Case("simple", "Use the calculator: what is 17 * 23?", (("calculator", {"expression": "17"}),)),
    Case("simple", "What time is it now in Asia/Shanghai?", (("current_time", {"timezone": "Asia/Shanghai"}),)),
    Case("multiple", "Compute 2 ** 10 for me.", (("calculator", {"expression": "2"}),)),
    Case("multiple", "Query the sales table: total revenue for the East region.", (("query_sales", {"sql": "east"}),)),
    Case("multiple", "Will it rain in London on 2026-11-27?", (("get_weather", {"city": "London", "date": "2026-11-27"}),)),
    Case("parallel", "Get the weather on 2026-11-26 in Beijing and in Shanghai.",
         (("get_weather", {"city": "Beijing", "date": "2026-11-26"}), ("get_weather", {"city": "Shanghai", "date": "2026-11-26"}))),
    Case("parallel", "What is 3 + 4, and what is 10 * 10?", (("calculator", {"expression": "3"}), ("calculator", {"expression": "10"}))),
    Case("irrelevance", "Tell me a short joke about cats.", ()),
    Case("irrelevance", "Translate 'good morning' into French.", ()),
    Case("irrelevance", "Who wrote Romeo and Juliet?", ()),
]


def _args_match(got: object, want: dict, schema: dict) -> bool:
    import jsonschema

    if not isinstance(got, dict) or not jsonschema.Draft202012Validator(schema).is_valid(got):
        return False  # missing required parameters, wrong types or extra arguments
    for key, value in want.items():
        if str(value).lower() not in str(got.get(key, "")).lower():
            return False
    return True


def score_case(case: Case, proposed, policy) -> dict:
    if isinstance(proposed, agent.Unusable):
        proposed = {"unusable": proposed.reason, "text": proposed.text[:300]}
    if isinstance(proposed, dict) and "unusable" in proposed:  # neither an answer nor a call: wrong everywhere
        return {"category": case.category, "message": case.message, "proposed": proposed,
                "name": False, "arguments": False, "exact": False}
    calls = [] if isinstance(proposed, str) else proposed
    want_names = sorted(name for name, _ in case.expected)
    got_names = sorted(str(name) for name, _ in calls)
    name_ok = got_names == want_names
    args_ok = name_ok
    if name_ok and case.expected:
        remaining = list(calls)
        for name, want in case.expected:
            tool = policy.registry.get(name)
            match = next((c for c in remaining if c[0] == name and _args_match(c[1], want, tool.parameters)), None)
            if match is None:
                args_ok = False
                break
            remaining.remove(match)
    return {"category": case.category, "message": case.message, "proposed": calls if calls else proposed,
            "name": name_ok, "arguments": args_ok, "exact": name_ok and args_ok}


def evaluate(client, policy, mode: str) -> dict:
    rows = [score_case(case, agent.propose(client, policy, case.message, mode, today=TODAY), policy) for case in CASES]
    categories = {}
    for category in ("simple", "multiple", "parallel", "irrelevance"):
        sel = [r for r in rows if r["category"] == category]
        categories[category] = {"cases": len(sel), **{k: sum(r[k] for r in sel) / len(sel)
                                                       for k in ("name", "arguments", "exact")}}
    overall = {k: sum(r[k] for r in rows) / len(rows) for k in ("name", "arguments", "exact")}
    return {"mode": mode, "categories": categories, "overall": overall, "rows": rows}
