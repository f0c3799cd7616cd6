"""The demo tools: a calculator that walks the syntax tree and refuses the rest with the reason, a sales
database that only reads, a forecast that is deterministic DEMO DATA and says so, and the policy built around
them with a tools file's tools beside."""

import json

import pytest

from workbench.tasks import demo_tools


@pytest.fixture
def policy(tmp_path):
    return demo_tools.policy(tmp_path / "data", tmp_path / "audit.jsonl")


@pytest.mark.parametrize("expression, value", [("2 + 3 * 4", 14), ("(1 + 1) ** 10", 1024), ("-7 // 2", -4)])
def test_calculator(policy, expression, value):
    assert policy.run("calculator", json.dumps({"expression": expression})).result == value


@pytest.mark.parametrize(
    "expression, reason",
    [
        ("__import__('os').system('id')", "ValueError: not allowed in arithmetic: Call("),
        ("open('/etc/passwd')", "ValueError: not allowed in arithmetic: Call("),
        ("2 ** 100000", "ValueError: exponent too large"),
        ("[1, 2]", "ValueError: not allowed in arithmetic: List("),
        ("a + 1", "ValueError: not allowed in arithmetic: Name("),
    ],
)
def test_calculator_refuses_anything_but_arithmetic_and_says_why(policy, expression, reason):
    """Refused by the calculator's own walk of the syntax tree, before anything runs: not a crash of the tool."""
    step = policy.run("calculator", json.dumps({"expression": expression}))
    assert (step.status, step.result) == ("error", None)
    assert step.reason.startswith(reason), step.reason
    assert policy.audit.events()[-1] == {**policy.audit.events()[-1], "event": "error", "error": step.reason}


def test_query_sales_reads_and_never_writes(policy):
    ok = policy.run("query_sales", json.dumps({"sql": "SELECT region, SUM(revenue) FROM sales GROUP BY region"}))
    assert ok.status == "executed" and len(ok.result["rows"]) == 4
    for sql in (
        "DELETE FROM sales",
        "DROP TABLE sales",
        "SELECT 1; DROP TABLE sales",
        "WITH x AS (SELECT 1) INSERT INTO sales VALUES ('d','r','p',1,1)",
        "ATTACH '/tmp/x.db' AS x",
    ):
        assert policy.run("query_sales", json.dumps({"sql": sql})).status == "error", sql
    again = policy.run("query_sales", json.dumps({"sql": "SELECT COUNT(*) FROM sales"}))
    assert again.result["rows"][0][0] == 30 * 4 * 3


def test_the_forecast_is_deterministic_demo_data_and_says_so():
    one, two = demo_tools.demo_weather("Hangzhou", "2026-11-26"), demo_tools.demo_weather("Hangzhou", "2026-11-26")
    assert one == two and "DEMO DATA" in one["source"]
    assert demo_tools.demo_weather("Hangzhou", "2026-11-27") != one


def test_the_policy_takes_a_tools_file_and_custom_tools_beside_the_demo_tools(tmp_path):
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(
        json.dumps(
            [
                {
                    "name": "lookup_order",
                    "description": "Find an order by id.",
                    "parameters": {
                        "type": "object",
                        "properties": {"order_id": {"type": "integer"}},
                        "required": ["order_id"],
                    },
                    "result": {"status": "shipped"},
                }
            ]
        )
    )
    custom = [
        {"name": "ping", "description": "Ping.", "parameters": {"type": "object", "properties": {}}, "result": "pong"}
    ]
    policy = demo_tools.policy(tmp_path / "data", tmp_path / "a.jsonl", custom, tools_file)
    assert {"get_weather", "lookup_order", "ping"} <= set(policy.registry.names())
    assert policy.run("lookup_order", {"order_id": 7}).result == {"status": "shipped"}
    assert policy.run("send_email", {"to": "a@b.cd", "subject": "s", "body": "b"}).status == "denied"


def test_only_the_offered_tools_are_callable_and_the_audit_reads_back_as_written(tmp_path):
    policy = demo_tools.policy(tmp_path / "data", tmp_path / "a.jsonl", offered=["calculator"])
    assert policy.registry.names() == ["calculator"]
    assert policy.run("calculator", {"expression": "6 * 7"}).result == 42
    assert policy.run("get_weather", {"city": "Hangzhou", "date": "2026-12-08"}).status != "executed"
    tail = policy.audit.tail(40).splitlines()
    assert [json.loads(line)["tool"] for line in tail][:1] == ["calculator"] and "get_weather" in tail[-1]
    assert policy.audit.tail(1) == tail[-1]
