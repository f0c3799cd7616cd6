"""One engine per GPU (gpu_lease.py), checked on the CPU build with the rule switched on
(WORKBENCH_ONE_ENGINE_PER_DEVICE=1): a second engine on a held device is refused naming the holder and the fix, in
this process and across processes; the app's engine steps aside for Compare and the quality report, says so, and
comes back; without the switch the CPU build keeps engines side by side, as before.

Every path is checked at its point of decision (the lease is taken before vLLM is spawned, so a refusal starts no
vLLM); one Compare run swaps real engines."""

import subprocess
import sys
import time

import pytest

from workbench import compare, gpu_lease, models, quality
from workbench.client import DEFAULT_SYSTEM_PROMPT
from workbench.engine import Engine, EngineConfig
from workbench.errors import EngineStartupError
from workbench.ui.context import AppContext

HOLD = ("import sys, time; from workbench import gpu_lease; "
        "lease = gpu_lease.take('cpu', 'vLLM serving held-elsewhere'); lease.note(url='http://127.0.0.1:9'); "
        "print('ready', flush=True); time.sleep(120)")


@pytest.fixture
def rule_on(monkeypatch):
    monkeypatch.setenv(gpu_lease.ENV, "1")


@pytest.fixture
def held_elsewhere(rule_on):
    """Another process holds the device (as a `workbench serve` in another terminal would)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, gpu_lease.ENV: "1"})
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_the_cpu_build_keeps_engines_side_by_side_without_the_switch(monkeypatch):
    monkeypatch.delenv(gpu_lease.ENV, raising=False)
    assert not gpu_lease.one_engine("cpu") and gpu_lease.one_engine("gpu")
    assert gpu_lease.take("cpu", "vLLM serving a") is None and gpu_lease.take("cpu", "vLLM serving b") is None


def test_a_second_engine_on_a_held_device_is_refused_naming_the_holder(held_elsewhere):
    """Across processes (the lock file), and in this process; the refusal comes before any vLLM is spawned."""
    started = time.monotonic()
    with pytest.raises(EngineStartupError) as info:
        Engine(EngineConfig()).start()
    message = str(info.value)
    assert f"already runs vLLM serving held-elsewhere at http://127.0.0.1:9 (pid {held_elsewhere.pid}" in message
    assert "Fix: stop that engine first" in message and f"kill {held_elsewhere.pid}" in message
    assert time.monotonic() - started < 10  # no vLLM was started to find this out
    assert gpu_lease.holder("cpu")["what"] == "vLLM serving held-elsewhere"
    held_elsewhere.kill()
    held_elsewhere.wait()
    lease = gpu_lease.take("cpu", "vLLM serving mine")  # the holder's exit ends its lease
    try:
        with pytest.raises(EngineStartupError, match=r"already runs vLLM serving mine \(pid \d+"):
            gpu_lease.take("cpu", "vLLM serving a second one")
    finally:
        lease.release()
    assert gpu_lease.holder("cpu") is None


def test_a_holder_that_agreed_steps_aside_once_per_run_and_comes_back(rule_on):
    heard, calls = [], []
    app = gpu_lease.Yielder("the app's engine", lambda borrower: (calls.append(f"stop for {borrower}"),
                                                                   lease.release()),
                            lambda: calls.append("start"))
    lease = gpu_lease.take("cpu", "vLLM serving the app's model", app)
    with gpu_lease.borrowing("the compare run ends", heard.append):
        for name in ("a", "b"):
            borrowed = gpu_lease.take("cpu", f"vLLM serving {name}")
            borrowed.release()
        assert calls == ["stop for vLLM serving a"]  # set aside once, not brought back between candidates
    assert calls == ["stop for vLLM serving a", "start"]
    assert heard[0].startswith("one engine per device: setting aside the app's engine") and \
        "it comes back when the compare run ends" in heard[0]
    assert heard[-1] == "bringing back the app's engine (the compare run is done)"
    calls.clear()
    lease = gpu_lease.take("cpu", "vLLM serving the app's model", app)  # outside a run: back when the borrower ends
    gpu_lease.take("cpu", "vLLM serving c").release()
    assert calls == ["stop for vLLM serving c", "start"]
    lease.release()


def test_every_path_that_needs_another_model_goes_through_the_rule(held_elsewhere, tmp_path):
    """Compare, the quality report, the app's engine (Start and Serve this checkpoint) and notebook 03's second
    engine: each meets the held device before spawning vLLM and names the holder; Compare's baseline also says how
    to go on without it."""
    bundled = str(models.prepare_bundled_model())
    request = compare.CompareRequest(candidates=(compare.parse_candidate(f"base={bundled}"),
                                                 compare.parse_candidate(f"int4={bundled} --enforce-eager")),
                                     tasks=("ppl",), settings=compare.TaskSettings(items=1), workload=None,
                                     store=str(tmp_path / "store"))
    report = compare.run(request)
    base, other = report.outcomes
    assert "already runs vLLM serving held-elsewhere" in base["error"] and "Fix: stop that engine" in other["error"]
    assert "a baseline served elsewhere by URL (--candidate bf16=http://" in base["error"]
    assert "Qwen/Qwen3-14B-AWQ" in base["error"] and compare.BASELINE_FIX not in other["error"]

    with pytest.raises(EngineStartupError, match="already runs vLLM serving held-elsewhere"):
        gpu_lease.run_borrowing("the quality report ends", quality.quality_report, {"original": bundled},
                                "text", DEFAULT_SYSTEM_PROMPT)
    with pytest.raises(EngineStartupError, match="already runs vLLM serving held-elsewhere"):  # notebook 03
        with Engine(EngineConfig(model=bundled, max_model_len=2048, enforce_eager=True)):
            pass
    ctx = AppContext()
    ctx.start(wait=True)
    assert "already runs vLLM serving held-elsewhere" in ctx.status()
    ctx.serve(bundled)  # the Quantize tab's "Serve this checkpoint"
    deadline = time.monotonic() + 60
    while ctx.starting and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "already runs vLLM serving held-elsewhere" in ctx.status()


@pytest.mark.slow
def test_compare_sets_the_apps_engine_aside_and_brings_it_back(rule_on, starts_vllm, tmp_path):
    """The real swap: the app's engine serves the URL candidate (run first, though listed second), is stopped while
    the checkpoint candidate's engine serves, and is started again when the run ends. The Compare tab's
    `engine` candidate is this URL."""
    small = ("--enforce-eager", "--max-model-len", "512")
    ctx = AppContext(config=EngineConfig(max_model_len=512, enforce_eager=True, startup_timeout_s=400))
    ctx.start(wait=True)
    try:
        assert ctx.ready, ctx.status()
        app_url = ctx.client().base_url
        during = []

        def on_event(event):
            if event.step == "engine" and event.state == "done" and event.candidate == "int4":
                during.append(ctx.status())  # while the checkpoint's engine serves

        events = []
        request = compare.CompareRequest(
            candidates=(compare.Candidate("int4", models.BUNDLED_MODEL, small), compare.Candidate("app", app_url)),
            tasks=("ppl",), settings=compare.TaskSettings(items=1), workload=None, store=str(tmp_path / "store"))
        report = compare.run(request, on_event=lambda e: (events.append(e), on_event(e)))
        assert [o["error"] for o in report.outcomes] == [None, None]
        assert all("ppl" in o["results"] for o in report.outcomes)
        said = [str(e) for e in events if e.state in ("set aside", "brought back")]
        assert "setting aside the app's engine (smollm2-135m-instruct)" in said[0], said
        assert said[-1].endswith("bringing back the app's engine (smollm2-135m-instruct) (the compare run is done))")
        assert during and during[0].startswith("set aside: one engine per GPU, and another run has the device for "
                                               "vLLM serving")
        order = [e.candidate for e in events if e.step == "ppl" and e.state == "done"]
        assert order == ["app", "int4"]  # the running server first, before it is set aside
        assert ctx.starting or ctx.ready  # brought back
    finally:
        ctx.stop()
