"""The tool policy, attacked directly: only registered tools run, arguments are validated before
anything executes, sensitive tools need confirmation, limits hold, and everything is audited."""

import enum
import json
import time
import typing

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import ConfigError
from workbench.tasks import demo_tools, tools


@pytest.fixture
def outbox():
    return []


@pytest.fixture
def policy(tmp_path, outbox):
    registry = demo_tools.builtin_registry(tmp_path / "data", outbox)
    return tools.Policy(registry, tools.AuditLog(tmp_path / "audit.jsonl"))


def test_weather_call_runs_and_is_audited(policy):
    step = policy.run("get_weather", '{"city": "Hangzhou", "date": "2026-11-26"}')
    assert step.status == "executed" and step.result["city"] == "Hangzhou"
    assert "DEMO DATA" in step.result["source"]
    assert [e["event"] for e in policy.audit.events()] == ["proposed", "executed"]


@pytest.mark.parametrize(
    "name, arguments, reason",
    [
        ("delete_user_account", {"user": "alice"}, "unknown tool 'delete_user_account'"),
        ("get_weather", {"city": "Hangzhou", "date": "2026-11-26", "api_key": "x"}, "Additional properties"),
        ("get_weather", {"city": "Atlantis", "date": "2026-11-26"}, "is not one of"),
        ("get_weather", {"city": "Hangzhou"}, "'date' is a required property"),
        ("get_weather", {"city": "Hangzhou", "date": "tomorrow"}, "does not match"),
        ("delete_record", {"table": "sales", "record_id": -1}, "less than the minimum"),
        ("send_email", {"to": "not-an-address", "subject": "s", "body": "b"}, "does not match"),
        ("get_weather", '"hangzah"', "must be a JSON object"),
        ("get_weather", "{not json", "not JSON"),
    ],
)
def test_rejected_before_anything_runs(policy, outbox, name, arguments, reason):
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    step = policy.run(name, raw)
    assert step.status == "rejected" and reason in step.reason
    assert outbox == []
    assert [e["event"] for e in policy.audit.events()] == ["proposed", "rejected"]


def test_sensitive_tools_are_denied_by_default_and_run_when_confirmed(tmp_path, outbox):
    registry = demo_tools.builtin_registry(tmp_path / "data", outbox)
    args = '{"to": "boss@example.com", "subject": "report", "body": "done"}'
    denied = tools.Policy(registry, tools.AuditLog(tmp_path / "a.jsonl")).run("send_email", args)
    assert denied.status == "denied" and outbox == []
    asked = []
    confirmed = tools.Policy(
        registry, tools.AuditLog(tmp_path / "b.jsonl"), confirm=lambda name, a: asked.append((name, a)) or True
    ).run("send_email", args)
    assert confirmed.status == "executed" and len(outbox) == 1 and asked[0][0] == "send_email"
    events = [e["event"] for e in tools.AuditLog(tmp_path / "b.jsonl").events()]
    assert events == ["proposed", "confirmed", "executed"]


def test_limits(tmp_path):
    registry = demo_tools.builtin_registry(tmp_path / "data")
    registry.register(
        lambda seconds: time.sleep(seconds) or "slept",
        name="sleep",
        parameters={"type": "object", "properties": {"seconds": {"type": "number"}}},
        description="sleep",
    )
    policy = tools.Policy(
        registry,
        tools.AuditLog(tmp_path / "audit.jsonl"),
        tools.Limits(max_calls_per_turn=2, max_argument_bytes=100, tool_timeout_s=0.5),
    )
    assert policy.run("calculator", '{"expression": "1+1"}', calls_so_far=2).reason.startswith("limit")
    big = json.dumps({"expression": "1+" * 100 + "1"})
    assert "the limit is 100" in policy.run("calculator", big).reason
    slow = policy.run("sleep", '{"seconds": 3}')
    assert slow.status == "error" and "timed out" in slow.reason


def test_tools_file(tmp_path):
    registry = tools.Registry()
    path = tmp_path / "tools.json"
    path.write_text(
        json.dumps(
            [
                {
                    "name": "lookup_order",
                    "description": "Find an order",
                    "parameters": {
                        "type": "object",
                        "properties": {"order_id": {"type": "integer"}},
                        "required": ["order_id"],
                        "additionalProperties": False,
                    },
                    "result": {"status": "shipped"},
                }
            ]
        )
    )
    assert tools.load_tools_file(registry, path) == ["lookup_order"]
    policy = tools.Policy(registry, tools.AuditLog(tmp_path / "audit.jsonl"))
    assert policy.run("lookup_order", '{"order_id": 7}').result == {"status": "shipped"}
    path.write_text(json.dumps([{"name": "broken"}]))
    with pytest.raises(ConfigError, match="lacks description, parameters, result"):
        tools.load_tools_file(registry, path)


@settings(max_examples=200, deadline=None)
@given(
    name=st.one_of(st.text(max_size=30), st.sampled_from(["get_weather", "send_email", "calculator"])),
    raw=st.one_of(
        st.text(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
            max_leaves=12,
        ).map(json.dumps),
    ),
)
def test_malformed_calls_never_crash_the_policy(tmp_path_factory, name, raw):
    folder = tmp_path_factory.mktemp("fuzz")
    policy = tools.Policy(demo_tools.builtin_registry(folder / "data"), tools.AuditLog(folder / "audit.jsonl"))
    step = policy.run(name, raw)
    assert step.status in tools.STATUSES
    assert step.status != "executed" or name in ("get_weather", "calculator")


# -- schemas derived from typed functions (pydantic) -----------------------------------------------------
class Unit(enum.Enum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Address(pydantic.BaseModel):
    city: str
    postcode: int | None = None


def plan_trip(
    stops: list[str],
    days: typing.Annotated[int, pydantic.Field(ge=1, le=14)],
    unit: Unit = Unit.celsius,
    budget: float | None = None,
    home: Address | None = None,
    pace: typing.Literal["slow", "fast"] = "slow",
) -> dict:
    """Plan a trip.

    Args:
        stops: the cities to visit, in order
        days: how long the trip lasts
    """
    return {
        "stops": stops,
        "days": days,
        "unit": unit.value,
        "budget": budget,
        "home": home.model_dump() if home else None,
        "pace": pace,
    }


@pytest.fixture
def trip_policy(tmp_path):
    registry = tools.Registry()
    registry.register(plan_trip)
    return tools.Policy(registry, tools.AuditLog(tmp_path / "audit.jsonl"))


def test_every_annotation_becomes_its_exact_schema(trip_policy):
    schema = trip_policy.registry.get("plan_trip").parameters
    props = schema["properties"]
    assert props["stops"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "the cities to visit, in order",
    }
    assert props["days"] == {"type": "integer", "minimum": 1, "maximum": 14, "description": "how long the trip lasts"}
    assert props["budget"] == {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None}
    assert schema["$defs"]["Unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"]}
    assert props["unit"] == {"$ref": "#/$defs/Unit", "default": "celsius"}
    assert schema["$defs"]["Address"]["required"] == ["city"]
    assert props["pace"]["enum"] == ["slow", "fast"]
    assert schema["required"] == ["stops", "days"] and schema["additionalProperties"] is False
    assert tools.schema_from_function(plan_trip)[0] == "Plan a trip."


@pytest.mark.parametrize(
    "arguments, reason",
    [
        ({"stops": "Paris", "days": 3}, "is not of type 'array'"),
        ({"stops": ["Paris", 7], "days": 3}, "is not of type 'string'"),
        ({"stops": ["Paris"], "days": 15}, "15 is greater than the maximum of 14"),
        ({"stops": ["Paris"], "days": 0}, "0 is less than the minimum of 1"),
        ({"stops": ["Paris"], "days": 3, "unit": "kelvin"}, "'kelvin' is not one of"),
        ({"stops": ["Paris"], "days": 3, "home": {"postcode": 1}}, "'city' is a required property"),
        ({"stops": ["Paris"], "days": 3, "pace": "medium"}, "'medium' is not one of"),
        ({"stops": ["Paris"], "days": 3, "budget": "lots"}, "'lots' is not valid"),
    ],
)
def test_typed_arguments_are_refused_before_the_function_runs(trip_policy, arguments, reason):
    step = trip_policy.run("plan_trip", json.dumps(arguments))
    assert step.status == "rejected" and reason in step.reason, step.reason


def test_valid_arguments_arrive_as_the_declared_types(trip_policy):
    step = trip_policy.run(
        "plan_trip",
        json.dumps(
            {
                "stops": ["Hangzhou", "Suzhou"],
                "days": 2,
                "unit": "fahrenheit",
                "budget": None,
                "home": {"city": "Shanghai", "postcode": 200000},
            }
        ),
    )
    assert step.status == "executed", step.reason
    assert step.result == {
        "stops": ["Hangzhou", "Suzhou"],
        "days": 2,
        "unit": "fahrenheit",
        "budget": None,
        "home": {"city": "Shanghai", "postcode": 200000},
        "pace": "slow",
    }


def test_an_argument_type_without_a_schema_is_refused_at_registration():
    def open_socket(sock: object.__class__) -> None:  # `type` has no JSON schema
        """Open it."""

    with pytest.raises(ConfigError, match="'open_socket'.*no JSON schema.*Fix: annotate"):
        tools.Registry().register(open_socket)


class Comment(pydantic.BaseModel):
    text: str
    replies: list["Comment"] = []  # a thread of any depth


class Reply(pydantic.BaseModel):
    text: str


class Thread(pydantic.BaseModel):
    text: str
    replies: list[Reply] = []  # one level: fixed depth


def test_an_unbounded_recursive_argument_type_is_refused_at_registration_with_the_reason():
    def post_thread(thread: Comment) -> str:
        """Post a comment thread."""

    def post_flat(thread: Thread) -> str:
        """Post a thread one level deep."""

    registry = tools.Registry()
    with pytest.raises(
        ConfigError,
        match=r"'post_thread'.*unbounded recursive type \(#/\$defs/Comment → "
        r"#/\$defs/Comment.*Fix: give the nesting a fixed depth",
    ):
        registry.register(post_thread)
    registry.register(post_flat)  # nesting without a cycle is fine
    assert registry.names() == ["post_flat"]
    entry = {
        "name": "tree",
        "description": "A tree.",
        "result": "ok",
        "parameters": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}},
    }
    with pytest.raises(ConfigError, match=r"'tree'.*recursive type \(# → #"):
        tools.add_entry(registry, entry)
    assert registry.names() == ["post_flat"]


def test_constrained_decoding_bounds_every_open_argument():
    limits = tools.Limits(max_string_chars=120, max_integer=10**6)
    schema = {
        "type": "object",
        "properties": {
            "to": {"type": "string"},
            "subject": {"type": "string", "maxLength": 40},
            "body": {"type": "string", "maxLength": 5000},
            "record_id": {"type": "integer", "minimum": 1},
            "table": {"type": "string", "enum": ["sales"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "score": {"type": ["number", "null"]},
        },
        "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    bounded = tools.bounded_schema(schema, limits)
    props = bounded["properties"]
    assert props["to"]["maxLength"] == 120 and props["subject"]["maxLength"] == 40 and props["body"]["maxLength"] == 120
    assert props["record_id"] == {"type": "integer", "minimum": 1, "maximum": 10**6}
    assert "maxLength" not in props["table"]  # an enum is bounded already
    assert props["tags"]["items"]["maxLength"] == 120 and props["when"]["anyOf"][0]["maxLength"] == 120
    assert (
        props["score"]["minimum"] == -(10**6) and bounded["$defs"]["Address"]["properties"]["city"]["maxLength"] == 120
    )
    assert "maxLength" not in schema["properties"]["to"]  # the tool's own schema is left as it was


def test_an_unusable_reply_is_audited_as_an_error_and_never_runs(policy, outbox):
    step = policy.record_unusable(
        '{"tool_calls": [{"tool": "send_email", "arguments": {"to": "2026-11-26,2026-11-26,',
        "the model's reply was cut off at max_tokens=400",
    )
    assert step.status == "error" and step.tool == "send_email" and "cut off" in step.reason
    assert [e["event"] for e in policy.audit.events()] == ["proposed", "error"]
    assert outbox == []
