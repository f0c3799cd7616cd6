"""source.py opens a database for reading only, through SQLAlchemy, and runs single SELECT statements on it.

Read-only by construction, three times over: SQLite files are opened with `mode=ro` (the file cannot be
written through the connection); PostgreSQL sessions start with `default_transaction_read_only=on`; and every
statement is parsed (sqlglot) and refused unless it is one SELECT. Rows and time are limited. A password comes
from the URL or the environment ($WORKBENCH_DB_PASSWORD, or libpq's $PGPASSWORD) and is removed from every
message. It knows nothing about reports: facts.py asks it for rows.
"""

import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import ConfigError, DatabaseError

PASSWORD_ENV = "WORKBENCH_DB_PASSWORD"
URL_ENV = "WORKBENCH_DB_URL"
_FORBIDDEN = (
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Drop",
    "Create",
    "Alter",
    "Command",
    "Into",
    "TruncateTable",
    "Grant",
    "Set",
    "Transaction",
    "Commit",
    "Rollback",
    "Copy",
    "LoadData",
    "Pragma",
    "Use",
    "Lock",
)


def check_select(sql: str, where: str = "the statement") -> str:
    """`sql` if it is exactly one SELECT (WITH … SELECT and UNION included) that writes nothing; else ConfigError."""
    import sqlglot
    from sqlglot import exp

    text = sql.strip().rstrip(";").strip()
    try:
        statements = [s for s in sqlglot.parse(text) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise ConfigError(
            f"{where} is not SQL that can be read ({str(exc).splitlines()[0][:120]}). Fix: give one SELECT statement."
        ) from None
    if len(statements) != 1:
        raise ConfigError(f"{where} holds {len(statements)} statements; only one SELECT is allowed.")
    tree = statements[0]
    kinds = {type(node).__name__ for node in tree.walk()}
    forbidden = sorted(k for k in kinds if k in _FORBIDDEN)
    if not isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)) or forbidden:
        verb = forbidden[0].upper() if forbidden else type(tree).__name__.upper()
        raise ConfigError(
            f"{where} is a {verb} statement ({text[:60]!r}); the report only reads. Fix: give one SELECT statement."
        )
    return text


def _with_password(url: str):
    """The SQLAlchemy URL, ${VARS} expanded, with the password from the environment when the URL has none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    expanded = os.path.expandvars(url)
    try:
        parsed = make_url(expanded)
    except ArgumentError:
        raise ConfigError(
            f"{redact(url)!r} is not a database URL. Use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB (the password in $WORKBENCH_DB_PASSWORD)."
        ) from None
    if parsed.password is None and os.environ.get(PASSWORD_ENV) and not parsed.drivername.startswith("sqlite"):
        parsed = parsed.set(password=os.environ[PASSWORD_ENV])
    return parsed


def _secrets(url: str | None = None) -> list[str]:
    found = [os.environ.get(PASSWORD_ENV), os.environ.get("PGPASSWORD")]
    if url:
        match = re.match(r"^[\w+.-]+://[^:/@]*:([^@]*)@", os.path.expandvars(url))
        found.append(match.group(1) if match else None)
    return [s for s in found if s and len(s) >= 3]


def redact(text: str, url: str | None = None) -> str:
    """`text` with every password (the URL's and the environment's) and any user:password@ replaced by ***."""
    text = re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", str(text))
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def display_url(url: str) -> str:
    """The URL as it may be shown or logged: no password."""
    return redact(url, url)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    numeric: bool


class Source:
    """One database, read only. Use as a context manager; `rows(sql, params)` runs one SELECT."""

    def __init__(self, url: str, max_rows: int = 200_000, timeout_s: float = 30.0):
        self.url, self.max_rows, self.timeout_s = url, max_rows, timeout_s
        self._deadline = float("inf")
        self.engine = self._engine()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _engine(self):
        import sqlalchemy as sa

        parsed = _with_password(self.url)
        if parsed.drivername.startswith("sqlite"):
            path = Path(parsed.database or "")
            if not parsed.database or not path.is_file():
                raise DatabaseError(
                    f"no SQLite database at {str(path)!r} (the file does not exist). Fix: give "
                    "sqlite:///PATH to an existing file, or make the demo one with "
                    "`workbench report --demo-db PATH`."
                )

            def connect():
                db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, check_same_thread=False)
                db.set_progress_handler(lambda: int(time.monotonic() > self._deadline), 10_000)
                return db

            return sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        args = {"connect_timeout": 5} if parsed.drivername.startswith("postgresql") else {}
        if parsed.drivername.startswith("postgresql"):
            args["options"] = f"-c default_transaction_read_only=on -c statement_timeout={int(self.timeout_s * 1000)}"
        try:
            return sa.create_engine(parsed, connect_args=args, poolclass=sa.pool.NullPool)
        except Exception as exc:  # an unknown dialect or a driver that is not installed
            raise DatabaseError(
                f"cannot use {display_url(self.url)!r}: {redact(exc, self.url)}. Fix: use "
                "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB."
            ) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    def _connection(self):
        import sqlalchemy as sa

        try:
            conn = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise DatabaseError(self._why(exc)) from None
        if self.dialect == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        return conn

    def _why(self, exc) -> str:
        detail = redact(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0], self.url)
        where = display_url(self.url)
        if "password authentication failed" in detail or "no password supplied" in detail:
            return (
                f"{where}: the database refused the credentials ({detail}). Fix: set the password in "
                f"${PASSWORD_ENV} (or $PGPASSWORD) and check the user name."
            )
        if "interrupted" in detail or "statement timeout" in detail:
            return (
                f"{where}: the query ran past {self.timeout_s:g} s and was stopped. Fix: narrow it or raise timeout_s."
            )
        if any(
            w in detail
            for w in (
                "Connection refused",
                "could not connect",
                "connection failed",
                "timeout expired",
                "Name or service",
                "unable to open",
            )
        ):
            return f"{where} cannot be reached ({detail}). Fix: check the host, port and that the server runs."
        return f"{where}: {detail}"

    def rows(self, sql: str, params: dict | None = None, types: dict | None = None) -> list[tuple]:
        """The rows of one SELECT (checked first), at most max_rows, within timeout_s."""
        import sqlalchemy as sa

        statement = sa.text(check_select(sql)) if isinstance(sql, str) else sql
        if types:
            statement = statement.bindparams(*(sa.bindparam(k, type_=t) for k, t in types.items()))
        with self._connection() as conn:
            self._deadline = time.monotonic() + self.timeout_s
            try:
                result = conn.execute(statement, params or {})
                rows = result.fetchmany(self.max_rows + 1)
            except sa.exc.SQLAlchemyError as exc:
                raise DatabaseError(self._why(exc)) from None
            finally:
                self._deadline = float("inf")
                conn.rollback()
        if len(rows) > self.max_rows:
            raise DatabaseError(
                f"the query returned more than max_rows={self.max_rows:,} rows. Fix: narrow it "
                "(a shorter baseline) or raise max_rows in the spec."
            )
        return [tuple(r) for r in rows]

    def names(self, sql: str) -> list[str]:
        """The column names a SELECT returns (it runs with no rows: WHERE 1 = 0)."""
        import sqlalchemy as sa

        statement = sa.text(f"SELECT * FROM ({check_select(sql)}) AS src WHERE 1 = 0")
        with self._connection() as conn:
            try:
                return list(conn.execute(statement).keys())
            except sa.exc.SQLAlchemyError as exc:
                raise DatabaseError(self._why(exc)) from None

    def tables(self) -> list[str]:
        import sqlalchemy as sa

        with self._connection() as conn:
            inspector = sa.inspect(conn)
            return sorted(inspector.get_table_names() + inspector.get_view_names())

    def columns(self, table: str) -> list[Column]:
        """The table's columns with their types; a table that does not exist is refused, naming those that do."""
        import sqlalchemy as sa

        names = self.tables()
        if table not in names:
            raise ConfigError(
                f"table {table!r} does not exist in {display_url(self.url)}. Tables: "
                f"{', '.join(names) or '(none)'}. Fix: pass --table with one of them."
            )
        with self._connection() as conn:
            found = sa.inspect(conn).get_columns(table)
        return [Column(c["name"], str(c["type"]), _numeric(c["type"])) for c in found]


def _numeric(sql_type) -> bool:
    try:
        return sql_type.python_type in (int, float) or sql_type.python_type.__name__ == "Decimal"
    except NotImplementedError:
        return False
