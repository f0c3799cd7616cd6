"""The daily report on the DEMO SQLite database: the four files and the planted anomaly named, reruns reused, a
range backfilled, every bad input refused with one line and nothing written, the database's checksum unchanged
on every path."""

import datetime as dt
import json

import pytest

from tests.report_helpers import checksum, run_cli
from workbench.errors import ConfigError, DatabaseError
from workbench.report import daily, demo_db, facts, source, spec

FLAGS = ("--table", "sales", "--date-column", "day", "--measure", "revenue", "--dimension", "region")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_db.make_demo_db(tmp_path_factory.mktemp("db") / "sales_demo.sqlite")


@pytest.fixture
def unchanged(demo):
    """The demo database's checksum is the same after the test as before it."""
    before = checksum(demo)
    yield demo
    assert checksum(demo) == before


def report(demo, out, *extra, date="2026-11-17"):
    return run_cli("report", "--db", f"sqlite:///{demo}", *FLAGS, "--date", date, "--out", str(out), *extra)


def test_the_done_when_command_writes_four_files_and_names_the_planted_drop(unchanged, tmp_path):
    code, stdout, _ = report(unchanged, tmp_path / "report")
    assert code == 0, stdout
    folder = tmp_path / "report" / "2026-11-17"
    assert sorted(p.name for p in folder.iterdir()) == ["facts.json", "report.docx", "report.html", "report.md"]
    content = json.loads((folder / "facts.json").read_text())
    assert content["totals"]["East"]["revenue"] > 0 and set(content["totals"]) == {
        "East",
        "North",
        "South",
        "West",
        "Central",
        "ALL",
    }
    alerts = [(a["dimension"], a["value"], a["measure"], a["kind"]) for a in content["alerts"]]
    assert alerts == [("region", "East", "revenue", "drop")]
    assert content["alerts"][0]["change"] < -40 and "median" in content["alerts"][0]["evidence"]
    assert "DEMO DATA" in (folder / "report.md").read_text()
    page = (folder / "report.html").read_text()
    assert "data:image/png;base64," in page and "<script" not in page and "http" not in page.split("<body>")[1]
    assert "East revenue" in stdout and "drop" in stdout


def test_a_rerun_reuses_the_day_and_json_prints_the_same_facts(unchanged, tmp_path):
    report(unchanged, tmp_path)
    stamp = (tmp_path / "2026-11-17" / "report.docx").stat().st_mtime_ns
    code, stdout, _ = report(unchanged, tmp_path, "--json")
    assert code == 0
    assert (tmp_path / "2026-11-17" / "report.docx").stat().st_mtime_ns == stamp  # reused, not redone
    printed = json.loads(stdout)
    stored = json.loads((tmp_path / "2026-11-17" / "facts.json").read_text())
    assert printed["totals"] == stored["totals"] and printed["alerts"] == stored["alerts"]


def test_a_range_backfills_each_day_and_the_region_that_stopped_reporting_is_an_alert(unchanged, tmp_path):
    code, stdout, _ = report(unchanged, tmp_path, date="2026-09-07..2026-09-09")
    assert code == 0, stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-09-07", "2026-09-08", "2026-09-09"]
    kinds = {
        d: [(a["value"], a["kind"]) for a in json.loads((tmp_path / d / "facts.json").read_text())["alerts"]]
        for d in ("2026-09-07", "2026-09-08")
    }
    assert kinds == {"2026-09-07": [], "2026-09-08": [("West", "missing")]}


def test_quiet_days_raise_no_alert_and_planted_days_do(unchanged):
    s = spec.parse_spec(
        {
            "db": f"sqlite:///{unchanged}",
            "table": "sales",
            "date_column": "day",
            "measures": ["revenue"],
            "dimension": "region",
        }
    )
    with source.Source(s.db) as src:
        for day in demo_db.QUIET_DAYS:
            when = dt.date.fromisoformat(day)
            assert facts.compute(facts.load(src, s, when), s, when).alerts == [], day
        when = dt.date(2026, 10, 1)  # the holiday: every region and the total drop
        alerts = facts.compute(facts.load(src, s, when), s, when).alerts
    assert {a["value"] for a in alerts} == {"East", "North", "South", "West", "Central", "ALL"}
    assert all(a["kind"] == "drop" and a["threshold"]["min_robust_z"] == 3.5 for a in alerts)


@pytest.mark.parametrize("case", ["unreachable", "table", "column", "write", "no rows", "future", "text measure"])
def test_bad_input_gets_one_line_and_nothing_is_written(unchanged, tmp_path, case):
    out = tmp_path / "out"
    db = f"sqlite:///{unchanged}"
    argv = {
        "unreachable": ["--db", f"sqlite:///{tmp_path}/nowhere.sqlite", *FLAGS, "--date", "2026-11-17"],
        "table": ["--db", db, *FLAGS[:1], "sales_2026", *FLAGS[2:], "--date", "2026-11-17"],
        "column": ["--db", db, *FLAGS[:6], "--dimension", "area", "--date", "2026-11-17"],
        "no rows": ["--db", db, *FLAGS, "--date", "2020-01-06"],
        "future": ["--db", db, *FLAGS, "--date", (dt.date.today() + dt.timedelta(days=1)).isoformat()],
        "text measure": ["--db", db, *FLAGS[:4], "--measure", "region", *FLAGS[6:], "--date", "2026-11-17"],
    }
    if case == "write":
        spec_file = tmp_path / "spec.yaml"
        spec_file.write_text(
            f"db: {db}\nsql: DELETE FROM sales WHERE region = 'East'\ndate_column: day\n"
            "measures: [revenue]\ndimension: region\n"
        )
        argv["write"] = ["--spec", str(spec_file), "--date", "2026-11-17"]
    code, stdout, stderr = run_cli("report", *argv[case], "--out", str(out))
    expected = {
        "unreachable": "no SQLite database at",
        "table": "Tables: demo_notice, sales",
        "column": "Columns: day, region, revenue, orders, units",
        "write": "is a DELETE statement",
        "no rows": "its data covers 2025-12-01 … 2026-11-30",
        "future": "is in the future",
        "text measure": "measure 'region' is TEXT, not numeric. Numeric columns: revenue, orders, units",
    }
    assert code == 2 and stdout == ""
    assert stderr.startswith("error: ") and expected[case] in stderr and "Fix" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM sales",
        "SELECT 1; DROP TABLE sales",
        "UPDATE sales SET units = 0",
        "WITH gone AS (DELETE FROM sales RETURNING *) SELECT * FROM gone",
        "CREATE TABLE t AS SELECT 1",
        "SELECT * INTO copy FROM sales",
        "PRAGMA writable_schema=1",
        "ATTACH DATABASE 'x.db' AS x",
    ],
)
def test_only_one_select_passes_the_parser(sql):
    with pytest.raises(ConfigError, match="only reads|only one SELECT|not SQL"):
        source.check_select(sql)


def test_a_select_with_a_cte_or_union_passes():
    assert source.check_select("WITH t AS (SELECT 1 AS x) SELECT x FROM t UNION SELECT 2;").startswith("WITH")


def test_the_sqlite_connection_itself_refuses_writes_past_the_parser(unchanged):
    import sqlalchemy as sa

    with source.Source(f"sqlite:///{unchanged}") as src, src.engine.connect() as conn:
        with pytest.raises(sa.exc.OperationalError, match="readonly"):
            conn.exec_driver_sql("DELETE FROM sales")


def test_row_and_time_limits_stop_a_query(unchanged):
    with source.Source(f"sqlite:///{unchanged}", max_rows=100) as src:
        with pytest.raises(DatabaseError, match="more than max_rows=100"):
            src.rows("SELECT * FROM sales")
    with source.Source(f"sqlite:///{unchanged}", timeout_s=0.2) as src:
        with pytest.raises(DatabaseError, match="ran past 0.2 s"):
            src.rows("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")


def test_a_spec_is_checked_field_by_field(tmp_path):
    with pytest.raises(ConfigError) as info:
        spec.parse_spec(
            {
                "db": "sqlite:///x",
                "table": "sales",
                "date_column": "day",
                "measures": ["revenue"],
                "dimension": "region",
                "anomaly": {"weeks": 1, "min_robust": 3},
            }
        )
    text = str(info.value)
    assert "anomaly.weeks: Input should be greater than or equal to 3 (got 1)" in text
    assert "anomaly.min_robust: unknown field; did you mean 'min_robust_z'?" in text
    with pytest.raises(ConfigError, match=r"targets name \['units'\], which are not measures"):
        spec.parse_spec(
            {
                "db": "sqlite:///x",
                "table": "sales",
                "date_column": "day",
                "measures": ["revenue"],
                "dimension": "region",
                "targets": {"units": 5},
            }
        )


def test_credentials_never_appear_in_a_message_or_the_schedule(unchanged, tmp_path):
    url = "postgresql+psycopg://reader:Hunter2-pw@127.0.0.1:1/sales"
    assert "Hunter2" not in source.display_url(url)
    s = spec.parse_spec(
        {"db": url, "table": "sales", "date_column": "day", "measures": ["revenue"], "dimension": "region"}
    )
    printed = daily.schedule(s, tmp_path)
    assert "Hunter2" not in printed and "--date yesterday" in printed and "0 7 * * *" in printed
    assert "OnCalendar=*-*-* 07:00:00" in printed
    code, stdout, stderr = run_cli("report", "--db", url, *FLAGS, "--date", "2026-11-17", "--out", str(tmp_path / "o"))
    assert code == 2 and "cannot be reached" in stderr and "Hunter2" not in stderr + stdout


def test_the_cli_prints_the_schedule_and_makes_the_demo_db(tmp_path):
    code, stdout, _ = run_cli("report", "--demo-db", str(tmp_path / "d.sqlite"))
    assert code == 0 and (tmp_path / "d.sqlite").is_file() and "2026-11-17 East drop" in stdout
    code, stdout, _ = run_cli("report", "--db", f"sqlite:///{tmp_path / 'd.sqlite'}", *FLAGS, "--print-schedule")
    assert code == 0 and stdout.startswith("# cron") and "report --db sqlite:///" in stdout


def test_the_example_spec_reads_and_a_sql_view_reports_what_it_selects(unchanged, tmp_path):
    (tmp_path / "daily.yaml").write_text(spec.EXAMPLE.replace("sqlite:///sales_demo.sqlite", f"sqlite:///{unchanged}"))
    example = spec.load_spec(tmp_path / "daily.yaml")
    assert example.targets == {"revenue": 4_800_000} and example.anomaly.min_robust_z == 3.5
    view = spec.parse_spec(
        {
            **example.model_dump(),
            "table": None,
            "sql": "SELECT day, region, revenue, orders FROM sales WHERE region <> 'West'",
        }
    )
    day_facts = daily.preview(view, dt.date(2026, 11, 17))
    assert set(day_facts.totals) == {"East", "North", "South", "Central", "ALL"}
    assert day_facts.changes["ALL"]["revenue"]["month_to_date"]["target"] == 4_800_000
