"""Many users at once, as a workshop meets the app: 8 sessions on different tabs at the same time, each
gets its own correct result, no confirmation crosses sessions, and chat keeps answering while an A/B run
is under way (chat has its own queue pool). Prints chat latency without and with the A/B run."""

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.ui.helpers import BUILTIN_TOOLS
from workbench.measurement import abconfig

pytestmark = pytest.mark.slow
SYSTEM = "You are a concise, factual assistant."
CAPITALS = {"France": "Paris", "Germany": "Berlin", "Japan": "Tokyo"}
EXAMPLES = abconfig.EXAMPLE.parent


def sensitive_tool(name: str) -> dict:
    return {
        "name": name,
        "description": f"{name.replace('_', ' ').capitalize()} (needs a person's approval).",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "integer", "minimum": 1, "maximum": 9999}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        "result": {"done": name},
        "sensitive": True,
    }


def chat(url: str, country: str) -> tuple[str, float]:
    from gradio_client import Client

    ui = Client(url, verbose=False)
    start = time.perf_counter()
    history, _, _ = ui.predict(f"What is the capital of {country}?", [], SYSTEM, api_name="/chat")
    return str(history[-1]["content"]), time.perf_counter() - start


def chats(url: str, rounds: int) -> list[tuple[str, str, float]]:
    with ThreadPoolExecutor(len(CAPITALS)) as pool:
        futures = [(c, pool.submit(chat, url, c)) for _ in range(rounds) for c in CAPITALS]
        return [(c, *f.result()) for c, f in futures]


def tools_session(url: str, tool: str, others_pending: threading.Event, mine_pending: threading.Event) -> dict:
    """Add a sensitive tool, require it, wait for the confirmation; check that confirming from another
    session reaches nothing; then confirm it here."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    ui = Client(url, verbose=False)
    ui.predict(json.dumps(sensitive_tool(tool)), BUILTIN_TOOLS, api_name="/tools_add")
    ui.predict("Please handle order 42.", "constrained", [tool], tool, api_name="/tools_run")
    deadline = time.monotonic() + 240
    pending = ""
    while time.monotonic() < deadline and "Confirm or Deny" not in pending:
        pending = ui.predict(api_name="/tools_poll")[0]
        time.sleep(0.5)
    mine_pending.set()
    others_pending.wait(240)
    stranger = Client(url, verbose=False)  # a session with nothing pending tries to confirm
    with pytest.raises(AppError, match="Nothing is waiting for confirmation"):
        stranger.predict(api_name="/tools_confirm")
    still = ui.predict(api_name="/tools_poll")[0]
    ui.predict(api_name="/tools_confirm")
    steps = []
    while time.monotonic() < deadline:
        _, answer, table, audit = ui.predict(api_name="/tools_poll")
        steps = table["data"]
        if any(r[2] == "executed" for r in steps):
            break
        time.sleep(0.5)
    return {"pending": pending, "still_pending_after_stranger": still, "steps": steps, "audit": audit}


def test_eight_sessions_at_once_each_get_their_own_result(app_url, engine, tmp_path):
    from gradio_client import Client, handle_file

    from workbench.planner import gpu_plan
    from workbench.planner.vllm_facts import ServeSettings
    from workbench.serving import hardware, models
    from workbench.tasks import docqa_dataset

    baseline = chats(app_url, rounds=2)  # chat alone: 6 requests, 3 at a time
    docqa_dataset.make_contract(tmp_path / "contract.pdf", "en", 3_000, seed=3)
    pending = {name: threading.Event() for name in ("approve_refund", "cancel_booking")}

    def plan_session():
        return Client(app_url, verbose=False).predict(
            "Qwen3-8B",
            "RTX 4090",
            "awq-int4",
            128,
            16384,
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
        )[4]

    def docqa_session():
        ui = Client(app_url, verbose=False)
        ui.predict(handle_file(str(tmp_path / "contract.pdf")), api_name="/docqa_upload")
        return ui.predict("contract", "", api_name="/docqa_ask")[1]

    def ab_session():
        ui = Client(app_url, verbose=False)
        form = list(ui.predict(handle_file(str(EXAMPLES / "ab_system_prompts.yaml")), api_name="/ab_load_config"))
        form[1] = handle_file(str(EXAMPLES / "ab_capitals.csv"))
        form[4], form[5], form[6], form[-1] = 1, 4, 20, False  # 40 fresh trials, 4 at a time
        return ui.predict(*form, api_name="/ab_run")[0]

    with ThreadPoolExecutor(8) as pool:
        ab = pool.submit(ab_session)
        plan = pool.submit(plan_session)
        docqa = pool.submit(docqa_session)
        tool_runs = {
            name: pool.submit(tools_session, app_url, name, pending[other], pending[name])
            for name, other in (("approve_refund", "cancel_booking"), ("cancel_booking", "approve_refund"))
        }
        time.sleep(2)  # the A/B run is under way
        during = chats(app_url, rounds=2)  # 3 chat sessions while everything else runs
        ab_status = ab.result(timeout=600)

    for country, answer, _ in baseline + during:
        assert CAPITALS[country] in answer, (country, answer)
    assert ab_status.startswith("done: 40 trials"), ab_status
    expected = gpu_plan.plan(
        models.CATALOG["Qwen3-8B"], hardware.find_gpu("RTX 4090"), "awq-int4", ServeSettings(max_model_len=16384)
    )
    assert plan.result()["kv_cache_tokens"] == expected.kv_cache_tokens
    assert [row[0] for row in docqa.result()["data"]][:1] == ["parties"]
    for name, run in tool_runs.items():
        result = run.result(timeout=300)
        other = "cancel_booking" if name == "approve_refund" else "approve_refund"
        assert result["pending"].startswith(f"{name}(") and result["still_pending_after_stranger"].startswith(name)
        assert any(r[0] == name and r[2] == "executed" for r in result["steps"]), result["steps"]
        assert other not in result["audit"], "another session's call is in this session's audit log"

    def spread(rows):
        seconds = sorted(s for _, _, s in rows)
        return statistics.median(seconds), seconds[int(0.95 * (len(seconds) - 1))]

    (p50_alone, p95_alone), (p50_busy, p95_busy) = spread(baseline), spread(during)
    print(
        f"\n8 sessions: chat p50/p95 {p50_alone:.2f}/{p95_alone:.2f} s alone, {p50_busy:.2f}/{p95_busy:.2f} s "
        f"during an A/B run (4 at a time), document QA, two tool turns and a plan"
    )
    assert p95_busy < 120  # chat was served during the run, not queued behind it
