"""The Daily report tab through gradio_client (what a script sends) and in a real browser (what a person
clicks): the demo database made and connected, a day's facts previewed with the planted alert and its evidence,
the report generated with progress and its four files offered, and a refusal shown as one message."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.report_helpers import checksum

MINUTE = 60_000
FORM = ("sales", "day", "revenue, orders", "region")


def test_the_tab_previews_the_planted_drop_and_generates_the_four_files(app_url):
    from gradio_client import Client

    ui = Client(app_url, verbose=False)
    url, schema = ui.predict(api_name="/report_demo_db")
    assert url.startswith("sqlite:///") and "**sales**: day (TEXT), region (TEXT), revenue (REAL, numeric)" in schema
    before = checksum(Path(url.removeprefix("sqlite:///")))
    status, alerts, _, totals = ui.predict(url, *FORM, "2026-11-17", "en", api_name="/report_preview")
    assert "2 alert(s)" in status and "nothing written" in status
    assert [row[:3] for row in alerts["data"]] == [["East", "revenue", "drop"], ["East", "orders", "drop"]]
    assert "median of the same weekday over the last 8 weeks" in alerts["data"][0][4]
    status, alerts, _, _, prose, files = ui.predict(
        url, *FORM, "2026-11-16..2026-11-17", "zh", False, 400, api_name="/report_generate"
    )
    assert status.startswith("done: 2 day(s)") and "prose by template (no model)" in status
    assert sorted(Path(f).name for f in files) == sorted(["report.md", "report.html", "report.docx", "facts.json"] * 2)
    assert "## Report (template (no model))" in prose and "异常预警" in prose
    assert checksum(Path(url.removeprefix("sqlite:///"))) == before


def test_a_column_that_does_not_exist_is_one_message_naming_those_that_do(app_url):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    ui = Client(app_url, verbose=False)
    url, _ = ui.predict(api_name="/report_demo_db")
    with pytest.raises(AppError, match="Columns: day, region, revenue, orders, units"):
        ui.predict(url, "sales", "day", "revenue", "area", "2026-11-17", "en", api_name="/report_preview")


@pytest.mark.slow
def test_the_report_tab_in_the_browser(app_url, open_page):
    ui = open_page(app_url, tab="Daily report")
    page, panel = ui.page, ui.page.get_by_role("tabpanel")
    panel.get_by_role("button", name="Make the demo database").click()
    expect(page.locator("#report-schema")).to_contain_text("read only", timeout=MINUTE)
    panel.get_by_role("button", name="Preview facts").click()
    expect(page.locator("#report-alerts")).to_contain_text("median of the same weekday", timeout=MINUTE)
    panel.get_by_label("Prose length (max tokens)").fill("96")
    panel.get_by_role("button", name="Generate report").click()
    expect(page.locator("#report-status")).to_contain_text(re.compile(r"generating|done"), timeout=MINUTE)
    expect(page.locator("#report-status")).to_contain_text("done: 1 day(s)", timeout=3 * MINUTE)
    expect(page.locator("#report-status")).to_contain_text("smollm2")
    expect(page.locator("#report-prose")).to_contain_text("Fact check")
    for name in ("report.md", "report.html", "report.docx", "facts.json"):
        expect(page.locator("#report-files").get_by_role("cell", name=name, exact=True)).to_be_visible()
    ui.shot("daily_report")
