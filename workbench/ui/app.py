"""Builds the workbench's gr.Blocks from its tabs (`build_app`, no launch) and serves it (`launch`).

The UI takes plain values (an EngineConfig, a URL, host and port) and never imports the CLI."""

from dataclasses import replace

import gradio as gr

from workbench.engine import EngineConfig
from workbench.ui.ab_tab import build_ab_tab
from workbench.ui.context import AppContext
from workbench.ui.docqa_tab import build_docqa_tab
from workbench.ui.engine_tab import build_engine_tab
from workbench.ui.plan_tab import build_plan_tab
from workbench.ui.quantize_tab import build_quantize_tab
from workbench.ui.tools_tab import build_tools_tab


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="workbench") as app:
        gr.Markdown("# workbench\nServe, quantize, plan and measure a local LLM. "
                    "The engine below is the real vLLM; every tab talks to it.")
        build_engine_tab(ctx)
        build_plan_tab(ctx)
        build_quantize_tab(ctx)
        build_docqa_tab(ctx)
        build_tools_tab(ctx)
        build_ab_tab(ctx)
    return app


def launch(config: EngineConfig | None = None, url: str | None = None, log_path: str | None = None,
           host: str = "127.0.0.1", port: int = 7860, share: bool = False) -> None:
    """Start (or attach to, when `url` is given) the engine in the background and serve the app until
    interrupted; an engine started here is stopped on the way out."""
    from workbench import processes

    config = replace(config or EngineConfig(), enable_tools=True)  # the Function calling tab needs it
    ctx = AppContext(config=config, url=url, log_path=log_path)
    processes.stop_on_signals()
    try:
        ctx.start()
        app = build_app(ctx)
        print(f"workbench UI on http://{host}:{port} (engine: {ctx.status()})", flush=True)
        app.launch(server_name=host, server_port=port, share=share)
    finally:
        ctx.stop()
