"""demo_tools.py holds the tools the workbench ships to try function calling offline: a weather forecast and a
sales database that are DEMO DATA generated here (and say so in every result), a calculator that walks the
expression's syntax tree (never eval), the time, and two sensitive demos (an email outbox in memory, a delete
that deletes nothing). `builtin_registry` registers them; tools.py's policy decides whether a call runs.
"""

import ast
import datetime as dt
import operator
import random
import sqlite3
import time
import typing
from pathlib import Path
from zoneinfo import ZoneInfo

from workbench.tasks.tools import AuditLog, Limits, Policy, Registry, load_tools_file

WEATHER_CITIES = ("Hangzhou", "Beijing", "Shanghai", "Shenzhen", "Chengdu", "London", "New York", "Paris")
_CONDITIONS = ("sunny", "cloudy", "overcast", "light rain", "moderate rain", "thunderstorms")


def demo_weather(city: str, date: str) -> dict:
    """Deterministic demo forecast: the same city and date always give the same answer."""
    rng = random.Random(f"{city.lower()}|{date}")
    low = rng.randint(5, 22)
    condition = rng.choice(_CONDITIONS)
    return {
        "city": city,
        "date": date,
        "condition": condition,
        "low_c": low,
        "high_c": low + rng.randint(3, 9),
        "rain_probability": 0.8 if "rain" in condition or "thunder" in condition else round(rng.random() * 0.3, 2),
        "source": "DEMO DATA (workbench.tasks.demo_tools.demo_weather), not a real forecast",
    }


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def safe_arithmetic(expression: str) -> float:
    """+ - * / // % ** and parentheses over numbers; anything else is refused (no eval)."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))
        raise ValueError(f"not allowed in arithmetic: {ast.dump(node)[:40]}")

    return walk(ast.parse(expression, mode="eval"))


def make_sales_db(path: str | Path, days: int = 30, seed: int = 3) -> Path:
    """A DEMO SQLite sales database: sales(day, region, product, units, revenue)."""
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with sqlite3.connect(tmp) as db:
        db.execute("CREATE TABLE sales (day TEXT, region TEXT, product TEXT, units INTEGER, revenue REAL)")
        start = dt.date(2026, 10, 1)
        for d in range(days):
            for region in ("East", "North", "South", "West"):
                for product, price in (("GPU server", 42000.0), ("Inference license", 3800.0), ("Support", 900.0)):
                    units = rng.randint(0, 12)
                    db.execute(
                        "INSERT INTO sales VALUES (?, ?, ?, ?, ?)",
                        ((start + dt.timedelta(days=d)).isoformat(), region, product, units, units * price),
                    )
    tmp.replace(path)
    return path


def read_only_query(db_path: Path, sql: str, max_rows: int = 200) -> dict:
    """Run one SELECT on a read-only connection; writes are refused by SQLite itself."""
    if not sql.strip().lower().startswith(("select", "with")):
        raise ValueError("only SELECT queries are allowed")
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        db.set_authorizer(
            lambda action, *_: (
                sqlite3.SQLITE_OK
                if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION)
                else sqlite3.SQLITE_DENY
            )
        )
        cursor = db.execute(sql)
        columns = [c[0] for c in cursor.description or ()]
        rows = cursor.fetchmany(max_rows + 1)
    return {"columns": columns, "rows": rows[:max_rows], "truncated": len(rows) > max_rows}


def builtin_registry(data_dir: str | Path, outbox: list | None = None) -> Registry:
    """get_weather, calculator, query_sales, current_time; send_email and delete_record (sensitive demos)."""
    registry = Registry()
    db = make_sales_db(Path(data_dir) / "sales.sqlite")
    outbox = outbox if outbox is not None else []

    @registry.register
    def get_weather(city: typing.Literal[WEATHER_CITIES], date: str) -> dict:  # type: ignore[valid-type]
        """Weather forecast for a city on a date (DEMO DATA; plug a real provider in here).

        Args:
            city: city name, in English
            date: ISO date, YYYY-MM-DD
        """
        dt.date.fromisoformat(date)
        return demo_weather(city, date)

    @registry.register
    def calculator(expression: str) -> float:
        """Evaluate an arithmetic expression safely.

        Args:
            expression: numbers with + - * / // % ** and parentheses
        """
        return safe_arithmetic(expression)

    @registry.register
    def query_sales(sql: str) -> dict:
        """Read-only SQL over the DEMO sales table: sales(day TEXT, region TEXT, product TEXT, units INTEGER, revenue REAL).

        Args:
            sql: one SELECT statement
        """
        return read_only_query(db, sql)

    @registry.register
    def current_time(
        timezone: typing.Literal["UTC", "Asia/Shanghai", "Europe/London", "America/New_York"] = "UTC",
    ) -> str:
        """The current date and time.

        Args:
            timezone: an IANA time zone
        """
        return dt.datetime.now(ZoneInfo(timezone)).isoformat(timespec="seconds")

    @registry.register(sensitive=True)
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email (DEMO: it goes to an in-memory outbox). Needs confirmation.

        Args:
            to: recipient address
            subject: subject line
            body: message text
        """
        outbox.append({"to": to, "subject": subject, "body": body, "at": time.time()})
        return f"queued for {to} (demo outbox)"

    @registry.register(sensitive=True)
    def delete_record(table: typing.Literal["sales"], record_id: int) -> str:
        """Delete a record (DEMO: nothing is deleted). Needs confirmation.

        Args:
            table: the table
            record_id: the row id
        """
        return f"would delete {table} row {record_id} (demo)"

    for tool in registry.tools:  # tighten the generated schemas where a person would
        if tool.name == "get_weather":
            tool.parameters["properties"]["date"]["pattern"] = r"^\d{4}-\d{2}-\d{2}$"
        if tool.name == "send_email":
            tool.parameters["properties"]["to"]["pattern"] = r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$"
            tool.parameters["properties"]["body"]["maxLength"] = 1000
        if tool.name == "delete_record":
            tool.parameters["properties"]["record_id"]["minimum"] = 1
        if tool.name == "calculator":
            tool.parameters["properties"]["expression"]["maxLength"] = 120
        if tool.name == "query_sales":
            tool.parameters["properties"]["sql"]["maxLength"] = 300
        if tool.name == "send_email":
            tool.parameters["properties"]["subject"]["maxLength"] = 120
    return registry


def registry(data_dir: str | Path, custom: list[dict] = (), tools_file: str | Path | None = None) -> Registry:
    """The demo tools, with a tools file's and `custom` JSON-schema tools beside them."""
    found = builtin_registry(data_dir)
    for entry in custom:
        found.add_fixed(**entry)
    if tools_file:
        load_tools_file(found, tools_file)
    return found


def policy(
    data_dir: str | Path,
    audit_path: str | Path,
    custom: list[dict] = (),
    tools_file: str | Path | None = None,
    confirm=None,
    limits: Limits | None = None,
    offered: list[str] | None = None,
) -> Policy:
    """`registry(...)`'s tools (only the `offered` ones, when given) under the policy and audited to `audit_path`.
    `confirm(name, arguments) -> bool` answers for the sensitive ones (None: denied)."""
    found = registry(data_dir, custom, tools_file)
    if offered is not None:
        found = found.subset(offered)
    return Policy(found, AuditLog(audit_path), limits or Limits(), confirm)
