"""The line at the top of every tab that needs the engine: hidden while it runs; otherwise it says why
it is not running (not started, starting, exited, unreachable) and offers Start."""

import gradio as gr

from workbench.ui.context import AppContext
from workbench.ui.handlers import shows_errors


def build_engine_notice(ctx: AppContext, needs: str) -> None:
    """`needs` completes "This tab ..." (for example "asks the model about the document")."""

    def state():
        if ctx.ready:
            return gr.Row(visible=False), ""
        return gr.Row(visible=True), (
            f"⚠️ **The engine is not running** ({ctx.status()}). This tab {needs}, "
            "so it needs the engine. What you typed or uploaded stays here."
        )

    with gr.Row(visible=not ctx.ready, variant="panel") as row:
        text = gr.Markdown(state()[1])
        start = gr.Button("Start the engine", variant="primary", scale=0, min_width=180)

    @shows_errors
    def on_start():
        ctx.start()
        return state()

    start.click(on_start, outputs=[row, text], api_visibility="undocumented")
    gr.Timer(2.0).tick(state, outputs=[row, text], show_progress="hidden", api_visibility="undocumented")
