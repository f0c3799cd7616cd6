"""Function-calling tab: the tools and their schemas, your own JSON-schema tools, which tools to offer
and whether a call is required, a turn with every step visible, Confirm/Deny for sensitive tools while
the turn waits, and the audit log; and BFCL v4 run through the same modes. Thinking (a reasoning model's) is
chosen per run: each step's default (off for the constrained call and the two-stage choice), on or off; BFCL can
score both.

Each browser session has its own custom tools, turn and audit log (under the cache's tools/ui-audit/);
a pending confirmation is reachable only through the session that started the turn (its job id lives
in that session's gr.State, which the HTTP API cannot set)."""

import json
import tempfile
import threading

import gradio as gr

from workbench import settings
from workbench.measurement import bfcl, toolseval
from workbench.serving.thinking import THINKING_SWITCH
from workbench.tasks import agent, demo_tools, tools
from workbench.ui.context import AppContext
from workbench.ui.handlers import HEAVY, filled, shows_errors
from workbench.ui.jobs import Job, relay, stream_pieces
from workbench.ui.notice import build_engine_notice

CONFIRM_WAIT_S = 120
_BFCL_HEADERS = ["mode", "category", "n", "accuracy", "95 % interval", "request errors"]


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
    return demo_tools.registry(settings.cache_dir() / "tools", custom)


def _steps_table(job: Job | None) -> list[list]:
    steps = getattr(job, "steps", []) if job else []
    return [
        [
            s.tool,
            json.dumps(s.arguments, ensure_ascii=False),
            s.status,
            s.reason,
            json.dumps(s.result, ensure_ascii=False, default=str)[:300] if s.result is not None else "",
        ]
        for s in steps
    ]


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
                new_tool = gr.Code(
                    label="Add a tool (JSON: name, description, parameters, result, sensitive?)",
                    language="json",
                    elem_id="tool-editor",
                    value=json.dumps(
                        {
                            "name": "lookup_order",
                            "description": "Find an order by id",
                            "parameters": {
                                "type": "object",
                                "properties": {"order_id": {"type": "integer"}},
                                "required": ["order_id"],
                                "additionalProperties": False,
                            },
                            "result": {"status": "shipped"},
                        },
                        indent=2,
                    ),
                )
                add = gr.Button("Add tool")
            with gr.Column(scale=3):
                message = gr.Textbox(
                    label="Message",
                    value="Check tomorrow's weather in Hangzhou and tell me whether to take an umbrella.",
                )
                with gr.Row():
                    mode = gr.Radio(list(agent.MODES), value=agent.DEFAULT_MODE, label="Mode")
                    few_shot = gr.Checkbox(
                        value=agent.DEFAULT_FEW_SHOT,
                        label="Few-shot examples",
                        info="worked examples in the system prompt",
                    )
                    choice = gr.Dropdown(
                        ["auto", "required", *builtin],
                        value="auto",
                        label="Tool choice",
                        info="auto: the model decides; required or a name: it must call first",
                    )
                    thinking = gr.Radio(
                        list(THINKING_SWITCH),
                        value="default",
                        label="Thinking",
                        info="default: each step's own; on needs a reasoning parser",
                    )
                offered = gr.CheckboxGroup(builtin, value=builtin, label="Tools offered to the model")
                run = gr.Button("Run", variant="primary")
                pending = gr.Textbox(label="Waiting for confirmation", interactive=False)
                with gr.Row():
                    confirm = gr.Button("Confirm", variant="primary")
                    deny = gr.Button("Deny", variant="stop")
                answer = gr.Textbox(label="Answer", interactive=False, lines=3)
        steps = gr.Dataframe(
            headers=["tool", "arguments", "status", "reason", "result"],
            label="Steps",
            wrap=True,
            elem_id="tool-steps",
            column_widths=["14%", "22%", "10%", "24%", "30%"],
        )
        audit = gr.Code(label="Audit log of this session (last lines)", language="json", elem_id="tool-audit")
        with gr.Accordion(
            "BFCL v4: score the model on the Berkeley Function Calling Leaderboard's own suite", open=False
        ):
            gr.Markdown(
                f"BFCL's own questions, function docs and AST checker (bfcl-eval {bfcl.VERSION}, downloaded "
                "once into the cache), asked through the modes above. A small model scores low; each "
                "accuracy has its 95 % Wilson interval. Entries already scored for this model are reused."
            )
            with gr.Row():
                bfcl_categories = gr.CheckboxGroup(
                    list(bfcl.CATEGORIES), value=list(bfcl.CATEGORIES), label="Categories"
                )
                bfcl_modes = gr.CheckboxGroup(list(agent.MODES), value=["constrained"], label="Modes")
                bfcl_n = gr.Number(5, label="Entries per category (0 or empty: 5)", precision=0)
                bfcl_thinking = gr.Radio(
                    list(toolseval.THINKING),
                    value="default",
                    label="Thinking",
                    info="both: each mode with thinking on against off",
                )
                bfcl_run = gr.Button("Run BFCL", variant="primary")
            bfcl_status = gr.Markdown("_no run yet_", elem_id="bfcl-status")
            bfcl_table = gr.Dataframe(
                headers=_BFCL_HEADERS, label="Accuracy per mode and category", elem_id="bfcl-table"
            )
            with gr.Row():
                bfcl_json = gr.File(label="Export JSON")
                bfcl_csv = gr.File(label="Export CSV")

        @shows_errors
        def on_add(text, current, offered_now):
            try:
                entry = json.loads(text)
            except json.JSONDecodeError as exc:
                raise gr.Error(f"not a tool: {exc}. Give name, description, parameters (a JSON schema) and result.")
            new = [*current, tools.add_entry(_registry(current), entry)]
            names = _registry(new).names()
            return (
                new,
                [t.openai_spec() for t in _registry(new).tools],
                gr.CheckboxGroup(choices=names, value=[*offered_now, entry["name"]] if offered_now else names),
                gr.Dropdown(choices=["auto", "required", *names]),
            )

        @shows_errors
        def on_run(text, mode_, current, offered_, choice_, few_shot_, thinking_="default", request: gr.Request = None):
            if not text.strip():
                raise gr.Error("Type a message first.")
            if not offered_:
                raise gr.Error("Offer at least one tool (tick it under 'Tools offered to the model').")
            if choice_ not in ("auto", "required") and choice_ not in offered_:
                raise gr.Error(f"Tool choice {choice_!r} is not among the tools offered; tick it, or choose auto.")
            client = ctx.client()
            job = ctx.jobs.add(Job("tools"))
            job.confirmation = Confirmation()
            job.steps = []
            audit_path = _audit_path(getattr(request, "session_hash", None))
            policy = demo_tools.policy(
                settings.cache_dir() / "tools", audit_path, current, confirm=job.confirmation, offered=offered_
            )
            job.audit = policy.audit
            job.run(
                agent.run_turn,
                client,
                policy,
                text,
                mode_,
                on_step=job.steps.append,
                tool_choice=choice_,
                few_shot=bool(few_shot_),
                thinking=THINKING_SWITCH.get(thinking_),
            )
            return job.id

        @shows_errors
        def on_poll(job_id_):
            job = ctx.jobs.get(job_id_)
            if job is None:
                return "", "", [], ""
            waiting = job.confirmation.pending
            note = f"{waiting[0]}({json.dumps(waiting[1], ensure_ascii=False)}) — Confirm or Deny" if waiting else ""
            text = job.error or (job.result.answer if job.result else ("running ..." if job.running else ""))
            return note, text, _steps_table(job), job.audit.tail(40)

        @shows_errors
        def on_decide(job_id_, answer_: bool):
            job = ctx.jobs.get(job_id_)
            if job is None or job.confirmation.pending is None:
                raise gr.Error("Nothing is waiting for confirmation.")
            job.confirmation.resolve(answer_)
            return "confirmed" if answer_ else "denied"

        @shows_errors
        def on_bfcl(categories, modes, per_category, thinking_="default"):
            if not categories or not modes:
                raise gr.Error("Tick at least one category and one mode.")
            client = ctx.client()
            yield "starting: reading BFCL's suite ...", None, None, None
            run = stream_pieces(
                lambda on_text: bfcl.evaluate(
                    client,
                    categories,
                    int(filled(per_category, 5)),
                    [(m, False) for m in modes],
                    on_row=lambda done, total, row: on_text(f"{done} of {total} scored ({row['mode']}, {row['id']})"),
                    thinking=toolseval.THINKING.get(thinking_, (None,)),
                )
            )
            report = yield from relay(run, lambda text: (f"running: {text}", *[gr.skip()] * 3))
            files = report.save(tempfile.mkdtemp(prefix="bfcl-"), "bfcl")
            rows = [
                [
                    t["design"],
                    t["category"],
                    t["n"],
                    f"{t['accuracy']:.0%}",
                    f"{t['ci_low']:.0%} – {t['ci_high']:.0%}",
                    t["request_errors"],
                ]
                for t in report.table()
            ]
            yield (
                f"done: {len(report.rows)} entries scored by BFCL's checker",
                rows,
                str(files["json"]),
                str(files["csv"]),
            )

        bfcl_run.click(
            on_bfcl,
            [bfcl_categories, bfcl_modes, bfcl_n, bfcl_thinking],
            [bfcl_status, bfcl_table, bfcl_json, bfcl_csv],
            api_name="tools_bfcl",
            **HEAVY,
        )
        add.click(on_add, [new_tool, custom, offered], [custom, tool_list, offered, choice], api_name="tools_add")
        run.click(on_run, [message, mode, custom, offered, choice, few_shot, thinking], [job_id], api_name="tools_run")
        confirm.click(lambda j: on_decide(j, True), [job_id], [pending], api_name="tools_confirm")
        deny.click(lambda j: on_decide(j, False), [job_id], [pending], api_name="tools_deny")
        gr.Timer(1.0).tick(
            on_poll, [job_id], [pending, answer, steps, audit], api_name="tools_poll", show_progress="hidden"
        )
