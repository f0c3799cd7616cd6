"""tools.py holds the tools a model may call and the policy that decides whether a call runs.

Only registered tools run; arguments are validated with jsonschema (types, ranges, enums, required,
no extra properties) before anything executes; sensitive tools run only after an explicit
confirmation and are denied by default; steps, calls, argument size and run time are limited; every
proposed, rejected, denied, confirmed and executed call goes to an append-only JSONL audit log.
It knows nothing about models: agent.py drives the loop.
"""

import copy
import datetime as dt
import inspect
import json
import re
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydantic
from docstring_parser import parse

from workbench.errors import ConfigError

STATUSES = ("executed", "rejected", "denied", "error")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict  # JSON schema of the arguments object
    fn: Callable[..., typing.Any]
    sensitive: bool = False

    def openai_spec(self) -> dict:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def schema_from_function(fn: Callable) -> tuple[str, dict]:
    """Description and argument schema from a typed function and its Google-style docstring.

    pydantic derives the schema, so every annotation it knows comes out exact: `list[str]`, optionals
    (`int | None`), `Literal` and `Enum` choices, `Annotated[int, Field(ge=1, le=10)]` bounds and nested
    models (under `$defs`). Unknown extra arguments are refused (`additionalProperties: false`)."""
    doc = parse(inspect.getdoc(fn) or "")
    described = {p.arg_name: p.description for p in doc.params}
    hints = typing.get_type_hints(fn, include_extras=True)
    fields = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (hints.get(name, str), pydantic.Field(default, description=described.get(name)))
    try:
        model = pydantic.create_model(
            f"{fn.__name__}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        schema = model.model_json_schema()
    except (pydantic.PydanticUserError, pydantic.errors.PydanticSchemaGenerationError, TypeError) as exc:
        raise ConfigError(
            f"tool {fn.__name__!r}: its arguments have no JSON schema ({str(exc).splitlines()[0]}). "
            "Fix: annotate each "
            "argument with str, int, float, bool, list[...], a Literal, an Enum or a pydantic "
            "model."
        ) from None
    _drop_titles(schema)
    schema.setdefault("required", [])
    description = " ".join(filter(None, [doc.short_description, doc.long_description]))
    return description, schema


def _drop_titles(node) -> None:
    """pydantic titles every schema node ("City", "Record Id"); a model reads the descriptions instead."""
    if isinstance(node, dict):
        if isinstance(node.get("title"), str):
            del node["title"]
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for child in value.values():
                    _drop_titles(child)
            else:
                _drop_titles(value)
    elif isinstance(node, list):
        for child in node:
            _drop_titles(child)


class Registry:
    """The whitelist. A name that is not here never runs."""

    def __init__(self):
        self._tools: dict[str, Tool] = {}

    def register(
        self,
        fn: Callable | None = None,
        *,
        sensitive: bool = False,
        name: str | None = None,
        parameters: dict | None = None,
        description: str | None = None,
    ):
        """Use as a decorator on a typed function, or call with an explicit JSON schema."""

        def add(f: Callable) -> Callable:
            import jsonschema

            if parameters is not None:
                text, schema, call = description, parameters, f
            else:  # typed: pydantic turns validated JSON (a dict for a nested model) into the declared types
                (text, schema), call = schema_from_function(f), pydantic.validate_call(f)
            tool_name = name or f.__name__
            jsonschema.Draft202012Validator.check_schema(schema)
            cycle = recursive_ref(schema)
            if cycle:
                raise ConfigError(
                    f"tool {tool_name!r}: its arguments are an unbounded recursive type "
                    f"({' → '.join(cycle)} refers back to itself), so no limit on the call's size "
                    "holds and constrained decoding could nest without end. Fix: give the nesting a "
                    "fixed depth (e.g. a child type without the recursive field)."
                )
            self._tools[tool_name] = Tool(tool_name, text or description or "", schema, call, sensitive)
            return f

        return add(fn) if fn is not None else add

    def add_fixed(
        self, name: str, description: str, parameters: dict, result: typing.Any, sensitive: bool = False
    ) -> None:
        """A JSON-schema tool whose execution returns a fixed result (for --tools-file)."""
        self.register(
            lambda **_: result, name=name, parameters=parameters, description=description, sensitive=sensitive
        )

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def subset(self, names) -> "Registry":
        """Only the named tools (the ones a person offers for this turn); an unknown name is refused."""
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            raise ConfigError(f"unknown tool(s) {', '.join(map(repr, unknown))}. Valid: {', '.join(self._tools)}.")
        subset = Registry()
        subset._tools = {n: self._tools[n] for n in names}
        return subset

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def names(self) -> list[str]:
        return list(self._tools)


@dataclass(frozen=True)
class Limits:
    max_steps_per_turn: int = 4  # model → tools → model rounds
    max_calls_per_turn: int = 8
    max_argument_bytes: int = 2048
    tool_timeout_s: float = 5.0
    # Constrained decoding bounds every argument the tool's schema leaves open, so that a small model's
    # runaway string or number ends inside max_tokens as a well-formed call (see bounded_schema).
    max_string_chars: int = 200
    max_integer: int = 10**9


def recursive_ref(schema: dict) -> list[str]:
    """A cycle of local $refs ("#", "#/$defs/Node", ...) in the schema, as the list of pointers; [] if none."""

    def refs(node, top=True) -> set[str]:
        found = set()
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                found.add(node["$ref"])
            for key, value in node.items():
                if not (top and key in ("$defs", "definitions")):
                    found |= refs(value, False)
        elif isinstance(node, list):
            for child in node:
                found |= refs(child, False)
        return found

    nodes = {"#": schema}
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            nodes[f"#/{key}/{name}"] = sub
    edges = {pointer: refs(sub) & set(nodes) for pointer, sub in nodes.items()}

    def visit(pointer, path):
        if pointer in path:
            return path[path.index(pointer) :] + [pointer]
        for nxt in sorted(edges[pointer]):
            cycle = visit(nxt, path + [pointer])
            if cycle:
                return cycle
        return []

    return visit("#", [])


def bounded_schema(schema: dict, limits: Limits) -> dict:
    """A copy of an argument schema in which every string has a maxLength and every integer (and number)
    a minimum and maximum: the schema's own where it gives them, the limits' where it does not."""

    def bound(node):
        if isinstance(node, list):
            for child in node:
                bound(child)
            return
        if not isinstance(node, dict):
            return
        kinds = node.get("type")
        kinds = set(kinds) if isinstance(kinds, list) else {kinds}
        if "string" in kinds and "enum" not in node and "const" not in node:
            node["maxLength"] = min(node.get("maxLength", limits.max_string_chars), limits.max_string_chars)
        if kinds & {"integer", "number"} and "enum" not in node and "const" not in node:
            node.setdefault("minimum", -limits.max_integer)
            node.setdefault("maximum", limits.max_integer)
        for key in ("properties", "$defs", "definitions", "patternProperties"):
            if isinstance(node.get(key), dict):
                bound(list(node[key].values()))
        for key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
            if isinstance(node.get(key), (dict, list)):
                bound(node[key])

    bounded = copy.deepcopy(schema)
    bound(bounded)
    return bounded


@dataclass(frozen=True)
class Step:
    tool: str
    arguments: typing.Any  # as parsed (or the raw text when it was not JSON)
    status: str  # one of STATUSES
    reason: str
    result: typing.Any = None

    def as_dict(self) -> dict:
        return {
            "tool": self.tool,
            "arguments": self.arguments,
            "status": self.status,
            "reason": self.reason,
            "result": self.result,
        }


class AuditLog:
    """Append-only JSONL: one line per event, never rewritten."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, event: str, tool: str, arguments: typing.Any, **fields) -> None:
        line = {
            "ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "event": event,
            "tool": tool,
            "arguments": arguments,
            **fields,
        }
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

    def events(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def tail(self, lines: int = 40) -> str:
        """The last `lines` events as written (JSON lines), for a person to read."""
        if not self.path.exists():
            return ""
        return "\n".join(self.path.read_text(encoding="utf-8").splitlines()[-lines:])


@dataclass
class Policy:
    """Decides and executes one proposed call. `confirm(tool, arguments) -> bool` answers for
    sensitive tools; without one they are denied."""

    registry: Registry
    audit: AuditLog
    limits: Limits = field(default_factory=Limits)
    confirm: Callable[[str, dict], bool] | None = None

    def run(self, name: str, raw_arguments: typing.Any, calls_so_far: int = 0) -> Step:
        arguments = raw_arguments
        self.audit.record("proposed", name, raw_arguments)
        step = self._decide(name, raw_arguments, calls_so_far)
        if isinstance(step, Step):
            self.audit.record(step.status, name, step.arguments, reason=step.reason)
            return step
        tool, arguments = step
        if tool.sensitive:
            approved = bool(self.confirm and self.confirm(name, arguments))
            if not approved:
                reason = "sensitive tool: denied (no explicit confirmation)"
                self.audit.record("denied", name, arguments, reason=reason)
                return Step(name, arguments, "denied", reason)
            self.audit.record("confirmed", name, arguments)
        result, error = _call_with_timeout(tool.fn, arguments, self.limits.tool_timeout_s)
        if error:
            self.audit.record("error", name, arguments, error=error)
            return Step(name, arguments, "error", error)
        self.audit.record("executed", name, arguments, result=result)
        return Step(name, arguments, "executed", "ok", result)

    def record_unusable(self, raw_text: str, reason: str) -> Step:
        """A reply that should have been a call but cannot be used (cut off at max_tokens, not JSON): audited
        as proposed, with the tool it names when that much can be read, and an error; nothing runs."""
        match = re.search(r'"(?:tool|name)"\s*:\s*"([^"]{1,64})"', raw_text)
        name = match.group(1) if match else "(unreadable)"
        shown = raw_text if len(raw_text) <= 300 else raw_text[:300] + f"… ({len(raw_text)} characters)"
        self.audit.record("proposed", name, shown)
        self.audit.record("error", name, shown, reason=reason)
        return Step(name, shown, "error", reason)

    def _decide(self, name, raw_arguments, calls_so_far):
        import jsonschema

        if calls_so_far >= self.limits.max_calls_per_turn:
            return Step(
                name, raw_arguments, "rejected", f"limit: at most {self.limits.max_calls_per_turn} calls per turn"
            )
        tool = self.registry.get(name) if isinstance(name, str) else None
        if tool is None:
            return Step(
                str(name),
                raw_arguments,
                "rejected",
                f"unknown tool {name!r}: only registered tools run ({', '.join(self.registry.names())})",
            )
        text = raw_arguments if isinstance(raw_arguments, str) else json.dumps(raw_arguments, default=str)
        if len(text.encode()) > self.limits.max_argument_bytes:
            return Step(
                name,
                "<too large>",
                "rejected",
                f"arguments are {len(text.encode())} bytes; the limit is {self.limits.max_argument_bytes}",
            )
        try:
            arguments = json.loads(raw_arguments) if isinstance(raw_arguments, str) else raw_arguments
        except json.JSONDecodeError as exc:
            return Step(name, raw_arguments, "rejected", f"arguments are not JSON: {exc.msg}")
        if not isinstance(arguments, dict):
            return Step(name, arguments, "rejected", f"arguments must be a JSON object, got {type(arguments).__name__}")
        errors = sorted(jsonschema.Draft202012Validator(tool.parameters).iter_errors(arguments), key=str)
        if errors:
            # best_match looks inside anyOf (an optional nested model) for the error that says what is wrong
            errors = [jsonschema.exceptions.best_match([e]) for e in errors]
            where = lambda e: "/".join(map(str, e.absolute_path)) or "(arguments)"  # noqa: E731
            return Step(
                name,
                arguments,
                "rejected",
                "invalid arguments: " + "; ".join(f"{where(e)}: {e.message}" for e in errors[:3]),
            )
        return tool, arguments


def _call_with_timeout(fn, arguments: dict, timeout_s: float):
    box = {}

    def target():
        try:
            box["result"] = fn(**arguments)
        except Exception as exc:  # noqa: BLE001 - a tool's failure is a result for the model
            box["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return None, f"timed out after {timeout_s:g} s"
    return box.get("result"), box.get("error")


def load_tools_file(registry: Registry, path: str | Path) -> list[str]:
    """Add JSON-schema tools from a file: [{"name", "description", "parameters", "result", "sensitive"?}]."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"tools file {str(path)!r} is not readable JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ConfigError(f"tools file {str(path)!r} must hold a JSON list of tools.")
    names = []
    for entry in entries:
        names.append(
            add_entry(registry, entry, "tools file entry", required=("name", "description", "parameters", "result"))[
                "name"
            ]
        )
    return names


def add_entry(
    registry: Registry, entry, where: str = "tool", required: tuple[str, ...] = ("name", "description", "parameters")
) -> dict:
    """Register one JSON-schema tool given as {"name", "description", "parameters", "result"?, "sensitive"?}
    (a tools file's entry, or one typed into the UI); returns it normalised. Refused with the reason."""
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{where} is not a JSON object. Give name, description, parameters (a JSON schema) and result."
        )
    missing = [k for k in required if k not in entry]
    if missing:
        raise ConfigError(
            f"{where} {entry.get('name', '(no name)')!r} lacks {', '.join(missing)}. Each needs name, "
            "description, parameters (a JSON schema) and result."
        )
    tool = {
        "name": entry["name"],
        "description": entry["description"],
        "parameters": entry["parameters"],
        "result": entry.get("result"),
        "sensitive": bool(entry.get("sensitive", False)),
    }
    try:
        registry.add_fixed(**tool)
    except ConfigError as exc:  # refused with its own reason (a recursive type)
        raise ConfigError(f"{where} {exc}") from None
    except Exception as exc:  # jsonschema.SchemaError: its message is the point, its str() a page
        at = "/".join(str(p) for p in getattr(exc, "path", ())) or "parameters"
        raise ConfigError(
            f"{where} {tool['name']!r}: parameters is not a valid JSON schema (at {at}: "
            f"{getattr(exc, 'message', exc)}). Fix: give a JSON schema of type object with "
            "properties."
        ) from exc
    return tool
