"""JupyterLab as a notebook user meets it: `jupyter lab` on 127.0.0.1, notebook 02 opened in the real browser
(Chromium), every cell run from the Run menu, one planner widget moved, and the memory bar redrawn."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.ui.helpers import SCREENSHOTS
from workbench.planner import CONTEXTS
from workbench.serving.engine import free_port

pytestmark = pytest.mark.slow
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_memory_planning.ipynb"


@pytest.fixture
def jupyter_lab(engine, tmp_path):
    """`jupyter lab` without a token on a copy of notebook 02 (its autosave must not touch the repository);
    the kernel finds the session's engine through WORKBENCH_URL."""
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no "official Jupyter news?" prompt over the notebook
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port = free_port()
    log = open(tmp_path / "jupyter.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--allow-root",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings")},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "jupyter.log").read_text()
            time.sleep(0.5)
    else:
        pytest.fail("jupyter lab did not answer within 120 s")
    yield url
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.mark.cpu_build  # the notebook's last cell: the CPU build's KV cache, planned to the token
def test_notebook_02_runs_in_jupyterlab_and_the_planner_redraws(jupyter_lab, browser, engine):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{jupyter_lab}/lab/tree/{NOTEBOOK.name}")
        expect(page.locator(".jp-Notebook")).to_be_visible(timeout=120_000)
        expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=120_000)  # the kernel is up
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

        planner = page.locator(".workbench-planner")
        expect(planner).to_be_visible(timeout=180_000)
        bar = planner.locator("img").first
        expect(bar).to_be_visible()
        before = bar.get_attribute("src")
        expect(planner).to_contain_text("fits: Qwen3-14B (gptq-int4) on RTX 3090")
        expect(planner).to_contain_text("1.92 requests of 32,768 tokens")

        context_slider = planner.locator(".widget-slider").first.locator(".noUi-handle")  # "context"
        context_slider.focus()
        # 32K down to 8K over the slider's own stops (24,576 is one), one key at a time: a busy kernel drops keys
        stops = [c for c in CONTEXTS if 8192 <= c < 32_768][::-1]
        for tokens in stops:
            page.keyboard.press("ArrowLeft")
            expect(planner).to_contain_text(f"requests of {tokens:,} tokens", timeout=60_000)
        expect(planner.locator("img").first).not_to_have_attribute("src", before)
        expect(page.locator(".jp-OutputArea-output").filter(has_text="Traceback")).to_have_count(0)
        # every cell ran, the last one (the plan against the running engine) included
        expect(page.get_by_text("KV fp8: four full-length requests fit up to")).to_be_visible(timeout=120_000)
        tokens = engine.report.kv_cache_tokens  # 46592 on the CPU build; the running engine's own on a GPU
        expect(
            page.locator(".jp-OutputArea-output").filter(
                has_text=f"kv_cache_tokens      planned    {tokens}   reported    {tokens}   match True"
            )
        ).to_have_count(1, timeout=120_000)
        planner.scroll_into_view_if_needed()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab_planner.png"))
    finally:
        context.close()
