"""The workbench in JupyterLab: ipywidgets that point down into the core, beside cli.py and ui/.

    from workbench import jupyter
    jupyter.planner()                 # model, GPU, weights, context, gmu, KV dtype → memory bar and curve, live
    jupyter.engine_panel(engine)      # status, start/stop, the start-up report, the log tail
    jupyter.chat(client)              # a chat box that streams
    jupyter.ab_explorer(report)       # filter the items × variants matrix, open one trial

Each returns a `View`: JupyterLab draws the live widget; where no widget manager runs (nbval, GitHub, a
notebook opened after its kernel is gone) the saved output falls back to a static picture and text of the
same state. Figures come from workbench.plots, as in the Gradio tabs.
"""

import base64
import html
import io

from markdown_it import MarkdownIt

from workbench import planner as planning  # `planner` is this module's widget
from workbench import plots, reference
from workbench.errors import WorkbenchError
from workbench.serving import hardware, model_catalog
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT
from workbench.tasks import documents


class View:
    """A widget plus the static fallback of its current state (`static()` → mime bundle)."""

    def __init__(self, widget, static, label):
        self.widget, self._static, self._label = widget, static, label

    @property
    def label(self) -> str:
        return self._label() if callable(self._label) else self._label

    def _repr_mimebundle_(self, **kwargs):
        bundle = dict(self._static())
        bundle["text/plain"] = self.label
        widget = self.widget._repr_mimebundle_(**kwargs)
        if widget:  # a kernel with ipywidgets: JupyterLab prefers the live view
            bundle.update({k: v for k, v in widget.items() if k != "text/plain"})
        return bundle


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _html(markdown_text: str) -> str:
    """Markdown (tables included) as HTML, for widgets that hold a value rather than captured output."""
    return MarkdownIt("commonmark").enable("table").render(markdown_text)


# ---------------------------------------------------------------------------------------------
# The interactive planner
def plan_for(
    model: str,
    gpu: str,
    quant: str,
    max_model_len: int,
    gmu: float | None,
    kv_dtype: str,
    vllm_version: str | None = None,
) -> "planning.PlanAnswer":
    """One plan and its context sweep: the Plan tab's planning.plan request."""
    settings = planning.ServeSettings(max_model_len=max_model_len, gpu_memory_utilization=gmu, kv_cache_dtype=kv_dtype)
    return planning.plan(
        planning.PlanRequest(
            model=model, gpu=gpu, quant=quant, settings=settings, vllm_version=vllm_version, curve=True
        )
    )


def _bar(plan, card):
    return plots.memory_bar(
        plan,
        card,
        title=f"{plan.model} ({plan.quant}) at {plan.max_model_len:,} tokens: {plan.max_concurrency} requests at once",
    )


def planner(
    model: str = reference.MODEL,
    gpu: str = reference.GPU,
    quant: str = reference.QUANT,
    max_model_len: int = reference.MAX_MODEL_LEN,
    gmu: float = 0.92,
    kv_dtype: str = "auto",
) -> View:
    """Model, GPU, weights, context, gpu_memory_utilization and KV dtype drive the plan, the memory bar and
    the concurrency curve as you move them."""
    import ipywidgets as w

    controls = {
        "model": w.Dropdown(options=list(model_catalog.CATALOG), value=model, description="model"),
        "gpu": w.Dropdown(options=list(hardware.GPU_CATALOG), value=gpu, description="GPU"),
        "quant": w.Dropdown(options=list(planning.QUANT_FORMATS), value=quant, description="weights"),
        "max_model_len": w.SelectionSlider(options=planning.CONTEXTS, value=max_model_len, description="context"),
        "gmu": w.FloatSlider(value=gmu, min=0.5, max=0.98, step=0.01, description="gmu"),
        "kv_dtype": w.ToggleButtons(options=["auto", "fp8"], value=kv_dtype, description="KV dtype"),
    }
    summary = w.HTML()
    bar, curve = w.Image(format="png"), w.Image(format="png")
    state = {}

    def values():
        return {k: c.value for k, c in controls.items()}

    def redraw(_=None):
        try:
            answer = plan_for(**values())
        except WorkbenchError as exc:  # a combination the planner refuses is shown where the plan would be
            summary.value = f"<p><b>cannot plan this</b>: {html.escape(str(exc))}</p>"
            return
        plan, card = answer.plan, answer.gpu
        state.update(plan=plan, bar=_png(_bar(plan, card)))
        summary.value = _html(plan.to_markdown())
        bar.value = state["bar"]
        curve.value = _png(plots.concurrency_curve(list(answer.curve), plan.model, card.name))

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    box = w.VBox(
        [
            w.HBox([controls["model"], controls["gpu"], controls["quant"]]),
            w.HBox([controls["max_model_len"], controls["gmu"], controls["kv_dtype"]]),
            bar,
            curve,
            summary,
        ]
    )
    box.add_class("workbench-planner")

    def static():  # the picture and plan now shown, as the saved output
        return {"image/png": base64.b64encode(state["bar"]).decode(), "text/markdown": state["plan"].to_markdown()}

    def label() -> str:
        v = values()
        return f"planner: {v['model']} ({v['quant']}) on {v['gpu']} at {v['max_model_len']:,} tokens"

    return View(box, static, label)


# ---------------------------------------------------------------------------------------------
# Engine panel and chat
def engine_panel(engine) -> View:
    """Status, Start and Stop, the start-up report and the last log lines of an `Engine`."""
    import ipywidgets as w

    status = w.HTML()
    start, stop, refresh = w.Button(description="Start"), w.Button(description="Stop"), w.Button(description="Refresh")
    report = w.HTML()
    log = w.Textarea(layout={"width": "95%", "height": "200px"}, disabled=True)

    def state() -> str:
        return (f"running at {engine.base_url}" if engine.running else "stopped") + (
            "" if engine.owned or not engine.running else " (attached: Stop leaves it running)"
        )

    def redraw(_=None):
        status.value = f"<b>engine</b>: {html.escape(state())}"
        report.value = _html(engine.report.to_markdown())
        log.value = engine.log_tail(20) or "(no log here: the engine was attached by URL)"

    def on_start(_):
        status.value = "<b>engine</b>: starting (about a minute) ..."
        try:
            engine.start()
        except WorkbenchError as exc:  # shown in the panel, one line, as the other faces show it
            status.value = f"<b>engine</b>: could not start: {html.escape(str(exc).splitlines()[0])}"
            return
        redraw()

    def on_stop(_):
        engine.stop()
        redraw()

    start.on_click(on_start)
    stop.on_click(on_stop)
    refresh.on_click(redraw)
    redraw()
    box = w.VBox([w.HBox([status, start, stop, refresh]), report, log])
    return View(
        box,
        lambda: {"text/markdown": f"**engine**: {state()}\n\n{engine.report.to_markdown()}"},
        lambda: f"engine panel: {state()}",
    )


def chat(client, system: str | None = DEFAULT_SYSTEM_PROMPT, max_tokens: int = 256, temperature: float = 0.0) -> View:
    """A message box whose answer streams in, with TTFT and tokens/s (workbench.serving.client.Client); the Engine
    tab's defaults (its system prompt, greedy decoding)."""
    import ipywidgets as w

    message = w.Text(placeholder="Ask the model ...", layout={"width": "70%"})
    send = w.Button(description="Send", button_style="primary")
    answer = w.Textarea(layout={"width": "95%", "height": "120px"}, disabled=True)
    timing = w.HTML()
    history = []

    def on_send(_):
        if not message.value.strip():
            timing.value = "type a message first"
            return
        answer.value = ""
        result = None
        try:
            for event in client.chat_stream(
                message.value, system=system, max_tokens=max_tokens, temperature=temperature
            ):
                if event.kind == "content":
                    answer.value += event.text
                result = event.result or result
        except WorkbenchError as exc:  # the message stays in its box; the reason is shown
            timing.value = f"<span style='color:#b00'>{html.escape(str(exc).splitlines()[0])}</span>"
            return
        history.append((message.value, result.text))
        timing.value = result.timing_line()

    send.on_click(on_send)
    message.on_submit(on_send)
    box = w.VBox([w.HBox([message, send]), answer, timing])

    def static():
        rows = "".join(f"<p><b>you</b>: {html.escape(q)}<br><b>model</b>: {html.escape(a)}</p>" for q, a in history)
        return {"text/html": rows or "<i>no messages yet</i>"}

    view = View(box, static, lambda: f"chat: {len(history)} message(s)")
    view.history = history

    def ask(text: str) -> str:
        """Type `text` and press Send, from code (a notebook cell, a test); returns the answer."""
        message.value = text
        on_send(None)
        return answer.value

    view.ask = ask
    return view


# ---------------------------------------------------------------------------------------------
# A/B result explorer
def ab_explorer(report) -> View:
    """Filter the items × variants matrix (all, disagreements, failures of a variant) and open one trial."""
    import ipywidgets as w

    headers, rows = report.matrix(width=60)
    shows = ["all items", "variants disagree", *[f"{name} fails" for name in report.names]]
    show = w.Dropdown(options=shows, value="all items", description="show")
    item = w.Dropdown(options=[i.id for i in report.items], description="item")
    variant = w.Dropdown(options=report.names, description="variant")
    matrix, trial = w.HTML(), w.HTML()

    def keep(item_id: str) -> bool:
        passed = [all(t.passed for t in report.cell(name, item_id)) for name in report.names]
        if show.value == "variants disagree":
            return len(set(passed)) > 1
        if show.value.endswith(" fails"):
            return not passed[report.names.index(show.value.removesuffix(" fails"))]
        return True

    def table_html(selected) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in selected)
        return f"<table><tr>{head}</tr>{body}</table>"

    def redraw_matrix(_=None):
        selected = [row for row in rows if keep(row[0])]
        matrix.value = f"<p>{len(selected)} of {len(rows)} items</p>{table_html(selected)}"
        if selected:
            item.options = [row[0] for row in selected]

    def redraw_trial(_=None):
        parts = []
        for t in report.cell(variant.value, item.value):
            failed = "; ".join(c.label for c in t.checks if not c.passed) or "none"
            parts.append(
                f"<p><b>{html.escape(t.variant)}</b> on <b>{html.escape(t.item)}</b>, repeat {t.repeat}: "
                f"{'PASS' if t.passed else 'FAIL'} (failed checks: {html.escape(failed)}; "
                f"{t.latency_s:.2f} s, {t.completion_tokens} tokens)</p>"
                f"<pre>{html.escape(t.output if t.ok else f'no answer: {t.error}')}</pre>"
            )
        trial.value = "".join(parts) or "<i>no trial</i>"

    show.observe(redraw_matrix, names="value")
    item.observe(redraw_trial, names="value")
    variant.observe(redraw_trial, names="value")
    redraw_matrix()
    redraw_trial()
    box = w.VBox([show, matrix, w.HBox([item, variant]), trial])
    return View(
        box,
        lambda: {"text/html": table_html(rows), "text/markdown": report.verdict},
        f"A/B explorer: {len(rows)} items × {len(report.names)} variants",
    )


# ---------------------------------------------------------------------------------------------
# Static displays: document QA quotes, the audit log
def highlight_quotes(doc, answer, context_chars: int = 160):
    """The passages of the document that the answer's fields quote, with each quote marked and labelled
    by its field; a quote that is not in the document is listed as such."""
    from IPython.display import HTML

    text = doc.text
    parts = []
    for f in answer.fields:
        start = documents.find_quote(doc, f.quote) if f.found and f.quote else None
        if start is None:
            reason = "not in the document" if f.found else "no sentence mentions it"
            parts.append(f"<p><b>{html.escape(f.name)}</b>: <i>{reason}</i></p>")
            continue
        end = start + len(f.quote)
        before = text[max(0, start - context_chars) : start]
        after = text[end : end + context_chars]
        verified, supported = f.marks()
        parts.append(
            f"<p><b>{html.escape(f.name)}</b> {verified} {html.escape(supported)}<br>…{html.escape(before)}"
            f"<mark title='{html.escape(f.name)}'>{html.escape(text[start:end])}</mark>{html.escape(after)}…</p>"
        )
    return HTML("".join(parts))


def audit_table(audit, last: int = 20):
    """The last events of a tools.AuditLog as a table."""
    from IPython.display import HTML

    events = list(audit.events())[-last:]
    keys = ["ts", "event", "tool", "arguments", "reason"]
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(e.get(k, '')))}</td>" for k in keys) + "</tr>" for e in events
    )
    return HTML(f"<table><tr>{head}</tr>{body}</table>")
