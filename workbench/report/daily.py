"""daily.py makes the daily report for one day or a range of days, end to end: spec → read-only source →
facts → prose → four files in a folder per date. Idempotent per date: a folder made with the same spec, model
and language is reused, not redone; a range backfills each day (days without rows are skipped and named).
Every refusal comes before the first file is written. `schedule` prints the operating system's own timer.
"""

import datetime as dt
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import ConfigError
from workbench.report import facts as facts_module
from workbench.report import output, writer
from workbench.report.source import Source, display_url
from workbench.report.spec import ReportSpec
from workbench.store import Store


@dataclass
class DayReport:
    day: str
    folder: str
    facts: dict  # facts.json's content
    reused: bool

    @property
    def alerts(self) -> list[dict]:
        return self.facts["alerts"]


@dataclass
class Report:
    days: list[DayReport]
    skipped: list[str] = field(default_factory=list)  # days of a range that had no rows

    def as_dict(self) -> dict:
        keep = lambda f: {k: v for k, v in f.items() if k not in ("series", "report")}  # noqa: E731
        if len(self.days) == 1 and not self.skipped:
            return keep(self.days[0].facts)
        return {"days": [keep(d.facts) for d in self.days], "skipped": self.skipped}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=1, default=str) + "\n"

    def to_text(self) -> str:
        lines = []
        for d in self.days:
            prose = d.facts["prose"]
            lines.append(
                f"{d.day}: {d.folder} ({'reused' if d.reused else 'written'}; {len(d.alerts)} alert(s); "
                f"{prose['figures_supported']}/{prose['figures_total']} prose figures are facts; "
                f"prose by {prose['author']})"
            )
            lines += [
                f"  ALERT {a['value']} {a['measure']} {a['kind']} {a['change']:+.1f} %: {a['evidence']}"
                for a in d.alerts
            ]
        if self.skipped:
            lines.append(f"skipped (no rows): {', '.join(self.skipped)}")
        return "\n".join(lines)


def key(spec: ReportSpec, author: str) -> str:
    """What makes two runs for one date the same report: the spec (password-free), the writer, the language."""
    described = {**spec.model_dump(), "db": display_url(spec.db), "author": author}
    return Store.key(described)[:16]


def generate(
    spec: ReportSpec,
    dates: list[dt.date],
    out_dir: str | Path,
    client=None,
    progress: Callable[[float, str], None] | None = None,
    force: bool = False,
) -> Report:
    """The reports of `dates` under out_dir/YYYY-MM-DD/. `client`: the model that writes the prose (None: the
    template). `progress(fraction, message)` hears each day's writing, which starts only once every day's facts
    are computed (so a refusal comes before any progress). `force` redoes days that are already done."""
    progress = progress or (lambda fraction, message: None)
    out = Path(out_dir)
    author = client.model if client is not None else "template (no model)"
    run_key = key(spec, author)
    done, todo, skipped = {}, [], []
    with Source(spec.db, spec.max_rows, spec.timeout_s) as source:
        for i, day in enumerate(dates):
            folder = out / day.isoformat()
            content = None if force else output.stored(folder, run_key)
            if content is not None:
                done[day] = DayReport(day.isoformat(), str(folder), content, True)
                continue
            try:
                history = facts_module.load(source, spec, day)
            except facts_module.NoRowsError:
                if len(dates) == 1:
                    raise
                skipped.append(day.isoformat())
                continue
            todo.append((day, facts_module.compute(history, spec, day)))
        if not done and not todo:
            raise ConfigError(f"no day from {dates[0]} to {dates[-1]} has rows; nothing was written.")
        query = (lambda sql: source.rows(sql)) if spec.follow_up_queries else None
        for i, (day, facts) in enumerate(todo):
            folder = out / day.isoformat()
            progress(i / len(todo), f"writing {day.isoformat()} ({author})")
            prose = writer.write(
                facts,
                spec.language,
                client,
                spec.title_text(),
                query=query,
                audit_path=out / "audit.jsonl" if query else None,
                max_tokens=spec.max_tokens,
            )
            meta = {
                "key": run_key,
                "author": author,
                "db": display_url(spec.db),
                "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
            content = output.write_day(folder, facts, prose, spec.title_text(), meta)
            done[day] = DayReport(day.isoformat(), str(folder), content, False)
    if todo:
        progress(1.0, "done")
    return Report([done[d] for d in sorted(done)], skipped)


def describe(url: str) -> str:
    """What a database holds, as Markdown: each table with its columns and their types (numeric ones marked)."""
    with Source(url) as source:
        lines = [f"Connected to **{display_url(url)}** (read only)."]
        for table in source.tables():
            columns = ", ".join(f"{c.name} ({c.type}{', numeric' if c.numeric else ''})" for c in source.columns(table))
            lines.append(f"- **{table}**: {columns}")
    return "\n".join(lines)


def preview(spec: ReportSpec, day: dt.date) -> facts_module.Facts:
    """The facts of one day, computed and not written: what Generate would report."""
    with Source(spec.db, spec.max_rows, spec.timeout_s) as source:
        return facts_module.compute(facts_module.load(source, spec, day), spec, day)


def command_line(spec: ReportSpec, out_dir: str | Path, url: str | None = None) -> str:
    """The `workbench report` line for yesterday's report with this spec (no password in it)."""
    parts = [str(Path(sys.executable).with_name("workbench")), "report", "--db", display_url(spec.db)]
    parts += ["--table", spec.table] if spec.table else []
    parts += ["--date-column", spec.date_column, "--dimension", spec.dimension]
    for measure in spec.measures:
        parts += ["--measure", measure]
    parts += ["--lang", spec.language, "--date", "yesterday", "--out", str(Path(out_dir).resolve())]
    parts += ["--url", url] if url else []
    return shlex.join(parts)


def schedule(spec: ReportSpec, out_dir: str | Path, url: str | None = None, at: str = "07:00") -> str:
    """A cron line and a systemd timer that run the report every morning; nothing is installed or started."""
    hour, minute = (int(x) for x in at.split(":"))
    line = command_line(spec, out_dir, url)
    log = Path(out_dir).resolve() / "report.log"
    secret = (
        "# the password comes from the environment: put WORKBENCH_DB_PASSWORD=... in the crontab or in "
        "the service's Environment=, never in the URL"
    )
    return "\n".join(
        [
            "# cron (crontab -e): every morning, yesterday's report",
            secret,
            f"{minute} {hour} * * * {line} >> {shlex.quote(str(log))} 2>&1",
            "",
            "# or systemd: ~/.config/systemd/user/workbench-report.service",
            f"[Unit]\nDescription=workbench daily report\n\n[Service]\nType=oneshot\nExecStart={line}",
            "",
            "# ~/.config/systemd/user/workbench-report.timer, then: systemctl --user enable --now workbench-report.timer",
            f"[Unit]\nDescription=workbench daily report every morning\n\n[Timer]\nOnCalendar=*-*-* {hour:02d}:{minute:02d}:00\n"
            "Persistent=true\n\n[Install]\nWantedBy=timers.target",
        ]
    )
