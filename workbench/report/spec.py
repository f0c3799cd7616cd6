"""spec.py reads what a person writes for a daily report: a YAML spec (or the CLI's flags) with the database, the
table or a SELECT, the date column, the measures, the dimension, the comparisons, targets and the anomaly rule;
checked field by field, with errors that name the field and the fix. A statement that is not one SELECT is
refused here, before any connection. It connects to nothing and computes nothing.
"""

import datetime as dt
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.errors import ConfigError, field_errors
from workbench.report.source import check_select

COMPARISONS = ("day_over_day", "same_weekday_last_week", "month_to_date")
LANGUAGES = ("en", "zh")
_STRICT = ConfigDict(extra="forbid")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
EXAMPLE = """\
db: sqlite:///sales_demo.sqlite      # any SQLAlchemy URL; the password from $WORKBENCH_DB_PASSWORD
table: sales                          # or sql: a SELECT (a view) whose columns are named below
date_column: day
measures: [revenue, orders]
dimension: region
comparisons: [day_over_day, same_weekday_last_week, month_to_date]
targets: {revenue: 4800000}           # per month, for month to date
anomaly: {weeks: 8, min_robust_z: 3.5, min_change_pct: 20}
language: en
"""


class AnomalyRule(BaseModel):
    """A day is an anomaly when it is far from the median of the same weekday over the last `weeks` weeks,
    both in robust z (|x − median| / (1.4826·MAD)) and in relative change."""

    model_config = _STRICT
    weeks: int = Field(8, ge=3, le=52)
    min_robust_z: float = Field(3.5, gt=0, le=50)
    min_change_pct: float = Field(20.0, gt=0, le=100)
    missing_after_days: int = Field(28, ge=7, le=366)  # a value that reported within these days and not today


class ReportSpec(BaseModel):
    model_config = _STRICT
    db: str = Field(min_length=1)
    table: str | None = None
    sql: str | None = None
    date_column: str
    measures: list[str] = Field(min_length=1, max_length=8)
    dimension: str
    comparisons: list[Literal[COMPARISONS]] = list(COMPARISONS)  # type: ignore[valid-type]
    targets: dict[str, float] = {}
    anomaly: AnomalyRule = AnomalyRule()
    language: Literal[LANGUAGES] = "en"  # type: ignore[valid-type]
    title: str | None = None
    follow_up_queries: bool = False
    max_tokens: int = Field(400, ge=16, le=8192)  # the prose's length limit
    max_rows: int = Field(200_000, ge=100, le=10_000_000)
    timeout_s: float = Field(30.0, gt=0, le=600)

    @field_validator("table", "date_column", "dimension")
    @classmethod
    def _name(cls, value):
        if value is not None and not _NAME.match(value):
            raise ValueError(f"{value!r} is not a table or column name (letters, digits and _; schema.table allowed)")
        return value

    @field_validator("measures")
    @classmethod
    def _measures(cls, value):
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a column name (letters, digits and _)")
        if len(set(value)) != len(value):
            raise ValueError(f"a measure is named twice: {value}")
        return value

    @field_validator("sql")
    @classmethod
    def _select(cls, value):
        if value is not None:
            try:
                check_select(value, "sql")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _table_or_sql(self):
        if (self.table is None) == (self.sql is None):
            raise ValueError("give exactly one of table (a table or view) and sql (one SELECT)")
        unknown = sorted(set(self.targets) - set(self.measures))
        if unknown:
            raise ValueError(f"targets name {unknown}, which are not measures ({self.measures})")
        return self

    @property
    def source_sql(self) -> str:
        return self.sql if self.sql is not None else self.table

    def title_text(self) -> str:
        if self.title:
            return self.title
        return "区域日报" if self.language == "zh" else f"Daily {self.dimension} performance report"


def _explain(exc: ValidationError, where: str) -> ConfigError:
    lines = field_errors(exc, lambda loc: list((AnomalyRule if loc[0] == "anomaly" else ReportSpec).model_fields))
    return ConfigError(
        f"{where} is not a valid report spec: "
        + " ".join(lines)
        + " Fix the field(s) above; `workbench report --example-spec` prints a worked example."
    )


def parse_spec(data: dict, where: str = "the spec") -> ReportSpec:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where} must be a mapping of fields (db, table, date_column, measures, dimension, ...), "
            f"got {type(data).__name__}."
        )
    try:
        return ReportSpec.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, where) from None


def load_spec(path: str | Path, overrides: dict | None = None) -> ReportSpec:
    """A YAML spec; `overrides` (the CLI's flags that were given) win over its fields."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the spec {str(path)!r}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the spec {str(path)!r} is not YAML: {str(exc).splitlines()[0]}.") from None
    data = data if isinstance(data, dict) else data
    if isinstance(data, dict) and overrides:
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return parse_spec(data, f"the spec {str(path)!r}")


def parse_dates(text: str, today: dt.date | None = None) -> list[dt.date]:
    """YYYY-MM-DD, START..END (a backfill, at most 366 days), `yesterday` or `today`; never a day after today."""
    today = today or dt.date.today()
    text = text.strip()

    def one(part: str) -> dt.date:
        if part == "yesterday":
            return today - dt.timedelta(days=1)
        if part == "today":
            return today
        try:
            return dt.date.fromisoformat(part)
        except ValueError:
            raise ConfigError(
                f"date {part!r} is not YYYY-MM-DD. Use a day (2026-11-17), a range "
                "(2026-11-01..2026-11-17), yesterday or today."
            ) from None

    first, _, last = text.partition("..")
    start, end = one(first), one(last) if last else one(first)
    if end < start:
        raise ConfigError(f"the range {text!r} ends before it starts. Fix: START..END with START ≤ END.")
    if end > today:
        raise ConfigError(
            f"{end.isoformat()} is in the future (today is {today.isoformat()}); a report covers "
            "a day that has happened. Fix: pass today or an earlier day."
        )
    if (end - start).days > 366:
        raise ConfigError(f"the range {text!r} covers {(end - start).days + 1} days; backfill at most 367 at once.")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def build(spec_path: str | Path | None = None, **flags) -> ReportSpec:
    """The spec from a YAML file, the flags that were given overriding it; or from the flags alone, where every
    one of db, table, date_column, measures and dimension must be given."""
    given = {k: v for k, v in flags.items() if v not in (None, [], ())}
    if spec_path:
        return load_spec(spec_path, given)
    needed = [
        f"--{k.replace('_', '-').removesuffix('s') if k == 'measures' else k.replace('_', '-')}"
        for k in ("db", "table", "date_column", "measures", "dimension")
        if k not in given
    ]
    if needed:
        raise ConfigError(
            f"the report needs {', '.join(needed)} (or --spec FILE). Example: --db sqlite:///sales.sqlite "
            "--table sales --date-column day --measure revenue --dimension region."
        )
    return parse_spec(given, "the flags")
