"""writer.py turns a day's facts into the report's prose, in English or Chinese, and checks it against them.

The model (through workbench.serving.client) writes the summary, trends, alerts and recommended actions from the facts;
without a model a template writes them from the same facts. It may first ask read-only follow-up queries
through one registered SQL tool, under tools.py's policy and audited. Then the fact check: every number,
percentage, date and name in the prose must be one of the facts (fact_check.py's normalisations: 12,345 =
12345, 1.2万 = 12000); a sentence with one that is not is marked unverified, never shown as verified.
It computes no fact and writes no file.
"""

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.report.facts import ALL, Facts
from workbench.tasks import fact_check
from workbench.tasks.agent import run_turn
from workbench.tasks.tools import AuditLog, Limits, Policy, Registry

SECTIONS = {
    "en": ("Summary", "Trends", "Alerts", "Recommended actions"),
    "zh": ("概要", "趋势", "异常预警", "建议措施"),
}
_SENTENCE = re.compile(r"(?<=[.!?。！？；;])\s+|(?<=[。！？；])|\n+")
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)、])\s*")
_NAMED = re.compile(r"\b([A-Z][A-Za-z]+) (?:region|area|district)\b|([\u4e00-\u9fff]{2,4})(?:地区|大区)")
UNVERIFIED = "⚠️ unverified"


@dataclass
class Sentence:
    text: str
    figures: list[str]
    unsupported: list[str]

    @property
    def status(self) -> str:
        return "unverified" if self.unsupported else ("checked" if self.figures else "no figures")


@dataclass
class Prose:
    sentences: list[Sentence]
    language: str
    author: str  # the model's name, or "template (no model)"
    follow_up: list[dict] = field(default_factory=list)  # the audited tool steps

    @property
    def figures_total(self) -> int:
        return sum(len(s.figures) for s in self.sentences)

    @property
    def figures_supported(self) -> int:
        return sum(len(s.figures) - len(s.unsupported) for s in self.sentences)

    @property
    def fact_share(self) -> float | None:
        """The share of the prose's figures that are facts (None when it names none)."""
        return self.figures_supported / self.figures_total if self.figures_total else None

    def markdown(self) -> str:
        """The prose with every unverified sentence marked and the figures that are not facts named."""
        out = []
        for s in self.sentences:
            if s.unsupported:
                out.append(f"{UNVERIFIED} ({', '.join(s.unsupported)} not in the facts): ~~{s.text}~~")
            else:
                out.append(s.text)
        return "\n\n".join(out)  # a paragraph each: Markdown would run single lines together

    def as_dict(self) -> dict:
        return {
            "language": self.language,
            "author": self.author,
            "figures_total": self.figures_total,
            "figures_supported": self.figures_supported,
            "fact_share": self.fact_share,
            "sentences": [{**asdict(s), "status": s.status} for s in self.sentences],
            "follow_up": self.follow_up,
        }


def _variants(x: float) -> set[str]:
    out = set()
    for v in (x, abs(x)):
        for n in (round(v), round(v, 1), round(v, 2), float(f"{v:.3g}")):
            out.add(str(int(n)) if float(n).is_integer() else f"{n:.6g}")
    return out


def _numbers_in(node) -> set[str]:
    found = set()
    if isinstance(node, bool) or node is None:
        return found
    if isinstance(node, (int, float)):
        return _variants(float(node))
    if isinstance(node, str):
        return fact_check.numbers(node)
    for child in node.values() if isinstance(node, dict) else node:
        found |= _numbers_in(child)
    return found


@dataclass(frozen=True)
class Allowed:
    """What the prose may state: `general` numbers (the date, the rule, the windows), each dimension value's own
    numbers (`per_value`), and the names. A sentence that names one value may cite only that value's numbers."""

    general: set[str]
    per_value: dict[str, set[str]]
    names: set[str]

    def numbers_for(self, named: list[str]) -> set[str]:
        if len(named) == 1:
            return self.general | self.per_value[named[0]]
        return self.general.union(*self.per_value.values())


def allowed(facts: Facts, extra_text: str = "") -> Allowed:
    general = (
        fact_check.numbers(f"{facts.day} {dt.date.fromisoformat(facts.day).strftime('%d %B %Y')}")
        | _numbers_in(facts.rule)
        | fact_check.numbers(extra_text)
        | {"7", "14"}
    )
    per_value = {
        v: _numbers_in(
            [facts.totals[v], facts.changes[v], facts.trends[v]] + [a for a in facts.alerts if a["value"] == v]
        )
        for v in facts.totals
    }
    for alert in facts.alerts:  # a value that sent no rows has an alert and no totals
        per_value.setdefault(alert["value"], set()).update(_numbers_in(alert))
    return Allowed(general, per_value, set(per_value))


def check(text: str, facts: Facts, language: str, author: str, extra_text: str = "") -> Prose:
    """The prose split into sentences, each with its figures and those that are not facts (of the one dimension
    value the sentence names, when it names one)."""
    facts_allowed = allowed(facts, extra_text)
    sentences = []
    for raw in _SENTENCE.split(text.strip()):
        line = raw.strip()
        if not line or re.fullmatch(r"[#*\s]*", line):
            continue
        body = _LIST_MARK.sub("", line.lstrip("#").strip())
        named = [v for v in facts_allowed.names if v != ALL and re.search(rf"(?<!\w){re.escape(v)}(?!\w)", body)]
        numbers = facts_allowed.numbers_for(named)
        found = sorted(fact_check.numbers(body))
        bad = [n for n in found if n not in numbers]
        for match in _NAMED.finditer(body):
            name = match.group(1) or match.group(2)
            found.append(name)
            if name not in facts_allowed.names:
                bad.append(name)
        bad += [c for c in fact_check.companies(body) if c not in facts_allowed.names]
        sentences.append(Sentence(line, found, bad))
    return Prose(sentences, language, author)


def fmt(x) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def signed(p) -> str:
    return "n/a" if p is None else f"{p:+.1f} %"


def facts_text(facts: Facts) -> str:
    """The facts as short lines, the same for the model's prompt and the reader."""
    lines = [f"Date: {facts.day} ({dt.date.fromisoformat(facts.day).strftime('%A')})"]
    if facts.notice:
        lines.append(f"Note: {facts.notice}")
    for value, per_measure in facts.totals.items():
        for measure, x in per_measure.items():
            change = facts.changes[value][measure]
            parts = [f"{value} {measure}: {fmt(x)}"]
            if "day_over_day" in change:
                parts.append(f"day over day {signed(change['day_over_day']['change_pct'])}")
            if "same_weekday_last_week" in change:
                parts.append(f"vs same weekday last week {signed(change['same_weekday_last_week']['change_pct'])}")
            if "month_to_date" in change:
                mtd = change["month_to_date"]
                parts.append(f"month to date {fmt(mtd['value'])} ({signed(mtd['change_pct'])} vs last month)")
                if "progress_pct" in mtd:
                    parts.append(f"{mtd['progress_pct']:.1f} % of the month's target {fmt(mtd['target'])}")
            trend = facts.trends[value][measure]
            parts.append(f"7-day trend {trend['direction']} {signed(trend['change_pct'])}")
            lines.append("; ".join(parts))
    lines += [
        f"ALERT {a['kind']}: {a['value']} {a['measure']} {signed(a['change'])} "
        f"(actual {fmt(a['actual'])}, usual {fmt(a['baseline_median'])})"
        for a in facts.alerts
    ]
    if not facts.alerts:
        lines.append("No alerts.")
    return "\n".join(lines)


def template(facts: Facts, language: str) -> str:
    """The prose written by code from the facts alone (used without a model, and as the reference)."""
    heads = SECTIONS[language]
    measure = facts.measures[0]
    total, change = facts.totals[ALL][measure], facts.changes[ALL][measure]
    wow = change.get("same_weekday_last_week", {}).get("change_pct")
    trend = facts.trends[ALL][measure]
    flagged = list(dict.fromkeys(a["value"] for a in facts.alerts))[:3]  # the values to look into, once each
    if language == "zh":
        lines = [
            f"## {heads[0]}",
            f"{facts.day} 全部{facts.dimension}的{measure}合计 {fmt(total)}，较上周同日 {signed(wow)}。",
            f"## {heads[1]}",
            f"近 7 天{measure} {fmt(trend['last_7_days'])}，较前 7 天 {signed(trend['change_pct'])}。",
            f"## {heads[2]}",
        ]
        lines += [
            f"- {a['value']} 的 {a['measure']} {signed(a['change'])}（实际 {fmt(a['actual'])}，"
            f"通常 {fmt(a['baseline_median'])}）。"
            for a in facts.alerts
        ] or ["- 无异常。"]
        lines += [f"## {heads[3]}"]
        lines += [f"- 核查 {v} 的数据与业务情况。" for v in flagged] or ["- 保持当前节奏。"]
    else:
        lines = [
            f"## {heads[0]}",
            f"On {facts.day}, {measure} across every {facts.dimension} was {fmt(total)}, "
            f"{signed(wow)} against the same weekday last week.",
            f"## {heads[1]}",
            f"Over the last 7 days {measure} was {fmt(trend['last_7_days'])}, "
            f"{signed(trend['change_pct'])} against the previous 7 days.",
            f"## {heads[2]}",
        ]
        lines += [
            f"- {a['value']} {a['measure']}: {signed(a['change'])} (actual {fmt(a['actual'])}, usual "
            f"{fmt(a['baseline_median'])})."
            for a in facts.alerts
        ] or ["- No alerts."]
        lines += [f"## {heads[3]}"]
        lines += [f"- Check the data and the business of {v}." for v in flagged] or ["- Keep the current course."]
    return "\n".join(lines)


def prompt(facts: Facts, language: str, title: str, follow_up: str = "") -> list[dict]:
    heads = SECTIONS[language]
    system = (
        f"You write the {title} for {facts.day}. Use only the numbers in FACTS and copy them exactly; "
        "compute nothing. Write four short sections with these headings: "
        + ", ".join(heads)
        + ". "
        + ("用中文写。" if language == "zh" else "Write in English.")
    )
    user = f"FACTS\n{facts_text(facts)}" + (f"\n\nFOLLOW-UP QUERY RESULTS\n{follow_up}" if follow_up else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def sql_policy(query, audit_path: str | Path) -> Policy:
    """One registered tool, `query_database(sql)`: read-only SELECTs through `query(sql) -> rows` (source.py
    parses and limits them), under the tool policy, every call audited to `audit_path`."""
    registry = Registry()

    @registry.register
    def query_database(sql: str) -> dict:
        """Read-only SQL over the report's database: one SELECT; at most 50 rows.

        Args:
            sql: one SELECT statement
        """
        return {"rows": query(sql)[:50]}

    registry.get("query_database").parameters["properties"]["sql"]["maxLength"] = 500
    return Policy(registry, AuditLog(audit_path), Limits(max_steps_per_turn=2, max_calls_per_turn=3))


def _follow_up(client, facts: Facts, policy: Policy) -> tuple[str, list[dict]]:
    """One tool turn in which the model may run read-only SELECTs before it writes."""
    alerts = "; ".join(f"{a['value']} {a['measure']} {a['kind']}" for a in facts.alerts) or "none"
    turn = run_turn(
        client,
        policy,
        f"The report for {facts.day} has these alerts: {alerts}. Run a query "
        "that would help explain them, or answer 'none'.",
        max_tokens=200,
        today=dt.date.fromisoformat(facts.day),
    )
    results = [s.as_dict() for s in turn.steps]
    text = "\n".join(json.dumps(s["result"], default=str) for s in results if s["status"] == "executed")
    return text, results


def write(
    facts: Facts,
    language: str = "en",
    client=None,
    title: str = "Daily report",
    query=None,
    audit_path: str | Path | None = None,
    max_tokens: int = 400,
) -> Prose:
    """The checked prose: the model's (client given) or the template's. With `query` and `audit_path`, the
    model may ask follow-up SELECTs first; their results count as facts."""
    if client is None:
        return check(template(facts, language), facts, language, "template (no model)")
    extra, steps = "", []
    if query is not None and audit_path is not None:
        extra, steps = _follow_up(client, facts, sql_policy(query, audit_path))
    result = client.chat(prompt(facts, language, title, extra), stream=False, temperature=0, max_tokens=max_tokens)
    prose = check(result.text, facts, language, result.model or client.model, extra)
    prose.follow_up = steps
    return prose
