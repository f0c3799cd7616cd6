"""facts.py computes every number of a daily report in code: per dimension value and measure, the day's total,
its changes (day over day, the same weekday last week, month to date against the previous month and a target),
the 7-day trend, and the alerts. An alert comes from a robust baseline, the median and MAD of the same weekday
over the last weeks, and carries its evidence and its thresholds; a value that reported recently and sent no
rows today is an alert too. `load` reads the rows through source.py; `compute` is arithmetic only.

The model never computes a number here: writer.py gets these facts and is checked against them.
"""

import datetime as dt
import statistics
from dataclasses import dataclass, field

from workbench.errors import ConfigError
from workbench.report.source import Source
from workbench.report.spec import ReportSpec

ALL = "ALL"  # the total over every dimension value
MAD_SCALE = 1.4826  # MAD × 1.4826 estimates σ for normal data (Rousseeuw & Croux 1993)


class NoRowsError(ConfigError):
    """The day asked for has no rows (a backfill skips such days; a single day is refused)."""


@dataclass
class History:
    """Daily sums: day (ISO) → dimension value → measure → number; and what the source says about itself."""

    days: dict[str, dict[str, dict[str, float]]]
    first_day: str
    last_day: str
    notice: str = ""


@dataclass
class Facts:
    day: str
    dimension: str
    measures: list[str]
    totals: dict[str, dict[str, float]]
    changes: dict[str, dict[str, dict[str, dict]]]
    trends: dict[str, dict[str, dict]]
    alerts: list[dict]
    rule: dict
    notice: str = ""
    series: dict = field(default_factory=dict)  # for the chart; not facts the prose may cite

    def as_dict(self) -> dict:
        return {
            "date": self.day,
            "weekday": dt.date.fromisoformat(self.day).strftime("%A"),
            "dimension": self.dimension,
            "measures": self.measures,
            "demo_data": self.notice,
            "totals": self.totals,
            "changes": self.changes,
            "trends": self.trends,
            "alerts": self.alerts,
            "rule": self.rule,
        }


def _quote(source: Source, name: str) -> str:
    prepare = source.engine.dialect.identifier_preparer
    return ".".join(prepare.quote(part) for part in name.split("."))


def _check_columns(source: Source, spec: ReportSpec) -> None:
    """Every named column exists, and every measure is numeric; refused naming the ones that exist."""
    wanted = [spec.date_column, spec.dimension, *spec.measures]
    where = f"table {spec.table!r}" if spec.table else "the spec's sql"
    if spec.table:
        columns = source.columns(spec.table)
        names, numeric = [c.name for c in columns], [c.name for c in columns if c.numeric]
        types = {c.name: c.type for c in columns}
    else:
        names, numeric, types = source.names(spec.sql), None, {}
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ConfigError(
            f"column(s) {', '.join(map(repr, missing))} do not exist in {where}. Columns: "
            f"{', '.join(names)}. Fix: name columns that exist."
        )
    if numeric is not None:
        text = [m for m in spec.measures if m not in numeric]
        if text:
            raise ConfigError(
                f"measure {text[0]!r} is {types[text[0]]}, not numeric. Numeric columns: "
                f"{', '.join(numeric) or '(none)'}. Fix: --measure with a numeric column."
            )


def load(source: Source, spec: ReportSpec, day: dt.date) -> History:
    """The daily sums the facts of `day` need: from the earlier of the baseline's first week and the previous
    month's first day, up to `day`. A day with no rows is refused, with the range the data covers."""
    import sqlalchemy as sa

    _check_columns(source, spec)
    origin = _quote(source, spec.table) if spec.table else f"({spec.sql}) AS src"
    date, dim = _quote(source, spec.date_column), _quote(source, spec.dimension)
    sums = ", ".join(f"SUM({_quote(source, m)})" for m in spec.measures)
    first_day, last_day = source.rows(f"SELECT MIN({date}), MAX({date}) FROM {origin}")[0]
    if first_day is None:
        raise ConfigError(f"{spec.table or 'the sql'} has no rows at all. Fix: point --table at the sales data.")
    baseline_start = day - dt.timedelta(weeks=spec.anomaly.weeks, days=1)
    month_start = (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    start = min(baseline_start, month_start, day - dt.timedelta(days=spec.anomaly.missing_after_days + 1))
    rows = source.rows(
        f"SELECT {date}, {dim}, {sums} FROM {origin} WHERE {date} >= :start AND {date} < :stop GROUP BY {date}, {dim}",
        {"start": start, "stop": day + dt.timedelta(days=1)},
        types={"start": sa.Date, "stop": sa.Date},
    )
    days: dict[str, dict[str, dict[str, float]]] = {}
    for when, value, *numbers in rows:
        key = str(when)[:10]
        for measure, number in zip(spec.measures, numbers):
            if number is not None and not isinstance(number, (int, float)) and type(number).__name__ != "Decimal":
                raise ConfigError(
                    f"measure {measure!r} holds {number!r}, not a number. Fix: --measure with a numeric column."
                )
            slot = days.setdefault(key, {}).setdefault(str(value), {})
            slot[measure] = slot.get(measure, 0.0) + float(number or 0)
    if day.isoformat() not in days:
        raise NoRowsError(
            f"{spec.table or 'the sql'} has no rows for {day.isoformat()} (column {spec.date_column!r}); "
            f"its data covers {str(first_day)[:10]} … {str(last_day)[:10]}. Fix: pick a day in that range."
        )
    notice = ""
    if "demo_notice" in source.tables():
        notice = str(source.rows("SELECT text FROM demo_notice")[0][0])
    return History(days, str(first_day)[:10], str(last_day)[:10], notice)


def _pct(new: float, old: float | None) -> float | None:
    return None if not old else round((new - old) / abs(old) * 100, 1)


def _shown(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.2f}"


def _money(x: float) -> float:
    return round(x, 2)


def _at(history: History, day: dt.date, value: str, measure: str) -> float | None:
    slot = history.days.get(day.isoformat(), {})
    if value == ALL:
        return _money(sum(v.get(measure, 0.0) for v in slot.values())) if slot else None
    return slot.get(value, {}).get(measure)


def _sum(history: History, first: dt.date, last: dt.date, value: str, measure: str) -> float:
    total, day = 0.0, first
    while day <= last:
        total += _at(history, day, value, measure) or 0.0
        day += dt.timedelta(days=1)
    return _money(total)


def _month_to_date(history, day, value, measure, target):
    mtd = _sum(history, day.replace(day=1), day, value, measure)
    previous_month = day.replace(day=1) - dt.timedelta(days=1)
    same_days = previous_month.replace(day=min(day.day, previous_month.day))
    before = _sum(history, previous_month.replace(day=1), same_days, value, measure)
    out = {"value": mtd, "previous_month_same_days": before, "change_pct": _pct(mtd, before)}
    if target and value == ALL:
        days_in_month = ((day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)).day
        out.update(
            target=target,
            progress_pct=round(mtd / target * 100, 1),
            month_elapsed_pct=round(day.day / days_in_month * 100, 1),
        )
    return out


def _baseline(history, day, value, measure, weeks) -> list[tuple[str, float]]:
    points = []
    for week in range(1, weeks + 1):
        earlier = day - dt.timedelta(weeks=week)
        number = _at(history, earlier, value, measure)
        if number is not None:
            points.append((earlier.isoformat(), number))
    return points


def _alert(spec, day, value, measure, actual, points, missing: bool = False) -> dict | None:
    rule = spec.anomaly
    numbers = [n for _, n in points]
    if len(numbers) < 3:
        return None
    median = statistics.median(numbers)
    mad = statistics.median(abs(n - median) for n in numbers)
    scale = max(MAD_SCALE * mad, 0.01 * abs(median), 1e-9)  # a floor: a flat history makes no MAD
    z = (actual - median) / scale
    change = _pct(actual, median)
    if not missing and (abs(z) < rule.min_robust_z or change is None or abs(change) < rule.min_change_pct):
        return None
    kind = "missing" if missing else ("drop" if actual < median else "spike")
    what = (
        f"{value} sent no rows for {day.isoformat()}"
        if missing
        else f"{measure} {_shown(actual)} on {day.strftime('%A')} {day.isoformat()}"
    )
    evidence = (
        f"{what}; the median of the same weekday over the last {rule.weeks} weeks is {_shown(median)} "
        f"(MAD {_shown(mad)}, {len(numbers)} weeks): {change:+.1f} %, robust z {z:+.1f}. Thresholds: "
        f"|z| ≥ {rule.min_robust_z:g} and |change| ≥ {rule.min_change_pct:g} %."
    )
    return {
        "dimension": spec.dimension,
        "value": value,
        "measure": measure,
        "kind": kind,
        "change": change,
        "change_pct": change,
        "actual": _money(actual),
        "baseline_median": _money(median),
        "mad": _money(mad),
        "robust_z": round(z, 1),
        "threshold": {"min_robust_z": rule.min_robust_z, "min_change_pct": rule.min_change_pct},
        "evidence": evidence,
        "history": [{"day": d, "value": _money(n)} for d, n in points],
    }


def compute(history: History, spec: ReportSpec, day: dt.date) -> Facts:
    """The facts of `day` (pure: no I/O)."""
    today = history.days[day.isoformat()]
    recent = {
        v
        for d, slot in history.days.items()
        if (day - dt.date.fromisoformat(d)).days <= spec.anomaly.missing_after_days
        for v in slot
    }
    values = sorted(today) + [ALL]
    totals = {v: {m: _money(_at(history, day, v, m) or 0.0) for m in spec.measures} for v in values}
    changes, trends, alerts = {}, {}, []
    for value in values:
        changes[value], trends[value] = {}, {}
        for measure in spec.measures:
            x = totals[value][measure]
            entry = {}
            if "day_over_day" in spec.comparisons:
                before = _at(history, day - dt.timedelta(days=1), value, measure)
                entry["day_over_day"] = {"previous": before, "change_pct": _pct(x, before)}
            if "same_weekday_last_week" in spec.comparisons:
                before = _at(history, day - dt.timedelta(days=7), value, measure)
                entry["same_weekday_last_week"] = {"previous": before, "change_pct": _pct(x, before)}
            if "month_to_date" in spec.comparisons:
                entry["month_to_date"] = _month_to_date(history, day, value, measure, spec.targets.get(measure))
            changes[value][measure] = entry
            last7 = _sum(history, day - dt.timedelta(days=6), day, value, measure)
            prev7 = _sum(history, day - dt.timedelta(days=13), day - dt.timedelta(days=7), value, measure)
            change = _pct(last7, prev7)
            trends[value][measure] = {
                "last_7_days": last7,
                "previous_7_days": prev7,
                "change_pct": change,
                "direction": "flat" if change is None or abs(change) < 3 else ("up" if change > 0 else "down"),
            }
            alert = _alert(spec, day, value, measure, x, _baseline(history, day, value, measure, spec.anomaly.weeks))
            if alert:
                alerts.append(alert)
    for value in sorted(recent - set(today)):
        for measure in spec.measures:
            alert = _alert(
                spec,
                day,
                value,
                measure,
                0.0,
                _baseline(history, day, value, measure, spec.anomaly.weeks),
                missing=True,
            )
            if alert:
                alerts.append(alert)
    alerts.sort(key=lambda a: (a["value"] == ALL, -abs(a["robust_z"])))
    return Facts(
        day.isoformat(),
        spec.dimension,
        list(spec.measures),
        totals,
        changes,
        trends,
        alerts,
        spec.anomaly.model_dump(),
        history.notice,
        series=_series(history, spec, day, values),
    )


def _series(history: History, spec: ReportSpec, day: dt.date, values: list[str], days: int = 28) -> dict:
    """value → the last `days` days of every measure (None where it sent no rows), for the report's chart."""
    span = [day - dt.timedelta(days=days - 1 - i) for i in range(days)]
    return {
        v: [{"day": d.isoformat(), **{m: _at(history, d, v, m) for m in spec.measures}} for d in span] for v in values
    }
