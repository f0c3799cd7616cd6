"""The app under test, and a real browser driven by Playwright: Debian's Chromium (/usr/bin/chromium), or, where
apt's chromium is a snap (Ubuntu), Playwright's own Chromium.

`make test` installs one of them and the fonts (scripts/install_browser.sh); without a browser the browser tests
are skipped with the reason. Every page records the error toasts it shows, and a
browser test fails on any it did not expect."""

import shutil
from pathlib import Path

import pytest

from tests.ui.helpers import _RECORD_ERRORS, CHROMIUM, CHROMIUM_ARGS, Page, attached_context, serve_app


@pytest.fixture(scope="session")
def app_url(engine):
    """One app for the UI tests, attached to the session's engine."""
    url, close = serve_app(attached_context(engine))
    yield url
    close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        executable = CHROMIUM if shutil.which(CHROMIUM) else None  # None: Playwright's own Chromium
        if executable is None and not Path(playwright.chromium.executable_path).exists():
            pytest.skip(
                f"no {CHROMIUM} and no Playwright Chromium: `make test` installs one (scripts/install_browser.sh)"
            )
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
