"""Builds the workbench's gr.Blocks from its tabs (`build_app`, no launch) and serves it (`launch`).

The UI takes plain values (an EngineConfig, a URL, host, port, auth) and never imports the CLI.

Safe by default: it binds 127.0.0.1; a non-loopback address or a share link needs a password
(`auth`, or WORKBENCH_AUTH=user:password), since whoever reaches the app drives the engine and its tools.

Many users at once (a workshop): per-user values live in gr.State; the engine is shared on purpose.
The queue keeps a heavy run from starving chat: chat has its own pool of 16 workers (handlers.CHAT);
the long runs (A/B tests, document QA, benchmarks) share 2 (handlers.HEAVY); everything else (plans, polls,
uploads, tool turns, which run in the background) runs DEFAULT_CONCURRENCY at a time; at most
QUEUE_SIZE requests wait. One quantization runs at a time on the machine (quantize_tab).
"""

import ipaddress
from dataclasses import replace

import gradio as gr

from workbench.errors import ConfigError
from workbench.serving import processes
from workbench.serving.engine import EngineConfig
from workbench.ui.ab_tab import build_ab_tab
from workbench.ui.bench_tab import build_bench_tab
from workbench.ui.compare_tab import build_compare_tab
from workbench.ui.context import AppContext
from workbench.ui.docqa_tab import build_docqa_tab
from workbench.ui.engine_tab import build_engine_tab
from workbench.ui.plan_tab import build_plan_tab
from workbench.ui.quantize_tab import build_quantize_tab
from workbench.ui.report_tab import build_report_tab
from workbench.ui.tools_tab import build_tools_tab

DEFAULT_CONCURRENCY = 8
QUEUE_SIZE = 128
MAX_UPLOAD = "50mb"  # documents.py refuses text over its own limit; this stops a file before it is stored


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="workbench") as app:
        gr.Markdown(
            "# workbench\nServe, quantize, plan and measure a local LLM. "
            "The engine below is the real vLLM; every tab talks to it."
        )
        build_engine_tab(ctx)
        build_plan_tab(ctx)
        build_quantize_tab(ctx)
        build_docqa_tab(ctx)
        build_tools_tab(ctx)
        build_ab_tab(ctx)
        build_bench_tab(ctx)
        build_compare_tab(ctx)
        build_report_tab(ctx)
    app.queue(default_concurrency_limit=DEFAULT_CONCURRENCY, max_size=QUEUE_SIZE)
    return app


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """'user:password' → (user, password); None or '' → None."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ConfigError(
            "auth must be user:password (both parts non-empty), for example --auth ada:lovelace-1843. "
            "Fix: give it in that form, on the command line or in WORKBENCH_AUTH."
        )
    return user, password


def check_exposure(host: str, share: bool, auth: tuple[str, str] | None) -> None:
    """Refuse to serve beyond this machine without a password."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False  # a host name other than localhost
    if (share or not loopback) and auth is None:
        where = "a public share link" if share else f"{host} (reachable from other machines)"
        raise ConfigError(
            f"serving the workbench on {where} without a password would let anyone who reaches it "
            "drive the engine and its tools. Fix: add --auth user:password (or set "
            "WORKBENCH_AUTH=user:password), or keep --ui-host 127.0.0.1 without --share."
        )


def launch(
    config: EngineConfig | None = None,
    url: str | None = None,
    log_path: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    auth: str | None = None,
    start_engine: bool = True,
) -> None:
    """Start (or attach to, when `url` is given) the engine in the background and serve the app until
    interrupted; an engine started here is stopped on the way out. With start_engine=False the app
    serves Plan and the read-only parts, and the tabs that need the engine offer Start."""
    credentials = parse_auth(auth)
    check_exposure(host, share, credentials)
    config = config or EngineConfig()
    if config.enable_tools is None:  # the Function calling tab needs tools; `--no-tools` (False) is respected
        config = replace(config, enable_tools=True)
    ctx = AppContext(config=config, url=url, log_path=log_path)
    processes.stop_on_signals()
    try:
        if start_engine:
            ctx.start()
        app = build_app(ctx)
        print(f"workbench UI on http://{host}:{port} (engine: {ctx.status()})", flush=True)
        app.launch(server_name=host, server_port=port, share=share, auth=credentials, max_file_size=MAX_UPLOAD)
    finally:
        ctx.stop()
