"""The daily report on a real PostgreSQL server (Debian's, started by the test as the `postgres` user in a
temporary folder on a free port): the same facts as on SQLite, a read-only session, wrong credentials and an
unreachable server refused in one line without the password, and the table's checksum unchanged."""

import json
import os

import pytest

from tests.report_helpers import PG_PASSWORD, checksum, postgres_bin, postgres_checksum, postgres_server, run_cli
from workbench.report import demo_db, source

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        postgres_bin() is None,
        reason="Debian's postgresql is not installed, and "
        "scripts/install.sh could not install it (it needs root and apt-get)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="starting the server as the `postgres` user needs root"),
]
FLAGS = (
    "--table",
    "sales",
    "--date-column",
    "day",
    "--measure",
    "revenue",
    "--measure",
    "orders",
    "--dimension",
    "region",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = demo_db.make_demo_db(tmp_path_factory.mktemp("pg") / "demo.sqlite")
    with postgres_server(path) as (port, admin):
        yield port, admin, path


def test_postgres_gives_the_same_facts_as_sqlite_and_writes_nothing(server, tmp_path):
    port, admin, sqlite_path = server
    before, sqlite_before = postgres_checksum(admin), checksum(sqlite_path)
    url = f"postgresql+psycopg://reader@127.0.0.1:{port}/sales"
    code, stdout, stderr = run_cli(
        "report",
        "--db",
        url,
        *FLAGS,
        "--date",
        "2026-11-17",
        "--out",
        str(tmp_path / "pg"),
        "--json",
        env={"WORKBENCH_DB_PASSWORD": PG_PASSWORD},
    )
    assert code == 0, stderr
    pg = json.loads(stdout)
    code, stdout, _ = run_cli(
        "report",
        "--db",
        f"sqlite:///{sqlite_path}",
        *FLAGS,
        "--date",
        "2026-11-17",
        "--out",
        str(tmp_path / "lite"),
        "--json",
    )
    lite = json.loads(stdout)
    assert pg["totals"] == lite["totals"] and pg["alerts"] == lite["alerts"]
    assert [(a["value"], a["kind"]) for a in pg["alerts"]] == [("East", "drop"), ("East", "drop")]
    stored = (tmp_path / "pg" / "2026-11-17" / "facts.json").read_text() + stderr
    assert PG_PASSWORD not in stored
    assert postgres_checksum(admin) == before and checksum(sqlite_path) == sqlite_before


def test_the_session_is_read_only_even_for_a_statement_past_the_parser(server):
    import sqlalchemy as sa

    port, admin, _ = server
    before = postgres_checksum(admin)
    os.environ["WORKBENCH_DB_PASSWORD"] = PG_PASSWORD
    try:
        with source.Source(f"postgresql+psycopg://reader@127.0.0.1:{port}/sales") as src:
            assert src.rows("SELECT count(*) FROM sales")[0][0] > 1000
            with src.engine.connect() as conn, pytest.raises(sa.exc.InternalError, match="read-only transaction"):
                conn.exec_driver_sql("DELETE FROM sales")
        with source.Source(admin) as src, src.engine.connect() as conn:  # even the superuser's session
            with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
                conn.exec_driver_sql("DELETE FROM sales")
    finally:
        del os.environ["WORKBENCH_DB_PASSWORD"]
    assert postgres_checksum(admin) == before


@pytest.mark.parametrize("case", ["wrong password", "unreachable", "no password"])
def test_a_refused_login_or_a_closed_port_is_one_line_without_the_password(server, tmp_path, case):
    port, admin, _ = server
    before = postgres_checksum(admin)
    url = {
        "wrong password": f"postgresql+psycopg://reader:{PG_PASSWORD}x@127.0.0.1:{port}/sales",
        "unreachable": f"postgresql+psycopg://reader:{PG_PASSWORD}@127.0.0.1:1/sales",
        "no password": f"postgresql+psycopg://reader@127.0.0.1:{port}/sales",
    }[case]
    code, stdout, stderr = run_cli("report", "--db", url, *FLAGS, "--date", "2026-11-17", "--out", str(tmp_path / "o"))
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1
    assert ("refused the credentials" if case != "unreachable" else "cannot be reached") in stderr
    assert PG_PASSWORD not in stderr and "***" in stderr if case != "no password" else True
    assert not (tmp_path / "o").exists() and postgres_checksum(admin) == before
