"""Engine tab: status, the start-up report, start/stop, a live log tail, and a chat box. A reasoning model's
thoughts stream into a collapsible "Thinking" message above its answer; a reply that ran out of tokens while
thinking says so instead of showing an empty answer."""

import gradio as gr

from workbench.serving.client import DEFAULT_SYSTEM_PROMPT
from workbench.serving.thinking import THINKING_SWITCH
from workbench.ui.context import AppContext
from workbench.ui.handlers import CHAT, shows_errors


def _report_md(ctx: AppContext) -> str:
    if ctx.engine is None:
        return "_no engine yet_"
    return ctx.engine.report.to_markdown()


def _text(content) -> str:
    """Gradio 6 chat messages hold a list of parts; the model wants plain text."""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or () if isinstance(part, dict))


THOUGHT = {"title": "💭 Thinking"}  # Gradio shows a message with a title collapsible; "done" folds it


def _is_thought(message: dict) -> bool:
    return bool((message.get("metadata") or {}).get("title"))


def build_engine_tab(ctx: AppContext) -> None:
    with gr.Tab("Engine"):
        with gr.Row():
            status = gr.Textbox(label="Status", value=ctx.status, interactive=False, scale=4)
            start = gr.Button("Start", variant="primary", scale=1)
            stop = gr.Button("Stop", variant="stop", scale=1)
        with gr.Row():
            report = gr.Markdown(_report_md(ctx), label="Engine report")
            log = gr.Textbox(
                label="Engine log (last lines)", lines=14, max_lines=14, interactive=False, autoscroll=True
            )
        gr.Markdown("### Try the model")
        with gr.Row():
            system = gr.Textbox(label="System prompt", value=DEFAULT_SYSTEM_PROMPT, scale=4)
            thinking = gr.Radio(
                list(THINKING_SWITCH),
                value="default",
                label="Thinking",
                scale=1,
                info="default: the model's own (Qwen3 thinks); on needs a reasoning parser",
            )
        chatbot = gr.Chatbot(label="Chat", height=320, elem_id="chat")
        with gr.Row():
            question = gr.Textbox(label="Message", placeholder="What is the capital of France?", scale=5)
            send = gr.Button("Send", scale=1)
        timings = gr.Markdown("")

        @shows_errors
        def refresh():
            return ctx.status(), _report_md(ctx), ctx.log_tail()

        @shows_errors
        def on_start():
            ctx.start()
            return refresh()

        @shows_errors
        def on_stop():
            ctx.stop()
            return refresh()

        @shows_errors
        def on_chat(message, history, system_prompt, thinking_="default"):
            history = list(history or [])
            if not message.strip():
                raise gr.Error("Type a message first.")
            client = ctx.client()
            messages = [{"role": m["role"], "content": _text(m["content"])} for m in history if not _is_thought(m)]
            messages.append({"role": "user", "content": message})
            history.append({"role": "user", "content": message})
            thought, answer = None, None
            for event in client.chat_stream(
                messages,
                system=system_prompt or None,
                temperature=0,
                max_tokens=256,
                task="chat",
                enable_thinking=THINKING_SWITCH.get(thinking_),
            ):
                if event.kind == "reasoning":
                    if thought is None:
                        thought = {"role": "assistant", "content": "", "metadata": {**THOUGHT, "status": "pending"}}
                        history.append(thought)
                    thought["content"] += event.text
                    yield history, "", ""
                elif event.kind == "content":
                    if answer is None:
                        answer = {"role": "assistant", "content": ""}
                        history.append(answer)
                    answer["content"] += event.text
                    yield history, "", ""
                elif event.kind == "done":
                    r = event.result
                    if thought is not None:
                        thought["metadata"]["status"] = "done"
                    if r.notice() and not r.text.strip():  # never an empty answer: say what happened
                        history.append({"role": "assistant", "content": f"⚠️ {r.notice()}"})
                    yield history, "", r.timing_line()

        outputs = [status, report, log]
        start.click(on_start, outputs=outputs, api_name="engine_start")
        stop.click(on_stop, outputs=outputs, api_name="engine_stop")
        gr.Timer(2.0).tick(refresh, outputs=outputs, api_name="engine_refresh", show_progress="hidden")
        chat_args = dict(
            fn=on_chat, inputs=[question, chatbot, system, thinking], outputs=[chatbot, question, timings], **CHAT
        )
        send.click(**chat_args, api_name="chat")
        question.submit(**chat_args, api_name="chat_submit")
