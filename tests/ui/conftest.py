"""The app under test, and a real browser (Debian's Chromium, driven by Playwright: no browser download).

`make test` installs chromium, chromium-driver and the fonts (scripts/install_browser.sh); without them
the browser tests are skipped with the reason. Every page records the error toasts it shows, and a
browser test fails on any it did not expect."""

import shutil
from pathlib import Path

import pytest

from workbench.engine import free_port

CHROMIUM = "/usr/bin/chromium"
# Without the networking switches Chromium keeps calling out (Google's hosts), which this machine refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
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
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, auth=auth,
               max_file_size=MAX_UPLOAD)

    def close():
        app.close()
        ctx.stop()  # stops only an engine the app started itself (a served checkpoint)

    return f"http://127.0.0.1:{port}/", close


def attached_context(engine):
    from workbench.ui.context import AppContext

    ctx = AppContext(url=engine.url, log_path=str(engine.log_path) if engine.log_path else None)
    ctx.start(wait=True)
    return ctx


@pytest.fixture(scope="session")
def app_url(engine):
    """One app for the UI tests, attached to the session's engine."""
    url, close = serve_app(attached_context(engine))
    yield url
    close()


@pytest.fixture(scope="session")
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which("chromedriver")):
        pytest.skip(f"no {CHROMIUM}: `make test` installs Debian's chromium and chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
            f"(window.__wbErrors || []).some((e) => {words_js}.every((w) => e.includes(w)))", timeout=timeout)
        return next(e for e in self.take_errors() if all(w in e for w in words))

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def open_page(browser):
    """open_page(url) → a Page on a fresh browser context (its own Gradio session); fails the test on any
    error toast left in it."""
    pages = []

    def open_(url: str, tab: str | None = None) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(_RECORD_ERRORS)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        page.get_by_role("tab", name="Engine").wait_for()
        if tab:
            page.get_by_role("tab", name=tab).click()
        pages.append(Page(page))
        return pages[-1]

    yield open_
    for page in pages:
        page.close()
        assert not page.errors(), f"error toasts: {page.errors()}"


@pytest.fixture
def idle_app_url():
    """The app as `workbench ui --no-engine` serves it: no engine started."""
    from workbench.ui.context import AppContext

    url, close = serve_app(AppContext())
    yield url
    close()
