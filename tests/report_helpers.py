"""What the daily report's tests share: the DEMO database in a temporary folder, a file's checksum, the CLI run in
process, and a real PostgreSQL server (Debian's), started as the `postgres` user in a temporary folder on a free
port (initdb and the server refuse root: shared/reference/cpu_stack.md)."""

import contextlib
import glob
import hashlib
import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from workbench import cli
from workbench.report import demo_db

PG_PASSWORD = "s3cret-Pw-42"  # the reader's password in the test server; it must never be printed


def checksum(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_cli(*argv, env: dict | None = None) -> tuple[int, str, str]:
    """`workbench ARGV` in process: (exit code, stdout, stderr). No engine URL unless `env` gives one (the session
    exports WORKBENCH_URL for the notebooks), so the template writes the prose and the model is not asked."""
    env = {"WORKBENCH_URL": "", **(env or {})}
    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return str(Path(found[-1]).parent) if found else None


@contextlib.contextmanager
def postgres_server(sqlite_path: Path):
    """A PostgreSQL server with database `sales`: the demo rows (day as DATE), a superuser `wb` and a user
    `reader` (password PG_PASSWORD, SELECT only). Yields (port, admin URL)."""
    bindir = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    port = free_port()
    shutil.chown(folder, "postgres", "postgres")
    (folder / "pw").write_text("admin-pw\n")
    shutil.chown(folder / "pw", "postgres", "postgres")

    def as_postgres(command: str):
        subprocess.run(
            ["su", "postgres", "-s", "/bin/bash", "-c", command], check=True, capture_output=True, timeout=60
        )

    try:
        as_postgres(
            f"{bindir}/initdb -D {folder}/data -U wb --pwfile={folder}/pw --auth-local=trust --auth-host=scram-sha-256"
        )
        as_postgres(
            f"{bindir}/pg_ctl -D {folder}/data -o '-p {port} -k {folder} -c listen_addresses=127.0.0.1' "
            f"-l {folder}/pg.log -w start"
        )
        import psycopg

        admin = f"postgresql://wb:admin-pw@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute("CREATE DATABASE sales")
                    conn.execute(f"CREATE USER reader PASSWORD '{PG_PASSWORD}'")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with psycopg.connect(admin.replace("/postgres", "/sales")) as conn:
            conn.execute(
                "CREATE TABLE sales (day DATE NOT NULL, region TEXT NOT NULL, revenue DOUBLE PRECISION "
                "NOT NULL, orders INTEGER NOT NULL, units INTEGER NOT NULL)"
            )
            with conn.cursor().copy("COPY sales (day, region, revenue, orders, units) FROM STDIN") as copy:
                for row in demo_db.rows_for_copy(sqlite_path):
                    copy.write_row(row)
            conn.execute("GRANT SELECT ON sales TO reader")
        yield port, admin.replace("/postgres", "/sales")
    finally:
        subprocess.run(
            ["su", "postgres", "-s", "/bin/bash", "-c", f"{bindir}/pg_ctl -D {folder}/data -m fast stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


def postgres_checksum(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url) as conn:
        return conn.execute("SELECT md5(string_agg(s::text, '|' ORDER BY day, region)) FROM sales s").fetchone()[0]
