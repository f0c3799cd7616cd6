"""Function-calling tab: the tools and their schemas, your own JSON-schema tools, which tools to offer
and whether a call is required, a turn with every step visible, Confirm/Deny for sensitive tools while
the turn waits, and the audit log.

Each browser session has its own custom tools, turn and audit log (under the cache's tools/ui-audit/);
a pending confirmation is reachable only through the session that started the turn (its job id lives
in that session's gr.State, which the HTTP API cannot set)."""

import json
import threading

import gradio as gr

from workbench import agent, demo_tools, settings, tools
from workbench.ui.context import AppContext
from workbench.ui.handlers import shows_errors
from workbench.ui.jobs import Job
from workbench.ui.notice import build_engine_notice

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
    registry = demo_tools.builtin_registry(settings.cache_dir() / "tools")
    for entry in custom:
        registry.add_fixed(**entry)
    return registry


def _steps_table(job: Job | None) -> list[list]:
    steps = getattr(job, "steps", []) if job else []
    return [[s.tool, json.dumps(s.arguments, ensure_ascii=False), s.status, s.reason,
             json.dumps(s.result, ensure_ascii=False, default=str)[:300] if s.result is not None else ""] for s in steps]


def _audit_path(session: str):
    return settings.cache_dir() / "tools" / "ui-audit" / f"{session or 'api'}.jsonl"


def build_tools_tab(ctx: AppContext) -> None:
    builtin = _registry([]).names()
    with gr.Tab("Function calling"):
        build_engine_notice(ctx, "sends your message and the tools' results to the model")
        custom = gr.State([])
        job_id = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                tool_list = gr.JSON(value=[t.openai_spec() for t in _registry([]).tools], label="Registered tools")
                new_tool = gr.Code(label="Add a tool (JSON: name, description, parameters, result, sensitive?)",
                                   language="json", elem_id="tool-editor", value=json.dumps({
                                       "name": "lookup_order", "description": "Find an order by id",
                                       "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}},
                                                      "required": ["order_id"], "additionalProperties": False},
                                       "result": {"status": "shipped"}}, indent=2))
                add = gr.Button("Add tool")
            with gr.Column(scale=3):
                message = gr.Textbox(label="Message", value="Check tomorrow's weather in Hangzhou and tell me whether "
                                     "to take an umbrella.")
                with gr.Row():
                    mode = gr.Radio(list(agent.MODES), value=agent.DEFAULT_MODE, label="Mode")
                    few_shot = gr.Checkbox(value=agent.DEFAULT_FEW_SHOT, label="Few-shot examples",
                                           info="worked examples in the system prompt")
                    choice = gr.Dropdown(["auto", "required", *builtin], value="auto", label="Tool choice",
                                         info="auto: the model decides; required or a name: it must call first")
                offered = gr.CheckboxGroup(builtin, value=builtin, label="Tools offered to the model")
                run = gr.Button("Run", variant="primary")
                pending = gr.Textbox(label="Waiting for confirmation", interactive=False)
                with gr.Row():
                    confirm = gr.Button("Confirm", variant="primary")
                    deny = gr.Button("Deny", variant="stop")
                answer = gr.Textbox(label="Answer", interactive=False, lines=3)
        steps = gr.Dataframe(headers=["tool", "arguments", "status", "reason", "result"], label="Steps", wrap=True,
                             elem_id="tool-steps", column_widths=["14%", "22%", "10%", "24%", "30%"])
        audit = gr.Code(label="Audit log of this session (last lines)", language="json", elem_id="tool-audit")

        @shows_errors
        def on_add(text, current, offered_now):
            try:
                entry = json.loads(text)
            except json.JSONDecodeError as exc:
                raise gr.Error(f"not a tool: {exc}. Give name, description, parameters (a JSON schema) and result.")
            new = [*current, tools.add_entry(_registry(current), entry)]
            names = _registry(new).names()
            return (new, [t.openai_spec() for t in _registry(new).tools],
                    gr.CheckboxGroup(choices=names, value=[*offered_now, entry["name"]] if offered_now else names),
                    gr.Dropdown(choices=["auto", "required", *names]))

        @shows_errors
        def on_run(text, mode_, current, offered_, choice_, few_shot_, request: gr.Request):
            if not text.strip():
                raise gr.Error("Type a message first.")
            if not offered_:
                raise gr.Error("Offer at least one tool (tick it under 'Tools offered to the model').")
            if choice_ not in ("auto", "required") and choice_ not in offered_:
                raise gr.Error(f"Tool choice {choice_!r} is not among the tools offered; tick it, or choose auto.")
            client = ctx.client()
            registry = _registry(current).subset(offered_)
            job = ctx.jobs.add(Job("tools"))
            job.confirmation = Confirmation()
            job.steps = []
            job.audit_path = _audit_path(getattr(request, "session_hash", None))
            policy = tools.Policy(registry, tools.AuditLog(job.audit_path), confirm=job.confirmation)
            job.run(agent.run_turn, client, policy, text, mode_, on_step=job.steps.append, tool_choice=choice_,
                    few_shot=bool(few_shot_))
            return job.id

        @shows_errors
        def on_poll(job_id_):
            job = ctx.jobs.get(job_id_)
            if job is None:
                return "", "", [], ""
            path = job.audit_path
            lines = path.read_text(encoding="utf-8").splitlines()[-40:] if path.exists() else []
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

        add.click(on_add, [new_tool, custom, offered], [custom, tool_list, offered, choice], api_name="tools_add")
        run.click(on_run, [message, mode, custom, offered, choice, few_shot], [job_id], api_name="tools_run")
        confirm.click(lambda j: on_decide(j, True), [job_id], [pending], api_name="tools_confirm")
        deny.click(lambda j: on_decide(j, False), [job_id], [pending], api_name="tools_deny")
        gr.Timer(1.0).tick(on_poll, [job_id], [pending, answer, steps, audit], api_name="tools_poll",
                           show_progress="hidden")
