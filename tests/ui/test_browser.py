"""Every tab's main flow, clicked in a real browser against the real engine, as a person meets it: what the
widgets hold is what is sent (an emptied number is 0). Each test saves its screenshot to docs/screenshots/,
which the documentation site shows, and fails on any error toast."""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[1] / "data" / "public_logs.json"
MINUTE = 60_000
expect.set_options(timeout=15_000)


def test_engine_tab_reports_the_engine_and_chat_answers(app_url, open_page, engine):
    ui = open_page(app_url)
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    expect(panel.get_by_role("textbox", name="Status", exact=True)).to_have_value(
        re.compile(r"^running: attached to http")
    )
    expect(panel.get_by_text(f"({engine.report.kv_cache_tokens:,} tokens)")).to_be_visible()  # the report, in words
    panel.get_by_role("textbox", name="Message").fill("What is the capital of France?")
    panel.get_by_role("button", name="Send").click()
    expect(page.get_by_text("TTFT")).to_be_visible(timeout=MINUTE)
    expect(page.locator("#chat [data-testid='bot']").last).to_contain_text("Paris")
    ui.shot("engine")


def test_plan_tab_with_its_default_form_needs_no_engine(idle_app_url, open_page):
    ui = open_page(idle_app_url, tab="Plan")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    panel.get_by_role("button", name="Plan", exact=True).click()
    expect(page.get_by_text("✅ fits")).to_be_visible()
    expect(page.locator("#plan-command textarea")).to_have_value(re.compile(r"^vllm serve ./Qwen3-14B-gptq-int4 "))
    expect(page.get_by_text("Checkpoint: No gptq-int4 checkpoint of Qwen3-14B is published")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("plot"))).to_have_count(2)
    # the first start compiles the model; the tab says what every restart gets
    expect(panel).to_contain_text("1.92 requests of 32,768 tokens")
    expect(panel).to_contain_text("a restart reads torch.compile's cache and peaks lower: 10.81 GiB of KV cache")
    ui.shot("plan")


def test_plan_tab_calibrates_from_a_pasted_start_up_log(idle_app_url, open_page):
    """A user pastes their own `vllm serve` log (a public one here: Llama-3.1-8B on an A100 40GB), plans
    another context from it, and gets a clear error for text that is not a start-up log."""
    rows = {r["id"]: r for r in json.loads(DATA.read_text())["rows"]}
    log = "\n".join(rows["llama31-8b-bf16-a100-40gb-128k-v0.15-eager"]["lines"])
    ui = open_page(idle_app_url, tab="Plan")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    for label, value in (
        ("Model (or a folder path)", "Llama-3.1-8B"),
        ("GPU (or type another card's name)", "A100 40GB"),
        ("Weights", "bf16"),
    ):
        box = panel.get_by_role("combobox", name=label)
        box.click()
        page.get_by_role("option", name=value, exact=True).click()
        expect(box).to_have_value(value)
    panel.get_by_label("max_model_len").fill("32768")
    page.get_by_text("Calibrate from your own vLLM start-up log").click()
    page.locator("#plan-log textarea").fill("hello, this is not a log")
    panel.get_by_role("button", name="Plan", exact=True).click()
    ui.expect_error("is not a vLLM start-up log", "Available KV cache memory")
    page.locator("[data-testid='toast-close']").first.click()
    page.locator("#plan-log textarea").fill(log)
    panel.get_by_role("button", name="Plan", exact=True).click()
    expect(page.get_by_text("Calibrated from your start-up log")).to_be_visible()
    expect(page.get_by_text("kv_cache_gib +0.0")).to_be_visible()  # the fit gives the log back
    expect(page.locator("table").first).to_contain_text("14.99")  # the log's measured weights, not 14.96
    expect(page.get_by_text(re.compile(r"✅ fits: Llama-3.1-8B \(bf16\) on A100 40GB"))).to_be_visible()
    expect(page.locator("#plan-command textarea")).to_have_value(
        re.compile(r"--max-model-len 32768 --gpu-memory-utilization 0.90")
    )
    ui.shot("plan_calibrated")


def test_quantize_tab_starts_and_cancels(app_url, open_page, tmp_path):
    ui = open_page(app_url, tab="Quantize")
    panel = ui.page.get_by_role("tabpanel")
    panel.get_by_role("textbox", name="Output folder (empty: under the cache)").fill(str(tmp_path / "gptq"))
    panel.get_by_role("button", name="Quantize", exact=True).click()
    status = panel.get_by_role("textbox", name="Status", exact=True)
    expect(status).to_have_value(re.compile(r"^quantize: (loading|layer)"), timeout=MINUTE)
    panel.get_by_role("button", name="Cancel", exact=True).click()
    expect(status).to_have_value("cancelled: nothing was written", timeout=MINUTE)
    assert not (tmp_path / "gptq").exists()
    ui.shot("quantize")


def test_document_qa_tab_on_a_chinese_pdf(app_url, open_page, tmp_path):
    from workbench.tasks import docqa_dataset

    facts = docqa_dataset.make_contract(tmp_path / "服务合同.pdf", "zh", 3_000, seed=5)
    ui = open_page(app_url, tab="Document QA")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    page.locator("input[type='file']").first.set_input_files(str(tmp_path / "服务合同.pdf"))
    expect(page.locator("#docqa-info")).to_contain_text("characters", timeout=MINUTE)  # read and measured
    panel.get_by_role("button", name="Ask", exact=True).click()
    table = page.locator("#docqa-fields").filter(has_text="payment_terms")
    expect(table).to_be_visible(timeout=3 * MINUTE)
    expect(page.get_by_text("strategy")).to_be_visible()
    for field in (
        "parties",
        "services_and_delivery",
        "payment_terms",
        "liability_for_breach",
        "termination_conditions",
    ):
        expect(table).to_contain_text(field)
    expect(table).to_contain_text(re.compile("[✅❌]"))
    assert facts.amount  # the generated contract has an amount to find
    ui.shot("document_qa")


REFUND_TOOL = {
    "name": "approve_refund",
    "description": "Refund a customer's order (needs a person's approval).",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "integer", "minimum": 1, "maximum": 9999}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
    "result": {"refunded": True},
    "sensitive": True,
}


def test_function_calling_tab_confirms_and_denies_a_sensitive_call(app_url, open_page):
    ui = open_page(app_url, tab="Function calling")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    editor = page.locator("#tool-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(REFUND_TOOL))
    panel.get_by_role("button", name="Add tool").click()
    expect(page.get_by_label("approve_refund")).to_be_checked()
    choice = page.get_by_label("Tool choice")
    choice.click()
    page.get_by_role("option", name="approve_refund").click()
    panel.get_by_role("textbox", name="Message").fill("Please refund order 42.")
    pending = panel.get_by_role("textbox", name="Waiting for confirmation")
    steps = page.locator("#tool-steps")
    answer = panel.get_by_role("textbox", name="Answer")
    audit = page.locator("#tool-audit .cm-content")
    for decision, status, event in (("Confirm", "executed", "confirmed"), ("Deny", "denied", "denied")):
        panel.get_by_role("button", name="Run", exact=True).click()
        expect(pending).to_have_value(
            re.compile(r"^approve_refund\(\{\"order_id\": \d+\}\) — Confirm or Deny"), timeout=MINUTE
        )
        panel.get_by_role("button", name=decision, exact=True).click()
        expect(steps).to_contain_text(status, timeout=MINUTE)
        finish_turn(page, panel, pending, answer)
        expect(audit).to_contain_text(f'"event": "{event}", "tool": "approve_refund"')
    ui.shot("function_calling")


def finish_turn(page, panel, pending, answer, timeout_s=180):
    """The model may propose the refund again once it has the result: deny each repeat until it answers."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if answer.input_value() not in ("", "running ..."):
            return
        if "Confirm or Deny" in pending.input_value():  # a decision writes "denied" there at once
            panel.get_by_role("button", name="Deny", exact=True).click()
        page.wait_for_timeout(1000)
    raise AssertionError(f"the turn did not end within {timeout_s} s: {answer.input_value()!r}")


def test_ab_tab_runs_the_example_with_the_default_form(app_url, open_page):
    ui = open_page(app_url, tab="A/B tests")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    panel.get_by_role("button", name="Run", exact=True).click()  # "Only the first N items" is empty: 0 is sent
    expect(page.get_by_text(re.compile(r"^done: 60 trials"))).to_be_visible(timeout=4 * MINUTE)
    expect(page.get_by_text("McNemar").first).to_be_visible()
    ui.shot("ab_tests")


def test_benchmark_tab_runs_with_live_progress_plots_and_exports(app_url, open_page):
    ui = open_page(app_url, tab="Benchmark")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    panel.get_by_role("textbox", name="SLO: TTFT at most (empty: none)").fill("2")  # no unit
    panel.get_by_role("button", name="Run benchmark").click()
    ui.expect_error("SLO TTFT '2' has no unit", "2s or 100ms")
    panel.get_by_role("textbox", name="SLO: TTFT at most (empty: none)").fill("2s")
    panel.get_by_role("textbox", name="Concurrency levels").fill("1,2")
    panel.get_by_role("spinbutton", name="Prompts per level").fill("")  # empty: the default (8), not 0
    panel.get_by_role("button", name="Run benchmark").click()
    expect(page.locator("#bench-status")).to_contain_text(re.compile(r"running: concurrency \d"), timeout=MINUTE)
    expect(page.locator("#bench-status")).to_contain_text("done: 2 load level(s)", timeout=3 * MINUTE)
    table = page.locator("#bench-table")
    for load in ("concurrency 1", "concurrency 2"):
        expect(table).to_contain_text(load)
    expect(page.locator("#bench-status")).to_contain_text("of 8 completed requests met the SLOs")
    expect(page.get_by_role("img", name=re.compile("plot"))).to_have_count(2)
    ui.shot("benchmark")
    exported = {}
    for name in ("bench.json", "bench.csv"):  # what the download links serve
        link = page.get_by_role("row", name=re.compile(rf"^{re.escape(name)}")).get_by_role("link")
        exported[name] = page.request.get(link.get_attribute("href")).text()
    report = json.loads(exported["bench.json"])
    assert [(lv["concurrency"], lv["completed"], lv["failed"]) for lv in report["levels"]] == [(1, 8, 0), (2, 8, 0)]
    assert report["slo"] == {"ttft_ms": 2000.0, "tpot_ms": 100.0}
    assert exported["bench.csv"].splitlines()[0].startswith("concurrency,request_rate,completed,failed")
    assert len(exported["bench.csv"].splitlines()) == 3


def test_compare_tab_runs_two_candidates_with_progress_verdicts_plots_and_the_report(app_url, open_page, qwen3_engine):
    ui = open_page(app_url, tab="Compare")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    box = panel.get_by_role("textbox", name="Candidates (first = baseline)")
    expect(box).to_have_value("bf16=engine\n")
    panel.get_by_role("button", name="Compare", exact=True).click()  # one candidate only
    ui.expect_error("compare needs at least two candidates", "add another --candidate")
    expect(box).to_have_value("bf16=engine\n")  # nothing the person typed is lost
    box.fill(f"bf16=engine\nqwen3={qwen3_engine.url},thinking=off")
    panel.get_by_role("spinbutton", name="Items per task (empty: all)").fill("4")
    panel.get_by_role("spinbutton", name="Prompts per level").fill("3")
    panel.get_by_role("button", name="Compare", exact=True).click()
    status = page.locator("#compare-status")
    expect(status).to_contain_text(re.compile(r"running: \[\d/2\]"), timeout=MINUTE)
    expect(status).to_contain_text("done in", timeout=6 * MINUTE)
    expect(status.locator("table")).to_contain_text("qwen3")
    verdict = page.locator("#compare-verdict")
    expect(verdict).to_contain_text("bf16: the baseline. ppl")
    expect(verdict).to_contain_text("qwen3:")
    expect(verdict.locator("table").first).to_contain_text("not comparable")  # another tokenizer's perplexity
    expect(page.get_by_role("img", name=re.compile("plot"))).to_have_count(3)
    ui.shot("compare")
    links = {
        name: page.get_by_role("row", name=re.compile(rf"^{re.escape(name)}")).get_by_role("link")
        for name in ("report.html", "compare.json")
    }
    saved = json.loads(page.request.get(links["compare.json"].get_attribute("href")).text())
    assert [a["candidate"] for a in saved["answers"]] == ["bf16", "qwen3"]
    assert {v["task"] for v in saved["verdicts"]["qwen3"]} == {"ppl", "tools"}
    assert "<svg" in page.request.get(links["report.html"].get_attribute("href")).text()


def test_without_an_engine_the_tabs_that_need_it_offer_start(idle_app_url, open_page):
    """`workbench ui --no-engine`: the tabs that talk to the model say so and offer Start (Plan: above)."""
    ui = open_page(idle_app_url)
    page = ui.page
    for tab in ("Document QA", "Function calling", "A/B tests", "Quantize", "Benchmark"):
        page.get_by_role("tab", name=tab).click()
        panel = page.get_by_role("tabpanel")
        expect(panel.get_by_text("The engine is not running")).to_be_visible()
        expect(panel.get_by_role("button", name="Start the engine")).to_be_visible()
    page.get_by_role("tab", name="Engine").click()
    expect(page.get_by_role("tabpanel").get_by_role("textbox", name="Status", exact=True)).to_have_value("stopped")
    ui.shot("no_engine")


def test_when_vllm_dies_every_tab_says_so_offers_a_restart_and_keeps_the_input(starts_vllm, open_page, tmp_path):
    import os
    import signal

    from tests.ui.helpers import serve_app
    from workbench.serving.engine import EngineConfig
    from workbench.tasks import docqa_dataset
    from workbench.ui.context import AppContext

    ctx = AppContext(config=EngineConfig(max_model_len=2048, enforce_eager=True, enable_tools=True))
    ctx.start(wait=True)
    url, close = serve_app(ctx)
    ui = None
    try:
        ui = open_page(url, tab="Document QA")
        page = ui.page
        docqa_dataset.make_contract(tmp_path / "contract.pdf", "en", 3_000, seed=9)
        page.get_by_role("tabpanel").locator("input[type='file']").first.set_input_files(str(tmp_path / "contract.pdf"))
        expect(page.locator("#docqa-info")).to_contain_text("characters", timeout=MINUTE)
        page.get_by_role("tab", name="Engine").click()
        panel = page.get_by_role("tabpanel")
        panel.get_by_role("textbox", name="Message").fill("What is the capital of France?")

        os.killpg(ctx.engine.process.pid, signal.SIGKILL)  # vLLM dies under the app
        ctx.engine.process.wait(30)

        expect(panel.get_by_role("textbox", name="Status", exact=True)).to_have_value(
            re.compile(r"^stopped: vLLM exited with code -9 .*press Start to restart it"), timeout=MINUTE
        )
        panel.get_by_role("button", name="Send").click()
        ui.expect_error("the engine is not running", "press Start")
        expect(panel.get_by_role("textbox", name="Message")).to_have_value("What is the capital of France?")
        for tab in ("Document QA", "Function calling", "A/B tests"):
            page.get_by_role("tab", name=tab).click()
            expect(page.get_by_role("tabpanel").get_by_text("vLLM exited with code -9")).to_be_visible(timeout=MINUTE)
        page.get_by_role("tab", name="Document QA").click()
        panel = page.get_by_role("tabpanel")
        expect(page.locator("#docqa-info")).to_contain_text("contract.pdf")  # the upload is still there
        panel.get_by_role("button", name="Ask", exact=True).click()
        ui.expect_error("the engine is not running", "press Start")  # a second toast, from this tab
        ui.shot("engine_stopped")
        panel.get_by_role("button", name="Start the engine").click()  # the restart the notice offers
        expect(panel.get_by_text("starting")).to_be_visible(timeout=MINUTE)
    finally:
        if ui:
            ui.close()  # the tab first: its timers would meet the closed app
        close()  # stops the restarted engine too, mid-start if need be
