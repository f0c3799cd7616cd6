"""Daily report tab: connect to a database (read only), preview a day's facts and alerts with their evidence,
generate the report with progress (the model writes the prose, checked against the facts), download the files."""

import tempfile
from pathlib import Path

import gradio as gr

from workbench import plots, settings
from workbench.report import daily, demo_db
from workbench.report import spec as report_spec
from workbench.report.facts import ALL
from workbench.ui.context import AppContext
from workbench.ui.handlers import HEAVY, filled, shows_errors
from workbench.ui.jobs import relay, stream_pieces
from workbench.ui.notice import build_engine_notice

_ALERT_HEADERS = ["value", "measure", "kind", "change %", "evidence"]
_TOTAL_HEADERS = ["value", "measure", "total", "vs same weekday last week %", "7-day trend"]


def _spec(db, table, date_column, measures, dimension, language, max_tokens=None):
    return report_spec.build(
        None,
        db=db.strip(),
        table=table.strip(),
        date_column=date_column.strip(),
        measures=[m.strip() for m in (measures or "").split(",") if m.strip()],
        dimension=dimension.strip(),
        language=language,
        max_tokens=int(filled(max_tokens, 400)) if max_tokens is not None else None,
    )


def _alert_rows(alerts: list[dict]) -> list[list]:
    return [[a["value"], a["measure"], a["kind"], a["change"], a["evidence"]] for a in alerts]


def _total_rows(facts: dict) -> list[list]:
    rows = []
    for value, per_measure in facts["totals"].items():
        for measure, total in per_measure.items():
            change = facts["changes"][value][measure].get("same_weekday_last_week", {}).get("change_pct")
            trend = facts["trends"][value][measure]
            rows.append([value, measure, total, change, f"{trend['direction']} {trend['change_pct']}"])
    return rows


def _chart(facts: dict):
    series = {v: p for v, p in facts["series"].items() if v != ALL}
    return plots.report_chart(series, facts["measures"][0], facts["date"], facts["alerts"])


def build_report_tab(ctx: AppContext) -> None:
    with gr.Tab("Daily report"):
        build_engine_notice(ctx, "writes the report's prose (the facts, preview and template need no engine)")
        gr.Markdown(
            "The regional daily report from a database. Every number is computed in code from the database "
            "(opened **read only**); the model writes the prose from those facts, and a sentence whose "
            "figure is not a fact is marked ⚠️ unverified. Alerts compare the day with the median of the same "
            "weekday over the last 8 weeks. A password goes in `WORKBENCH_DB_PASSWORD`, never in the URL."
        )
        with gr.Row():
            db = gr.Textbox(
                label="Database URL",
                placeholder="sqlite:///sales.sqlite or postgresql+psycopg://user@host/db",
                value=settings.report_db_url() or "",
                scale=3,
            )
            demo = gr.Button("Make the demo database")
            connect = gr.Button("Connect")
        schema = gr.Markdown("_not connected_", elem_id="report-schema")
        with gr.Row():
            table = gr.Textbox("sales", label="Table")
            date_column = gr.Textbox("day", label="Date column")
            measures = gr.Textbox("revenue, orders", label="Measures (comma-separated)")
            dimension = gr.Textbox("region", label="Dimension")
            day = gr.Textbox("2026-11-17", label="Date (YYYY-MM-DD or START..END)", elem_id="report-date")
            language = gr.Radio(list(report_spec.LANGUAGES), value="en", label="Language")
            use_model = gr.Checkbox(True, label="The model writes the prose (else a template)")
            max_tokens = gr.Number(400, label="Prose length (max tokens)", precision=0, minimum=16, maximum=8192)
        with gr.Row():
            preview = gr.Button("Preview facts")
            generate = gr.Button("Generate report", variant="primary")
        status = gr.Markdown("", elem_id="report-status")
        alerts = gr.Dataframe(
            headers=_ALERT_HEADERS,
            label="Alerts, with their evidence",
            wrap=True,
            elem_id="report-alerts",
            column_widths=["10%", "10%", "8%", "8%", "64%"],
        )
        chart = gr.Plot(label="The first measure per day, alerts circled")
        totals = gr.Dataframe(headers=_TOTAL_HEADERS, label="Totals", elem_id="report-totals")
        prose = gr.Markdown("", elem_id="report-prose")
        files = gr.File(label="Download", file_count="multiple", elem_id="report-files")

        @shows_errors
        def on_demo():
            path = demo_db.make_demo_db(settings.cache_dir() / "report" / "sales_demo.sqlite")
            return f"sqlite:///{path}", daily.describe(f"sqlite:///{path}")

        @shows_errors
        def on_connect(url):
            return daily.describe(url.strip())

        @shows_errors
        def on_preview(url, table_, date_column_, measures_, dimension_, day_, language_):
            spec = _spec(url, table_, date_column_, measures_, dimension_, language_)
            first = report_spec.parse_dates(day_)[-1]
            facts = daily.preview(spec, first)
            content = {**facts.as_dict(), "series": facts.series}
            return (
                f"Facts of **{facts.day}** ({len(facts.alerts)} alert(s)); nothing written yet.",
                _alert_rows(facts.alerts),
                _chart(content),
                _total_rows(content),
            )

        @shows_errors
        def on_generate(url, table_, date_column_, measures_, dimension_, day_, language_, use_model_, max_tokens_):
            spec = _spec(url, table_, date_column_, measures_, dimension_, language_, max_tokens_)
            dates = report_spec.parse_dates(day_)
            client = ctx.client() if use_model_ else None
            out = tempfile.mkdtemp(prefix="report-")
            yield "reading the facts ...", *[gr.skip()] * 5
            updates = stream_pieces(
                lambda on_text: daily.generate(
                    spec, dates, out, client, lambda fraction, message: on_text(f"{fraction:.0%}: {message}")
                )
            )
            report = yield from relay(updates, lambda text: (f"generating: {text}", *[gr.skip()] * 5))
            last = report.days[-1]
            paths = [
                str(Path(d.folder) / name)
                for d in report.days
                for name in ("report.md", "report.html", "report.docx", "facts.json")
            ]
            facts = last.facts
            checked = facts["prose"]
            yield (
                f"done: {len(report.days)} day(s) in {out}. **{last.day}**: {len(last.alerts)} alert(s); "
                f"{checked['figures_supported']} of {checked['figures_total']} figures in the prose are facts "
                f"(prose by {checked['author']})."
                + (f" Skipped (no rows): {', '.join(report.skipped)}." if report.skipped else ""),
                _alert_rows(last.alerts),
                _chart(facts),
                _total_rows(facts),
                (Path(last.folder) / "report.md").read_text(encoding="utf-8"),
                paths,
            )

        form = [db, table, date_column, measures, dimension, day, language]
        demo.click(on_demo, None, [db, schema], api_name="report_demo_db")
        connect.click(on_connect, db, schema, api_name="report_connect")
        preview.click(on_preview, form, [status, alerts, chart, totals], api_name="report_preview")
        generate.click(
            on_generate,
            [*form, use_model, max_tokens],
            [status, alerts, chart, totals, prose, files],
            api_name="report_generate",
            **HEAVY,
        )
