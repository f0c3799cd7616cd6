"""Stopping what the workbench starts: the whole process group goes, a child that ignores SIGTERM is killed,
and a SIGTERM to the workbench unwinds like Ctrl-C; the vLLM a killed run left behind is stopped by the next."""

import signal
import subprocess
import sys
import time

from workbench.serving import processes


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie stays until this container's init reaps it)."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_whole_group_is_stopped_grandchildren_included(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    grandchild = int(pid_file.read_text())
    assert processes.stop_group(proc, timeout_s=5) == -signal.SIGTERM
    time.sleep(0.5)
    assert not alive(grandchild), "the grandchild outlived its group"


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout():
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    start = time.monotonic()
    assert processes.stop_group(proc, timeout_s=1) == -signal.SIGKILL
    assert time.monotonic() - start < 10


def test_sigterm_unwinds_like_ctrl_c_so_that_finally_runs(tmp_path):
    marker = tmp_path / "cleaned"
    code = (
        "import time; from workbench.serving import processes; processes.stop_on_signals()\n"
        "try:\n    print('ready', flush=True); time.sleep(60)\n"
        f"finally:\n    open({str(marker)!r}, 'w').write('yes')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert marker.read_text() == "yes"


def test_the_next_run_stops_the_vllm_a_killed_run_left_and_nothing_else(tmp_path):
    """A run records the vLLM it started; killed with it alive, the next run in that folder stops it. A recorded pid
    that now belongs to something else (not vLLM) is left running."""
    orphan = subprocess.Popen(  # stands in for the orphaned server: a process whose command line names vllm
        [sys.executable, "-c", "import time; time.sleep(60)", "vllm.entrypoints.openai.api_server"],
        start_new_session=True,
    )
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        processes.note_engine(tmp_path / "run", orphan.pid)
        assert "stopped the engine (pid" in processes.reap(tmp_path / "run")
        assert orphan.wait(10) == -signal.SIGKILL
        assert processes.reap(tmp_path / "run") is None  # nothing recorded any more
        processes.note_engine(tmp_path / "run", other.pid)
        assert processes.reap(tmp_path / "run") is None and alive(other.pid)
    finally:
        for proc in (orphan, other):
            proc.kill()
            proc.wait()
