"""Function-calling tab: the tools and their schemas, your own JSON-schema tools, a chat turn with
every step visible, Confirm/Deny for sensitive tools while the turn waits, and the audit log."""

import json
import threading

import gradio as gr

from workbench import agent, settings, tools
from workbench.ui.context import AppContext
from workbench.ui.handlers import shows_errors
from workbench.ui.jobs import Job

CONFIRM_WAIT_S = 120


class Confirmation:
    """A sensitive call waiting for the person; denied when nobody answers in time."""

    def __init__(self):
        self.pending: tuple[str, dict] | None = None
        self.answer: bool | None = None
        self._event = threading.Event()

    def __call__(self, name: str, arguments: dict) -> bool:
        self.pending, self.answer = (name, arguments), None
        self._event.clear()
        self._event.wait(CONFIRM_WAIT_S)
        self.pending = None
        return bool(self.answer)

    def resolve(self, answer: bool) -> None:
        self.answer = answer
        self._event.set()


def _registry(custom: list[dict]) -> tools.Registry:
    registry = tools.builtin_registry(settings.cache_dir() / "tools")
    for entry in custom:
        registry.add_fixed(**entry)
    return registry


def _steps_table(job: Job | None) -> list[list]:
    steps = getattr(job, "steps", []) if job else []
    return [[s.tool, json.dumps(s.arguments, ensure_ascii=False), s.status, s.reason,
             json.dumps(s.result, ensure_ascii=False, default=str)[:300] if s.result is not None else ""] for s in steps]


def build_tools_tab(ctx: AppContext) -> None:
    audit_path = settings.cache_dir() / "tools" / "ui-audit.jsonl"
    with gr.Tab("Function calling"):
        custom = gr.State([])
        job_id = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                tool_list = gr.JSON(value=[t.openai_spec() for t in _registry([]).tools], label="Registered tools")
                new_tool = gr.Code(label="Add a tool (JSON: name, description, parameters, result, sensitive?)",
                                   language="json", value=json.dumps({
                                       "name": "lookup_order", "description": "Find an order by id",
                                       "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}},
                                                      "required": ["order_id"], "additionalProperties": False},
                                       "result": {"status": "shipped"}}, indent=2))
                add = gr.Button("Add tool")
            with gr.Column(scale=3):
                message = gr.Textbox(label="Message", value="Check tomorrow's weather in Hangzhou and tell me whether "
                                     "to take an umbrella.")
                mode = gr.Radio(list(agent.MODES), value="constrained", label="Mode")
                run = gr.Button("Run", variant="primary")
                pending = gr.Textbox(label="Waiting for confirmation", interactive=False)
                with gr.Row():
                    confirm = gr.Button("Confirm", variant="primary")
                    deny = gr.Button("Deny", variant="stop")
                answer = gr.Textbox(label="Answer", interactive=False, lines=3)
        steps = gr.Dataframe(headers=["tool", "arguments", "status", "reason", "result"], label="Steps", wrap=True)
        audit = gr.Code(label=f"Audit log (last lines of {audit_path.name})", language="json")

        @shows_errors
        def on_add(text, current):
            try:
                entry = json.loads(text)
                registry = _registry(current)
                registry.add_fixed(entry["name"], entry["description"], entry["parameters"], entry.get("result"),
                                   bool(entry.get("sensitive", False)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise gr.Error(f"not a tool: {exc}. Give name, description, parameters (a JSON schema) and result.")
            except Exception as exc:  # jsonschema.SchemaError
                raise gr.Error(f"parameters is not a valid JSON schema: {exc}") from exc
            new = [*current, {"name": entry["name"], "description": entry["description"],
                              "parameters": entry["parameters"], "result": entry.get("result"),
                              "sensitive": bool(entry.get("sensitive", False))}]
            return new, [t.openai_spec() for t in _registry(new).tools]

        @shows_errors
        def on_run(text, mode_, current):
            if not text.strip():
                raise gr.Error("Type a message first.")
            client = ctx.client()
            job = ctx.jobs.add(Job("tools"))
            job.confirmation = Confirmation()
            job.steps = []
            policy = tools.Policy(_registry(current), tools.AuditLog(audit_path), confirm=job.confirmation)
            job.run(agent.run_turn, client, policy, text, mode_, on_step=job.steps.append)
            return job.id

        @shows_errors
        def on_poll(job_id_):
            job = ctx.jobs.get(job_id_)
            lines = audit_path.read_text(encoding="utf-8").splitlines()[-12:] if audit_path.exists() else []
            if job is None:
                return "", "", [], "\n".join(lines)
            waiting = job.confirmation.pending
            note = f"{waiting[0]}({json.dumps(waiting[1], ensure_ascii=False)}) — Confirm or Deny" if waiting else ""
            text = job.error or (job.result.answer if job.result else ("running ..." if job.running else ""))
            return note, text, _steps_table(job), "\n".join(lines)

        @shows_errors
        def on_decide(job_id_, answer_: bool):
            job = ctx.jobs.get(job_id_)
            if job is None or job.confirmation.pending is None:
                raise gr.Error("Nothing is waiting for confirmation.")
            job.confirmation.resolve(answer_)
            return "confirmed" if answer_ else "denied"

        add.click(on_add, [new_tool, custom], [custom, tool_list], api_name="tools_add")
        run.click(on_run, [message, mode, custom], [job_id], api_name="tools_run")
        confirm.click(lambda j: on_decide(j, True), [job_id], [pending], api_name="tools_confirm")
        deny.click(lambda j: on_decide(j, False), [job_id], [pending], api_name="tools_deny")
        gr.Timer(1.0).tick(on_poll, [job_id], [pending, answer, steps, audit], api_name="tools_poll",
                           show_progress="hidden")
