"""output.py writes one day's report into its own folder: report.md, a self-contained report.html (the charts
from plots.py embedded as base64 PNG), report.docx (python-docx) and facts.json. The folder is written in a
temporary sibling and renamed into place, so a failure leaves nothing half written. It reads facts and
prose; it computes and checks nothing.
"""

import base64
import datetime as dt
import html
import io
import json
import re
import shutil
import tempfile
from pathlib import Path

from markdown_it import MarkdownIt

from workbench import plots
from workbench.report.facts import ALL, Facts
from workbench.report.writer import Prose, fmt, signed

FILES = ("report.md", "report.html", "report.docx", "facts.json")
_COMPARISON_HEADS = {
    "day_over_day": "day over day",
    "same_weekday_last_week": "vs same weekday last week",
    "month_to_date": "month to date",
}


def markdown(facts: Facts, prose: Prose, title: str) -> str:
    weekday = dt.date.fromisoformat(facts.day).strftime("%A")
    lines = [f"# {title}: {facts.day} ({weekday})", ""]
    if facts.notice:
        lines += [f"> **{facts.notice}**", ""]
    for measure in facts.measures:
        comparisons = [c for c in _COMPARISON_HEADS if c in facts.changes[ALL][measure]]
        lines += [
            f"## {measure}",
            "",
            "| "
            + " | ".join([facts.dimension, measure] + [_COMPARISON_HEADS[c] for c in comparisons] + ["7-day trend"])
            + " |",
            "|" + "---|" * (3 + len(comparisons)),
        ]
        for value, per_measure in facts.totals.items():
            change = facts.changes[value][measure]
            cells = [f"**{value}**" if value == ALL else value, fmt(per_measure[measure])]
            for c in comparisons:
                cells.append(
                    fmt(change[c]["value"]) + f" ({signed(change[c]['change_pct'])})"
                    if c == "month_to_date"
                    else signed(change[c]["change_pct"])
                )
            trend = facts.trends[value][measure]
            cells.append(f"{trend['direction']} {signed(trend['change_pct'])}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Alerts", ""]
    lines += [
        f"- **{a['value']} {a['measure']}: {a['kind']} {signed(a['change'])}**. {a['evidence']}" for a in facts.alerts
    ] or ["- No alerts: every value is within its thresholds."]
    lines += [
        "",
        f"## Report ({prose.author})",
        "",
        re.sub(r"^#{1,3} ", "### ", prose.markdown(), flags=re.M),
        "",
        "## Fact check",
        "",
        f"{prose.figures_supported} of {prose.figures_total} figures in the prose are facts computed from the "
        f"database; {sum(1 for s in prose.sentences if s.unsupported)} sentence(s) are marked unverified. "
        "The tables and alerts above are computed in code, not written by the model.",
    ]
    if prose.follow_up:
        lines += [
            "",
            f"Follow-up queries (audited): {len(prose.follow_up)} step(s), "
            + ", ".join(s["status"] for s in prose.follow_up)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def chart_pngs(facts: Facts) -> dict[str, bytes]:
    """One chart per measure, as PNG bytes."""
    out = {}
    for measure in facts.measures:
        series = {v: p for v, p in facts.series.items() if v != ALL}
        fig = plots.report_chart(series, measure, facts.day, facts.alerts)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        out[measure] = buffer.getvalue()
    return out


def page(md_text: str, charts: dict[str, bytes], title: str) -> str:
    """A self-contained HTML page: the Markdown rendered, the charts inline; nothing loaded from elsewhere."""
    body = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(md_text)
    images = "".join(
        f'<figure><img alt="{html.escape(m)} per day" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}"></figure>'
        for m, png in charts.items()
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child{text-align:left}img{max-width:100%}blockquote{background:#fff4d6;margin:0;padding:.4em 1em}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{body}{images}</body></html>\n"
    )


def docx_bytes(facts: Facts, prose: Prose, charts: dict[str, bytes], title: str) -> bytes:
    import docx
    from docx.shared import Inches

    document = docx.Document()
    document.add_heading(f"{title}: {facts.day}", 0)
    if facts.notice:
        document.add_paragraph(facts.notice).runs[0].bold = True
    for measure in facts.measures:
        document.add_heading(measure, 1)
        table = document.add_table(rows=1, cols=4)
        table.style = "Table Grid"
        for cell, text in zip(
            table.rows[0].cells, (facts.dimension, measure, "vs same weekday last week", "7-day trend")
        ):
            cell.text = text
        for value, per_measure in facts.totals.items():
            row = table.add_row().cells
            change = facts.changes[value][measure].get("same_weekday_last_week", {}).get("change_pct")
            trend = facts.trends[value][measure]
            for cell, text in zip(
                row,
                (
                    value,
                    fmt(per_measure[measure]),
                    signed(change),
                    f"{trend['direction']} {signed(trend['change_pct'])}",
                ),
            ):
                cell.text = text
        document.add_picture(io.BytesIO(charts[measure]), width=Inches(6.2))
    document.add_heading("Alerts", 1)
    for alert in facts.alerts or [None]:
        document.add_paragraph(
            f"{alert['value']} {alert['measure']}: {alert['kind']} {signed(alert['change'])}. {alert['evidence']}"
            if alert
            else "No alerts.",
            style="List Bullet",
        )
    document.add_heading(f"Report ({prose.author})", 1)
    for sentence in prose.sentences:
        text = sentence.text.lstrip("#").strip()
        paragraph = document.add_paragraph()
        if sentence.unsupported:
            paragraph.add_run(f"⚠ unverified ({', '.join(sentence.unsupported)} not in the facts): ").bold = True
            paragraph.add_run(text).font.strike = True
        else:
            paragraph.add_run(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def write_day(folder: Path, facts: Facts, prose: Prose, title: str, meta: dict) -> dict:
    """The four files into `folder` (replaced whole); returns facts.json's content."""
    md_text = markdown(facts, prose, title)
    charts = chart_pngs(facts)
    content = {**facts.as_dict(), "series": facts.series, "prose": prose.as_dict(), "report": meta}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        (tmp / "report.md").write_text(md_text, encoding="utf-8")
        (tmp / "report.html").write_text(page(md_text, charts, f"{title}: {facts.day}"), encoding="utf-8")
        (tmp / "report.docx").write_bytes(docx_bytes(facts, prose, charts, title))
        (tmp / "facts.json").write_text(
            json.dumps(content, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8"
        )
        if folder.exists():
            shutil.rmtree(folder)
        tmp.replace(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return content


def stored(folder: Path, key: str) -> dict | None:
    """facts.json of a finished report made with the same spec, model and language; None otherwise."""
    try:
        content = json.loads((folder / "facts.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if content.get("report", {}).get("key") != key or not all((folder / f).is_file() for f in FILES):
        return None
    return content
