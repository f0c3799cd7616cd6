"""Helpers the UI tests share: the app served for a context, a browser tab that records the error toasts it
shows, the Chromium switches this machine needs, and the facts the tests check against."""

from pathlib import Path

from workbench.serving.engine import free_port

BUILTIN_TOOLS = ["get_weather", "calculator", "query_sales", "current_time", "send_email", "delete_record"]
CHROMIUM = "/usr/bin/chromium"
# Without the networking switches Chromium keeps calling out (Google's hosts), which this machine refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_RECORD_ERRORS = """
window.__wbErrors = [];
new MutationObserver(() => {
  document.querySelectorAll("[data-testid='toast-body'].error [data-testid='toast-text']").forEach((el) => {
    if (!el.dataset.wbSeen) { el.dataset.wbSeen = "1"; window.__wbErrors.push(el.innerText); }
  });
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def serve_app(ctx, auth=None):
    """The real app for `ctx` on a free port, as launch() serves it; returns (url, close)."""
    from workbench.ui.app import MAX_UPLOAD, build_app

    app = build_app(ctx)
    port = free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        auth=auth,
        max_file_size=MAX_UPLOAD,
    )

    def close():
        app.close()
        ctx.stop()  # stops only an engine the app started itself (a served checkpoint)

    return f"http://127.0.0.1:{port}/", close


def attached_context(engine, config=None):
    """An app attached to `engine`; `config` is what the app starts when it serves another model (default: the
    app's own defaults, as `workbench ui --url` has them)."""
    from workbench.ui.context import AppContext

    ctx = AppContext(url=engine.url, log_path=str(engine.log_path) if engine.log_path else None)
    if config is not None:
        ctx.config = config
    ctx.start(wait=True)
    return ctx


class Page:
    """A browser tab on the app, with the error toasts it has shown."""

    def __init__(self, page):
        self.page = page
        self._left = None  # the errors it held when closed

    def errors(self) -> list[str]:
        return self._left if self._left is not None else self.page.evaluate("window.__wbErrors || []")

    def close(self) -> None:
        """Close the tab, keeping its errors for the check at the end: before its app goes away, whose
        timers would otherwise meet a closed server ("This application is currently busy")."""
        if self._left is None:
            self._left = self.errors()
            self.page.context.close()

    def take_errors(self) -> list[str]:
        return self.page.evaluate("(() => { const e = window.__wbErrors || []; window.__wbErrors = []; return e; })()")

    def expect_error(self, *words: str, timeout: float = 30_000) -> str:
        """Wait for a new error toast holding all `words`, take it (and any other error recorded) and return it.
        Waits on the recorder, not on a visible toast: an older toast with the same words may still show."""
        words_js = repr(list(words))
        self.page.wait_for_function(
            f"(window.__wbErrors || []).some((e) => {words_js}.every((w) => e.includes(w)))", timeout=timeout
        )
        return next(e for e in self.take_errors() if all(w in e for w in words))

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
