"""The Gradio app, driven the way a script would drive it: through gradio_client."""

import csv
import json
import re

import pytest

from tests.ui.helpers import BUILTIN_TOOLS, attached_context, serve_app
from workbench.measurement import abconfig


@pytest.fixture
def own_app_url(engine):
    """An app of the test's own, for a test that replaces the app's engine; the engine it starts runs eagerly, as
    notebook 03 serves its checkpoint (no torch.compile: about a minute less on these two cores)."""
    from workbench.serving.engine import EngineConfig

    url, close = serve_app(attached_context(engine, EngineConfig(max_model_len=2048, enforce_eager=True)))
    yield url
    close()


def test_chat_in_the_tab_answers_paris(app_url):
    from gradio_client import Client

    ui = Client(app_url, verbose=False)
    history, cleared, timings = ui.predict(
        "What is the capital of France?", [], "You are a concise, factual assistant.", api_name="/chat"
    )
    assert history[-1]["role"] == "assistant" and "Paris" in str(history[-1]["content"])
    assert cleared == "" and timings.startswith("TTFT")


def test_status_report_and_log(app_url, engine):
    from gradio_client import Client

    status, report, log = Client(app_url, verbose=False).predict(api_name="/engine_refresh")
    assert status.startswith("running") and engine.url in status
    assert "**KV cache**: " in report and f"({engine.report.kv_cache_tokens:,} tokens)" in report  # 46,592 on the CPU
    assert "kv_cache" not in report and "None" not in report  # in people's words, no raw keys or empty rows
    assert log  # the tail of the engine's own log


def test_empty_message_is_refused_without_losing_the_chat(app_url):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Type a message"):
        Client(app_url, verbose=False).predict("   ", [], "", api_name="/chat")


def test_a_second_turn_sees_the_first(app_url):
    from gradio_client import Client

    ui = Client(app_url, verbose=False)
    system = "You are a concise, factual assistant."
    history, _, first = ui.predict("My name is Ada.", [], system, api_name="/chat")
    history, _, second = ui.predict("What is my name?", history, system, api_name="/chat")
    assert len(history) == 4 and history[0]["role"] == "user"
    prompt_tokens = [int(re.search(r"prompt (\d+) tokens", t).group(1)) for t in (first, second)]
    answer_tokens = int(re.search(r"answer (\d+) tokens", first).group(1))
    assert prompt_tokens[1] > prompt_tokens[0] + answer_tokens  # the first turn went back to the model


def test_plan_tab_gives_the_same_numbers_as_the_cli(app_url):
    import json
    import subprocess
    import sys

    from gradio_client import Client

    summary, bar, curve, command, raw = Client(app_url, verbose=False).predict(
        "Qwen3-14B",
        "RTX 3090",
        "gptq-int4",
        128,
        32768,
        None,
        "auto",
        1,
        1,
        None,
        256,
        "0.32.0",
        None,
        None,
        "",
        None,
        api_name="/plan",
    )
    cli = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "workbench.cli",
                "plan",
                "--model",
                "Qwen3-14B",
                "--gpu",
                "RTX 3090",
                "--quant",
                "gptq-int4",
                "--max-model-len",
                "32768",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert raw["kv_cache_tokens"] == cli["kv_cache_tokens"] and raw["weights_gib"] == cli["weights_gib"]
    assert "fits" in summary and f"{cli['kv_cache_tokens']:,}" in summary
    assert command.startswith("vllm serve ./Qwen3-14B-gptq-int4 --max-model-len 32768")
    assert "No gptq-int4 checkpoint of Qwen3-14B is published" in summary and "Qwen/Qwen3-14B-AWQ" in summary
    assert bar is not None and curve is not None


def test_plan_tab_refuses_an_unknown_gpu_with_the_options(app_url):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="RTX 3090"):
        Client(app_url, verbose=False).predict(
            "Qwen3-14B",
            "GTX 9999",
            "gptq-int4",
            128,
            32768,
            None,
            "auto",
            1,
            1,
            None,
            256,
            "0.32.0",
            None,
            None,
            "",
            None,
            api_name="/plan",
        )


@pytest.mark.slow
def test_docqa_tab_on_the_12k_chinese_contract_pdf(app_url, tmp_path):
    import json

    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from workbench.tasks import docqa_dataset, documents

    facts = docqa_dataset.make_contract(tmp_path / "contract-zh-12k.pdf", "zh", 12_000, seed=21)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 broken")
    ui = Client(app_url, verbose=False)
    info = ui.predict(handle_file(str(tmp_path / "contract-zh-12k.pdf")), api_name="/docqa_upload")
    assert "contract-zh-12k.pdf" in info and "does not fit in one prompt" in info
    with pytest.raises(AppError, match="not a readable PDF"):
        ui.predict(handle_file(str(tmp_path / "broken.pdf")), api_name="/docqa_upload")
    # the good document is still loaded after the bad upload
    answer, table, stats, json_file, md_file = ui.predict("contract", "", api_name="/docqa_ask")
    assert "strategy retrieval ·" in stats and "TTFT" in stats
    doc = documents.load(tmp_path / "contract-zh-12k.pdf")
    rows = table["data"]
    assert [r[0] for r in rows] == [
        "parties",
        "services_and_delivery",
        "payment_terms",
        "liability_for_breach",
        "termination_conditions",
    ]
    for name, shown, quote, verified, supported, page in rows:
        assert (verified == "✅") == (documents.find_quote(doc, quote) is not None), name
        assert supported == "✅" or supported.startswith(("⚠️ the model wrote «", "➖ no figure")), supported
        if supported.startswith("⚠️"):  # the value's facts are not in the quote: the quote is what is shown
            assert shown == quote, (name, supported)
    assert any(f"{facts.amount:,}" in r[2] for r in rows if r[3] == "✅")
    exported = json.loads(open(json_file, encoding="utf-8").read())
    assert exported["document"] == "contract-zh-12k.pdf" and set(exported["fields"]) == {r[0] for r in rows}
    assert "| field | answer | quote | verified | supported | page |" in open(md_file, encoding="utf-8").read()


def test_tools_tab_runs_the_weather_question_and_audits_it(app_url):
    import time

    from gradio_client import Client
    from gradio_client.exceptions import AppError

    ui = Client(app_url, verbose=False)
    tool = {
        "name": "lookup_order",
        "description": "Find an order by id",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "integer"}}, "required": ["order_id"]},
        "result": {"status": "shipped"},
    }
    listed, offered, _ = ui.predict(json.dumps(tool), BUILTIN_TOOLS, api_name="/tools_add")
    assert "lookup_order" in [t["function"]["name"] for t in listed]
    with pytest.raises(AppError, match="not a valid JSON schema"):
        ui.predict(
            json.dumps({**tool, "name": "bad", "parameters": {"type": "nonsense"}}),
            BUILTIN_TOOLS,
            api_name="/tools_add",
        )
    ui = Client(app_url, verbose=False)  # a new session: the built-in tools only
    with pytest.raises(AppError, match="Offer at least one tool"):
        ui.predict("Send it.", "constrained", [], "auto", api_name="/tools_run")
    with pytest.raises(AppError, match="'send_email' is not among the tools offered"):
        ui.predict("Send it.", "constrained", ["get_weather"], "send_email", api_name="/tools_run")
    ui.predict(
        "Check tomorrow's weather in Hangzhou and tell me whether to take an umbrella.",
        "constrained",
        BUILTIN_TOOLS,
        "get_weather",
        api_name="/tools_run",
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        pending, answer, steps, audit = ui.predict(api_name="/tools_poll")
        if answer and answer != "running ...":
            break
        time.sleep(1)
    rows = steps["data"]
    assert any(r[0] == "get_weather" and r[2] == "executed" for r in rows), (answer, rows)
    assert '"event": "proposed"' in audit and '"get_weather"' in audit


def test_confirmation_waits_for_the_person():
    import threading
    import time

    from workbench.ui.tools_tab import Confirmation

    confirmation = Confirmation()
    answers = []
    worker = threading.Thread(target=lambda: answers.append(confirmation("send_email", {"to": "a@b.cn"})))
    worker.start()
    deadline = time.monotonic() + 5
    while confirmation.pending is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert confirmation.pending is not None and confirmation.pending[0] == "send_email"
    confirmation.resolve(False)
    worker.join(5)
    assert answers == [False] and confirmation.pending is None


def test_ab_tab_runs_two_system_prompts_and_exports(app_url):
    from pathlib import Path

    from gradio_client import Client, handle_file

    examples = abconfig.EXAMPLE.parent
    ui = Client(app_url, verbose=False)
    assert (
        ui.predict(handle_file(str(examples / "ab_capitals.csv")), api_name="/ab_dataset")
        == "30 items · columns: `country`, `capital`"
    )
    form = list(ui.predict(handle_file(str(examples / "ab_system_prompts.yaml")), api_name="/ab_load_config"))
    assert form[0] == "system prompts on capital cities" and form[8] == "helpful" and form[16] == "concise"
    form[1] = handle_file(str(examples / "ab_capitals.csv"))  # the upload lands in a temp folder without it
    status, verdict, table, chart, matrix, report, trials, config = ui.predict(*form, api_name="/ab_run")
    assert status.startswith("done: 60 trials"), status
    assert "helpful" in verdict and "concise" in verdict and "McNemar" in verdict
    assert [row[0] for row in table["value"]["data"]] == ["helpful", "concise"]
    assert table["value"]["headers"][:3] == ["variant", "pass rate", "95% CI"]
    rows = matrix["value"]["data"]
    assert len(rows) == 30 and rows[0][:3] == ["1", "France", "Paris"] and rows[0][3].startswith(("✅", "❌"))
    assert json.loads(Path(report).read_text())["items"] == 30
    with open(trials, newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 60
    assert chart["type"] == "matplotlib" and "variants:" in config


def test_ab_tab_refuses_a_bad_check_naming_the_field(app_url):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    examples = abconfig.EXAMPLE.parent
    ui = Client(app_url, verbose=False)
    form = list(ui.predict(handle_file(str(examples / "ab_system_prompts.yaml")), api_name="/ab_load_config"))
    form[1] = handle_file(str(examples / "ab_capitals.csv"))
    form[3] = "- type: contains\n  valu: Paris\n"
    with pytest.raises(AppError, match=r"assert\.0\.valu: unknown field; did you mean 'value'"):
        ui.predict(*form, api_name="/ab_run")


def test_ab_tab_cancels_a_run_and_says_how_to_resume(app_url):
    import time

    from gradio_client import Client, handle_file

    examples = abconfig.EXAMPLE.parent
    ui = Client(app_url, verbose=False)
    form = list(ui.predict(handle_file(str(examples / "ab_system_prompts.yaml")), api_name="/ab_load_config"))
    form[1] = handle_file(str(examples / "ab_capitals.csv"))
    form[4], form[5], form[-1] = 3, 1, False  # 180 trials one at a time, none from the cache
    job = ui.submit(*form, api_name="/ab_run")
    time.sleep(3)
    assert ui.predict(api_name="/ab_cancel").startswith("cancelling")
    status = job.result(timeout=60)[0]
    assert re.fullmatch(
        r"cancelled after \d+ of 180 trials; the answer cache was off, so running again starts "
        r"over\.",
        status,
    ), status


@pytest.mark.slow
def test_quantize_tab_runs_cancels_and_serves(own_app_url, tmp_path):
    """On an app of its own: serving the checkpoint replaces that app's engine."""
    import time

    from gradio_client import Client

    ui = Client(own_app_url, verbose=False)
    quantize_args = ["smollm2-135m-instruct", "gptq", 4, 64, 8, 128, False]
    # a cancelled run
    status, target = ui.predict(*quantize_args, str(tmp_path / "cancelled"), api_name="/quantize_start")
    ui.predict(api_name="/quantize_cancel")
    deadline = time.monotonic() + 60
    while "cancelled" not in status and time.monotonic() < deadline:
        time.sleep(1)
        status, _ = ui.predict(api_name="/quantize_poll")
    assert "cancelled" in status and not (tmp_path / "cancelled").exists()
    # a finished run, with progress on the way
    status, target = ui.predict(*quantize_args, str(tmp_path / "done"), api_name="/quantize_start")
    seen, deadline = set(), time.monotonic() + 400
    while not status.startswith(("done", "failed")) and time.monotonic() < deadline:
        time.sleep(1)
        status, _ = ui.predict(api_name="/quantize_poll")
        seen.add(status.split(" (")[0])
    assert status.startswith("done") and target in status, status
    assert any("layer" in s for s in seen)
    # serve it and ask the question
    ui.predict(api_name="/quantize_serve")
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        engine_status, _, _ = ui.predict(api_name="/engine_refresh")
        if engine_status.startswith(("running", "stopped:")):
            break
        time.sleep(2)
    assert engine_status.startswith("running"), engine_status
    history, _, _ = ui.predict(
        "What is the capital of France?", [], "You are a concise, factual assistant.", api_name="/chat"
    )
    assert "Paris" in str(history[-1]["content"])
