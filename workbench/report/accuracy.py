"""accuracy.py measures the daily report on the DEMO database's labelled days: the days with a planted drop,
spike, region that stopped reporting or holiday, and quiet days. The alerts (computed in code) are scored
against the labels: precision, recall, and alerts on quiet days (the goal is none). The prose (the model's) is
scored by its fact check: the share of its figures that are facts. bench/report.py and `workbench compare`'s
`report` task run it; it writes only the demo database into `workdir`.
"""

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from workbench.report import demo_db, writer
from workbench.report import facts as facts_module
from workbench.report.source import Source
from workbench.report.spec import ReportSpec, parse_spec

MEASURES = ("revenue", "orders")


def labelled_days() -> list[tuple[str, str]]:
    """(day, what was planted) for every day of the set: each planted day once (the first two days of the region
    that stopped reporting), then the quiet days."""
    seen, days = set(), []
    missing = [a.day for a in demo_db.LABELS if a.kind == "missing"][:2]
    for anomaly in demo_db.LABELS:
        if anomaly.day in seen or (anomaly.kind == "missing" and anomaly.day not in missing):
            continue
        seen.add(anomaly.day)
        days.append((anomaly.day, anomaly.kind))
    return days + [(day, "quiet") for day in demo_db.QUIET_DAYS]


def spec_for(db_path: Path, language: str = "en", max_tokens: int = 160) -> ReportSpec:
    return parse_spec(
        {
            "db": f"sqlite:///{db_path}",
            "table": "sales",
            "date_column": "day",
            "measures": list(MEASURES),
            "dimension": "region",
            "language": language,
            "max_tokens": max_tokens,
        }
    )


def score_alerts(day: str, alerts: list[dict]) -> dict:
    """Each alert is right when a label covers its day and value (a holiday covers every value; the total
    over every value is right on any planted day); each label is found when an alert names its day and value."""
    planted = [a for a in demo_db.LABELS if a.day == day]
    right = [a for a in alerts if demo_db.label_for(day, a["value"]) or (a["value"] == facts_module.ALL and planted)]
    found = [
        label
        for label in planted
        if any(a["value"] == (facts_module.ALL if label.region == "ALL" else label.region) for a in alerts)
    ]
    return {
        "alerts": len(alerts),
        "right": len(right),
        "labels": len(planted),
        "found": len(found),
        "named": sorted({f"{a['value']} {a['kind']}" for a in alerts}),
    }


def evaluate(
    client,
    workdir: str | Path,
    limit: int | None = None,
    language: str = "en",
    max_tokens: int = 160,
    on_day: Callable[[dict], None] | None = None,
) -> dict:
    """Every labelled day (the first `limit`), its facts and (with a client) its prose: rows and a summary."""
    db = demo_db.make_demo_db(Path(workdir) / "sales_demo.sqlite")
    spec = spec_for(db, language, max_tokens)
    rows = []
    with Source(spec.db) as source:
        for day, kind in labelled_days()[:limit]:
            when = dt.date.fromisoformat(day)
            facts = facts_module.compute(facts_module.load(source, spec, when), spec, when)
            row = {"day": day, "kind": kind, **score_alerts(day, facts.alerts)}
            if client is not None:
                prose = writer.write(facts, language, client, spec.title_text(), max_tokens=max_tokens)
                row.update(
                    figures=prose.figures_total,
                    facts=prose.figures_supported,
                    fact_share=prose.fact_share,
                    unverified=sum(1 for s in prose.sentences if s.unsupported),
                    author=prose.author,
                )
            rows.append(row)
            if on_day:
                on_day(row)
    return {"rows": rows, "summary": summary(rows)}


def summary(rows: list[dict]) -> dict:
    alerts, right = sum(r["alerts"] for r in rows), sum(r["right"] for r in rows)
    labels, found = sum(r["labels"] for r in rows), sum(r["found"] for r in rows)
    out = {
        "days": len(rows),
        "alert_precision": right / alerts if alerts else None,
        "alert_recall": found / labels if labels else None,
        "quiet_days": sum(1 for r in rows if r["kind"] == "quiet"),
        "alerts_on_quiet_days": sum(r["alerts"] for r in rows if r["kind"] == "quiet"),
    }
    if rows and "figures" in rows[0]:
        figures = sum(r["figures"] for r in rows)
        out.update(
            prose_figures=figures,
            prose_fact_share=sum(r["facts"] for r in rows) / figures if figures else None,
            prose_unverified_sentences=sum(r["unverified"] for r in rows),
        )
    return out
