"""One engine per GPU (gpu_lease.py), checked on the CPU build with the rule switched on
(WORKBENCH_ONE_ENGINE_PER_DEVICE=1): a second engine on a held device is refused naming the holder and the fix, in
this process and across processes; the app's engine steps aside for Compare and the quality report, says so, and
comes back, also for an engine started in another process (a notebook, `workbench compare` in a terminal), and also
when that process is killed; without the switch the CPU build keeps engines side by side, as before.

Every path is checked at its point of decision (the lease is taken before vLLM is spawned, so a refusal starts no
vLLM); one Compare run swaps real engines."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from workbench.errors import EngineStartupError
from workbench.measurement import compare, compare_request
from workbench.quantization import quality
from workbench.serving import gpu_lease, models
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT
from workbench.serving.engine import Engine, EngineConfig
from workbench.ui.context import AppContext

HOLD = (
    "import sys, time; from workbench.serving import gpu_lease; "
    "lease = gpu_lease.take('cpu', 'vLLM serving held-elsewhere'); lease.note(url='http://127.0.0.1:9'); "
    "print('ready', flush=True); time.sleep(120)"
)


@pytest.fixture
def rule_on(monkeypatch):
    monkeypatch.setenv(gpu_lease.ENV, "1")


@pytest.fixture
def held_elsewhere(rule_on):
    """Another process holds the device (as a `workbench serve` in another terminal would)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        stdout=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, gpu_lease.ENV: "1"},
    )
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


# The app in another process: a holder that agreed to step aside. Its engine is stand_in_server, a sleeping process
# standing in for vLLM's server: it holds the lease's descriptor as vLLM's server does. The journal says what
# happened to the engine; the log (stderr) is what the app's terminal shows.
APP_ELSEWHERE = """
import subprocess, sys, time
from workbench.serving import gpu_lease
journal = open(sys.argv[1], "a", buffering=1)
engine = {}
def start():
    lease = gpu_lease.take("cpu", "vLLM serving the app's model", app)
    stand_in_server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], pass_fds=lease.fds)
    lease.note(server_pid=stand_in_server.pid)
    engine.update(lease=lease, server=stand_in_server)
    journal.write(f"serving {stand_in_server.pid}\\n")
def stop(borrower):
    journal.write(f"stopped for {borrower}\\n")
    engine["server"].kill(); engine["server"].wait(); engine["lease"].release()
app = gpu_lease.Yielder("the app's engine (stand-in)", stop, start)
start()
time.sleep(600)
"""


def journal_lines(path, at_least: int, timeout_s: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= at_least or time.monotonic() > deadline:
            return [line if not line.startswith("serving ") else "serving" for line in lines]
        time.sleep(0.05)


@pytest.fixture
def app_elsewhere(rule_on, tmp_path, monkeypatch):
    """The app serving in another process, on a lock folder of this test's own."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    journal, log = tmp_path / "journal", tmp_path / "app.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", APP_ELSEWHERE, str(journal)], stderr=stderr)
    assert journal_lines(journal, 1) == ["serving"]
    proc.journal, proc.log = journal, log
    yield proc
    proc.kill()
    proc.wait()
    for line in journal.read_text().splitlines():  # stand-in servers left by a killed app
        if line.startswith("serving "):
            try:
                os.kill(int(line.split()[1]), signal.SIGKILL)
            except ProcessLookupError:
                pass


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
    app = gpu_lease.Yielder(
        "the app's engine",
        lambda borrower: (calls.append(f"stop for {borrower}"), lease.release()),
        lambda: calls.append("start"),
    )
    lease = gpu_lease.take("cpu", "vLLM serving the app's model", app)
    with gpu_lease.borrowing("the compare run ends", heard.append):
        for name in ("a", "b"):
            borrowed = gpu_lease.take("cpu", f"vLLM serving {name}")
            borrowed.release()
        assert calls == ["stop for vLLM serving a"]  # set aside once, not brought back between candidates
    assert calls == ["stop for vLLM serving a", "start"]
    assert (
        heard[0].startswith("one engine per device: setting aside the app's engine")
        and "it comes back when the compare run ends" in heard[0]
    )
    assert heard[-1] == "bringing back the app's engine (the compare run is done)"
    calls.clear()
    lease = gpu_lease.take("cpu", "vLLM serving the app's model", app)  # outside a run: back when the borrower ends
    gpu_lease.take("cpu", "vLLM serving c").release()
    assert calls == ["stop for vLLM serving c", "start"]
    lease.release()


def test_the_app_in_another_process_steps_aside_once_per_run_and_comes_back(app_elsewhere):
    """A Compare run here sets the app's engine in another process aside once, says so, and brings it back at its end;
    then two notebook engines in sequence, each outside a run, set it aside and bring it back in turn."""
    app, me = app_elsewhere.pid, os.getpid()
    assert gpu_lease.holder("cpu")["yielder"] == "the app's engine (stand-in)"
    heard = []
    with gpu_lease.borrowing("the compare run ends", heard.append):
        for name in ("a", "b"):
            lease = gpu_lease.take("cpu", f"vLLM serving {name}")
            assert gpu_lease.holder("cpu")["pid"] == me
            lease.release()
        assert journal_lines(app_elsewhere.journal, 2) == ["serving", f"stopped for vLLM serving a in process {me}"]
    assert heard == [
        f"one engine per device: setting aside the app's engine (stand-in) in process {app} on this "
        "machine's CPU (the one-engine rule switched on by WORKBENCH_ONE_ENGINE_PER_DEVICE) to serve "
        "vLLM serving a; it comes back when the compare run ends or this process ends",
        f"bringing back the app's engine (stand-in) in process {app} (the compare run is done)",
    ]
    assert journal_lines(app_elsewhere.journal, 3)[2] == "serving"
    assert gpu_lease.holder("cpu")["pid"] == app

    for count, name in ((5, "c"), (7, "d")):
        lease = gpu_lease.take("cpu", f"vLLM serving {name}")
        lease.release()
        assert journal_lines(app_elsewhere.journal, count)[-2:] == [
            f"stopped for vLLM serving {name} in process {me}",
            "serving",
        ]
    assert (
        f"bringing back the app's engine (stand-in) (vLLM serving d in process {me} stopped)"
        in app_elsewhere.log.read_text()
    )
    assert gpu_lease.holder("cpu")["pid"] == app


BORROWER = (
    "import time; from workbench.serving import gpu_lease; gpu_lease.take('cpu', 'vLLM serving the notebook model'); "
    "print('borrowed', flush=True); time.sleep(600)"
)


def test_the_app_comes_back_when_the_process_that_set_it_aside_is_killed(app_elsewhere):
    """A notebook kernel that set the app's engine aside is killed (SIGKILL: nothing of it runs to say it is done)."""
    kernel = subprocess.Popen([sys.executable, "-c", BORROWER], stdout=subprocess.PIPE, text=True)
    try:
        assert kernel.stdout.readline().strip() == "borrowed"
        assert (
            journal_lines(app_elsewhere.journal, 2)[1]
            == f"stopped for vLLM serving the notebook model in process {kernel.pid}"
        )
        assert gpu_lease.holder("cpu")["pid"] == kernel.pid
        refused = f"already runs vLLM serving the notebook model \\(pid {kernel.pid}"
        with pytest.raises(EngineStartupError, match=refused):  # the kernel did not agree to step aside
            gpu_lease.take("cpu", "vLLM serving a third")
    finally:
        kernel.kill()
        kernel.wait()
    assert journal_lines(app_elsewhere.journal, 3)[2] == "serving"
    assert gpu_lease.holder("cpu")["pid"] == app_elsewhere.pid
    assert f"bringing back the app's engine (stand-in) (process {kernel.pid} ended)" in app_elsewhere.log.read_text()


def test_an_app_that_does_not_answer_is_refused_naming_it(app_elsewhere, monkeypatch):
    """A stopped (SIGSTOP) app is refused within ACK_S, naming its process; once it runs again, it answers."""
    monkeypatch.setattr(gpu_lease, "ACK_S", 1.0)
    os.kill(app_elsewhere.pid, signal.SIGSTOP)
    while Path(f"/proc/{app_elsewhere.pid}/stat").read_text().split(") ")[1][0] != "T":  # stopped by now
        time.sleep(0.01)
    try:
        started = time.monotonic()
        with pytest.raises(EngineStartupError) as info:
            gpu_lease.take("cpu", "vLLM serving a")
        assert time.monotonic() - started < 5
    finally:
        os.kill(app_elsewhere.pid, signal.SIGCONT)
    assert "already runs vLLM serving the app's model (pid " in str(info.value)
    assert (
        f"the app's engine (stand-in) in process {app_elsewhere.pid} agreed to step aside but did not answer "
        "within 1 s (is that process stopped or stuck?)"
    ) in str(info.value)
    assert journal_lines(app_elsewhere.journal, 1) == ["serving"]  # not stopped for a borrower that gave up
    monkeypatch.setattr(gpu_lease, "ACK_S", 5.0)
    gpu_lease.take("cpu", "vLLM serving b").release()
    assert journal_lines(app_elsewhere.journal, 3)[1:] == [
        f"stopped for vLLM serving b in process {os.getpid()}",
        "serving",
    ]


def test_an_app_killed_while_its_server_runs_leaves_the_device_taken(app_elsewhere):
    """The app's process is gone but its (stand-in) vLLM server still holds the device: nobody answers at the socket
    the lock file names, so a start is refused naming the server; once the server is gone, the device is free and
    the next app listens where the dead one did."""
    server_pid = gpu_lease.holder("cpu")["server_pid"]
    app_elsewhere.kill()
    app_elsewhere.wait()
    with pytest.raises(EngineStartupError, match=f"already runs vLLM serving the app's model \\(pid {server_pid},"):
        gpu_lease.take("cpu", "vLLM serving a")
    os.kill(server_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while gpu_lease.holder("cpu") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    lease = gpu_lease.take("cpu", "vLLM serving the new app's model", gpu_lease.Yielder("a new app", print, print))
    try:
        assert os.path.exists(gpu_lease.holder("cpu")["yield_socket"])  # the dead app's socket file was replaced
    finally:
        lease.release()
    assert not os.path.exists(lease.socket_path)


def test_a_long_cache_dir_keeps_its_socket_in_the_temp_folder(rule_on, tmp_path, monkeypatch):
    """A Unix socket's path has at most 108 bytes; a cache dir past that still lets the app step aside."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / ("a-long-folder-name-" * 6)))
    lease = gpu_lease.take("cpu", "vLLM serving the app's model", gpu_lease.Yielder("the app's engine", print, print))
    try:
        path = gpu_lease.holder("cpu")["yield_socket"]
        assert path.startswith(tempfile.gettempdir()) and len(path) < 100 and os.path.exists(path)
    finally:
        lease.release()
    assert not os.path.exists(path)


def test_every_path_that_needs_another_model_goes_through_the_rule(held_elsewhere, tmp_path):
    """Compare, the quality report, the app's engine (Start and Serve this checkpoint) and notebook 03's second
    engine: each meets the held device before spawning vLLM and names the holder; Compare's baseline also says how
    to go on without it."""
    bundled = str(models.prepare_bundled_model())
    request = compare_request.CompareRequest(
        candidates=(
            compare_request.parse_candidate(f"base={bundled}"),
            compare_request.parse_candidate(f"int4={bundled} --enforce-eager"),
        ),
        tasks=("ppl",),
        settings=compare_request.TaskSettings(items=1),
        workload=None,
        store=str(tmp_path / "store"),
    )
    report = compare.run(request)
    base, other = report.outcomes
    assert "already runs vLLM serving held-elsewhere" in base["error"] and "Fix: stop that engine" in other["error"]
    assert "a baseline served elsewhere by URL (--candidate bf16=http://" in base["error"]
    assert "Qwen/Qwen3-14B-AWQ" in base["error"] and compare.BASELINE_FIX not in other["error"]

    with pytest.raises(EngineStartupError, match="already runs vLLM serving held-elsewhere"):
        gpu_lease.run_borrowing(
            "the quality report ends", quality.quality_report, {"original": bundled}, "text", DEFAULT_SYSTEM_PROMPT
        )
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
        request = compare_request.CompareRequest(
            candidates=(
                compare_request.Candidate("int4", models.BUNDLED_MODEL, small),
                compare_request.Candidate("app", app_url),
            ),
            tasks=("ppl",),
            settings=compare_request.TaskSettings(items=1),
            workload=None,
            store=str(tmp_path / "store"),
        )
        report = compare.run(request, on_event=lambda e: (events.append(e), on_event(e)))
        assert [o["error"] for o in report.outcomes] == [None, None]
        assert all("ppl" in o["results"] for o in report.outcomes)
        said = [str(e) for e in events if e.state in ("set aside", "brought back")]
        assert "setting aside the app's engine (smollm2-135m-instruct)" in said[0], said
        assert said[-1].endswith("bringing back the app's engine (smollm2-135m-instruct) (the compare run is done))")
        assert during and during[0].startswith(
            "set aside: one engine per GPU, and another run has the device for vLLM serving"
        )
        order = [e.candidate for e in events if e.step == "ppl" and e.state == "done"]
        assert order == ["app", "int4"]  # the running server first, before it is set aside
        assert ctx.starting or ctx.ready  # brought back
    finally:
        ctx.stop()
