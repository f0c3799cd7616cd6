"""toolseval.py scores proposed tool calls the way BFCL does (function name, required parameters,
types, values) on cases this project writes, in English and Chinese, in five categories: simple (the
request names what to do), multiple (the right tool among several, not named), parallel (several calls
at once), irrelevance (no call) and date (an argument needs "today", "tomorrow" or "后天" resolved).
A design is a mode (agent.MODES) with or without few-shot examples; `compare` scores several, each with thinking
as asked: left to each step's default, on, off, or both (on against off, side by side). A design the server cannot
serve (native without a tool parser, thinking without a reasoning parser) is refused before the first request."""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from workbench.export import Exportable
from workbench.tasks import agent

TODAY = dt.date(2026, 11, 25)
TOMORROW, AFTER = "2026-11-26", "2026-11-27"
CATEGORIES = ("simple", "multiple", "parallel", "irrelevance", "date")
THINKING = {"default": (None,), "on": (True,), "off": (False,), "both": (True, False)}  # --thinking's choices
# (mode, few_shot) pairs that `compare` scores by default
DESIGNS = (("native", False), ("constrained", False), ("constrained", True), ("two-stage", False), ("two-stage", True))


@dataclass(frozen=True)
class Case:
    category: str
    message: str
    expected: tuple[tuple[str, dict], ...]  # (tool, {argument: expected value (str: case-insensitive substring)})

    @property
    def lang(self) -> str:
        return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in self.message) else "en"


def _weather(city, date):
    return ("get_weather", {"city": city, "date": date})


CASES = [
    Case("simple", "What is the weather in Hangzhou on 2026-11-26?", (_weather("Hangzhou", "2026-11-26"),)),
    Case("simple", "Use the calculator: what is 17 * 23?", (("calculator", {"expression": "17"}),)),
    Case("simple", "What time is it now in Asia/Shanghai?", (("current_time", {"timezone": "Asia/Shanghai"}),)),
    Case("simple", "Get the weather forecast for Paris on 2026-12-01.", (_weather("Paris", "2026-12-01"),)),
    Case(
        "simple", "Run this SQL on the sales table: SELECT SUM(units) FROM sales", (("query_sales", {"sql": "select"}),)
    ),
    Case("simple", "查询成都 2026-11-28 的天气。", (_weather("Chengdu", "2026-11-28"),)),
    Case("simple", "用计算器算一下 45 * 12。", (("calculator", {"expression": "45"}),)),
    Case("simple", "现在伦敦（Europe/London）几点？", (("current_time", {"timezone": "Europe/London"}),)),
    Case("simple", "请查询北京 2026-12-03 的天气预报。", (_weather("Beijing", "2026-12-03"),)),
    Case("simple", "用 SQL 查询销售表：SELECT COUNT(*) FROM sales", (("query_sales", {"sql": "select"}),)),
    Case("multiple", "Compute 2 ** 10 for me.", (("calculator", {"expression": "2"}),)),
    Case("multiple", "Query the sales table: total revenue for the East region.", (("query_sales", {"sql": "east"}),)),
    Case("multiple", "Will it rain in London on 2026-11-27?", (_weather("London", "2026-11-27"),)),
    Case("multiple", "How much is 1234 divided by 2?", (("calculator", {"expression": "1234"}),)),
    Case("multiple", "Do I need an umbrella in Shenzhen on 2026-11-30?", (_weather("Shenzhen", "2026-11-30"),)),
    Case("multiple", "2 的 16 次方是多少？", (("calculator", {"expression": "2"}),)),
    Case("multiple", "上海 2026-11-29 会下雨吗？", (_weather("Shanghai", "2026-11-29"),)),
    Case("multiple", "销售表里一共卖出了多少件产品？", (("query_sales", {"sql": "units"}),)),
    Case("multiple", "纽约现在是几点？时区 America/New_York。", (("current_time", {"timezone": "America/New_York"}),)),
    Case("multiple", "99 乘以 101 等于多少？", (("calculator", {"expression": "99"}),)),
    Case(
        "parallel",
        "Get the weather on 2026-11-26 in Beijing and in Shanghai.",
        (_weather("Beijing", "2026-11-26"), _weather("Shanghai", "2026-11-26")),
    ),
    Case(
        "parallel",
        "What is 3 + 4, and what is 10 * 10?",
        (("calculator", {"expression": "3"}), ("calculator", {"expression": "10"})),
    ),
    Case(
        "parallel",
        "Compare the weather in Paris and London on 2026-12-02.",
        (_weather("Paris", "2026-12-02"), _weather("London", "2026-12-02")),
    ),
    Case(
        "parallel",
        "Calculate 7 * 8 and 81 / 9.",
        (("calculator", {"expression": "7"}), ("calculator", {"expression": "81"})),
    ),
    Case(
        "parallel",
        "分别查询杭州和深圳 2026-11-28 的天气。",
        (_weather("Hangzhou", "2026-11-28"), _weather("Shenzhen", "2026-11-28")),
    ),
    Case(
        "parallel",
        "帮我算 15 + 27 和 100 - 36。",
        (("calculator", {"expression": "15"}), ("calculator", {"expression": "100"})),
    ),
    Case(
        "parallel",
        "成都和北京 2026-12-05 的天气分别怎么样？",
        (_weather("Chengdu", "2026-12-05"), _weather("Beijing", "2026-12-05")),
    ),
    Case(
        "parallel",
        "计算 6 * 7，再计算 90 / 3。",
        (("calculator", {"expression": "6"}), ("calculator", {"expression": "90"})),
    ),
    Case("irrelevance", "Tell me a short joke about cats.", ()),
    Case("irrelevance", "Translate 'good morning' into French.", ()),
    Case("irrelevance", "Who wrote Romeo and Juliet?", ()),
    Case("irrelevance", "Write a haiku about autumn leaves.", ()),
    Case("irrelevance", "给我讲一个关于猫的笑话。", ()),
    Case("irrelevance", "把“早上好”翻译成英文。", ()),
    Case("irrelevance", "《红楼梦》的作者是谁？", ()),
    Case("irrelevance", "用一句话介绍一下长城。", ()),
    Case("date", "What's the weather in Hangzhou tomorrow?", (_weather("Hangzhou", TOMORROW),)),
    Case("date", "Check tomorrow's weather in Beijing; should I take an umbrella?", (_weather("Beijing", TOMORROW),)),
    Case("date", "Forecast for London today, please.", (_weather("London", TODAY.isoformat()),)),
    Case("date", "What will the weather be in Paris the day after tomorrow?", (_weather("Paris", AFTER),)),
    Case("date", "杭州明天的天气怎么样？", (_weather("Hangzhou", TOMORROW),)),
    Case("date", "明天上海会下雨吗？要带伞吗？", (_weather("Shanghai", TOMORROW),)),
    Case("date", "今天深圳天气如何？", (_weather("Shenzhen", TODAY.isoformat()),)),
    Case("date", "后天成都的天气预报是什么？", (_weather("Chengdu", AFTER),)),
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
        return {
            "category": case.category,
            "message": case.message,
            "proposed": proposed,
            "name": False,
            "arguments": False,
            "exact": False,
        }
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
    return {
        "category": case.category,
        "message": case.message,
        "proposed": calls if calls else proposed,
        "name": name_ok,
        "arguments": args_ok,
        "exact": name_ok and args_ok,
    }


def _shares(rows: list[dict]) -> dict:
    return {"cases": len(rows), **{k: sum(r[k] for r in rows) / len(rows) for k in ("name", "arguments", "exact")}}


def evaluate(
    client,
    policy,
    mode: str,
    few_shot: bool = False,
    cases: list[Case] | None = None,
    thinking: bool | None = None,
    concurrency: int = 4,
) -> dict:
    """One design's scores: per category, per language and overall, with every row (in the cases' order). `thinking`
    None leaves each step its default (thinking.THINKING_DEFAULTS). `concurrency` cases are asked at a time, as
    bfcl.evaluate asks its entries: vLLM batches them, so four cost about what one does."""
    cases = CASES if cases is None else cases
    agent.check_server(client, mode, thinking)

    def row(case: Case) -> dict:
        proposed = agent.propose(client, policy, case.message, mode, today=TODAY, few_shot=few_shot, thinking=thinking)
        return dict(score_case(case, proposed, policy), lang=case.lang)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        rows = list(pool.map(row, cases))
    categories = {
        c: _shares([r for r in rows if r["category"] == c]) for c in CATEGORIES if any(r["category"] == c for r in rows)
    }
    languages = {
        lang: _shares([r for r in rows if r["lang"] == lang])
        for lang in ("en", "zh")
        if any(r["lang"] == lang for r in rows)
    }
    return {
        "mode": mode,
        "few_shot": few_shot,
        "thinking": thinking,
        "design": design_name(mode, few_shot, thinking),
        "categories": categories,
        "languages": languages,
        "overall": _shares(rows),
        "rows": rows,
    }


def design_name(mode: str, few_shot: bool, thinking: bool | None = None) -> str:
    """'two-stage+few-shot', and '+thinking' / '+no-thinking' where thinking was set for every step."""
    name = f"{mode}+few-shot" if few_shot else mode
    return name if thinking is None else f"{name}+{'thinking' if thinking else 'no-thinking'}"


DESIGN_NAMES = [design_name(m, f) for m in agent.MODES for f in (False, True)]


def parse_design(name: str) -> tuple[str, bool]:
    """'two-stage+few-shot' → ('two-stage', True)."""
    mode, _, extra = name.partition("+")
    return mode, extra == "few-shot"


class ToolsEvalReport(Exportable, dict):
    """compare's result, a plain dict {design: its scores}; a table per design, category and language."""

    def as_dict(self) -> dict:
        return dict(self)

    def table(self) -> list[list]:
        return [
            [design, category, row["cases"], row["name"], row["arguments"], row["exact"]]
            for design, r in self.items()
            for category, row in [*r["categories"].items(), *r["languages"].items(), ("overall", r["overall"])]
        ]

    def csv_rows(self) -> tuple[list[str], list[list]]:
        return ["design", "category", "cases", "name", "arguments", "exact"], self.table()

    def to_markdown(self) -> str:
        rows = ["| design | category | cases | name | arguments | exact |", "|---|---|---|---|---|---|"]
        rows += [f"| {d} | {c} | {n} | {a:.0%} | {b:.0%} | {e:.0%} |" for d, c, n, a, b, e in self.table()]
        return "\n".join(rows)

    def to_text(self) -> str:
        lines = [f"{'design':<22} {'category':<12} {'cases':>5} {'name':>6} {'args':>6} {'exact':>6}"]
        lines += [f"{d:<22} {c:<12} {n:>5} {a:>6.0%} {b:>6.0%} {e:>6.0%}" for d, c, n, a, b, e in self.table()]
        return "\n".join(lines)


def compare(
    client,
    make_policy,
    designs=DESIGNS,
    cases: list[Case] | None = None,
    thinking: tuple[bool | None, ...] = (None,),
    concurrency: int = 4,
) -> ToolsEvalReport:
    """Scores for each (mode, few_shot) design under each thinking setting (THINKING's values: (True, False) scores
    thinking on against off); make_policy(name) gives each its own audited policy. Every design is checked against
    the server before the first request; `concurrency` cases are asked at a time."""
    for mode, _ in designs:
        for think in thinking:
            agent.check_server(client, mode, think)
    out = ToolsEvalReport()
    for mode, few_shot in designs:
        for think in thinking:
            name = design_name(mode, few_shot, think)
            out[name] = evaluate(client, make_policy(name), mode, few_shot, cases, think, concurrency)
    return out
