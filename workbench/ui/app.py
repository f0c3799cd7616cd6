"""Builds the workbench's gr.Blocks from its tabs (no launch here); `main()` launches it."""

import gradio as gr

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


def main(args) -> int:
    """`workbench ui`: start (or attach to) the engine in the background and serve the app."""
    from workbench import settings
    from workbench.cli import engine_config_from_args, stop_on_signals

    from dataclasses import replace

    url = args.url or settings.engine_url()
    config = replace(engine_config_from_args(args), enable_tools=True)  # the Function calling tab needs it
    ctx = AppContext(config=config, url=url,
                     log_path=settings.engine_log() if url else None)
    stop_on_signals()
    try:
        ctx.start()
        app = build_app(ctx)
        print(f"workbench UI on http://{args.ui_host}:{args.ui_port} (engine: {ctx.status()})", flush=True)
        app.launch(server_name=args.ui_host, server_port=args.ui_port, share=args.share)
    finally:
        ctx.stop()
    return 0
