"""processes.py ends the child processes the workbench starts (vLLM, the quantization worker), and makes
the workbench's own process unwind on SIGTERM and SIGINT so that those children end with it.

Each child runs in a process group of its own (`start_new_session=True`), so one signal to the group
reaches the grandchildren too (vLLM's engine core). A run that may be killed with vLLM alive records its pid in its
folder (`note_engine`), and the next run there stops that orphan (`reap`). Knows nothing about what the children do.
"""

import json
import os
import signal
import subprocess
from pathlib import Path


def stop_group(proc: subprocess.Popen, timeout_s: float = 20.0) -> int | None:
    """SIGTERM the process group, wait up to timeout_s, then SIGKILL it. A SIGKILL goes to the group
    in any case, for children left behind after their parent exited. Returns the exit code."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_orphan_group(pid: int, command_word: str) -> bool:
    """SIGKILL the process group that `pid` leads, a child an earlier, killed workbench process left running, if
    that pid still runs a command containing `command_word` (a recorded pid may belong to another process since).
    True when it was killed."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if command_word not in cmdline:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def note_engine(folder: Path, pid: int | None) -> None:
    """Record in `folder` the vLLM a run started (None: it was stopped), so that the next run there can `reap` it if
    this one is killed with it alive."""
    marker = Path(folder) / "engine.json"
    if pid is None:
        marker.unlink(missing_ok=True)
    else:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"pid": pid}))


def reap(folder: Path) -> str | None:
    """Stop the vLLM a killed run in `folder` left running (its process group), if it still runs; say so."""
    marker = Path(folder) / "engine.json"
    try:
        pid = json.loads(marker.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None
    marker.unlink(missing_ok=True)
    if not kill_orphan_group(pid, "vllm"):
        return None
    return f"stopped the engine (pid {pid}) that an interrupted run left running"


def stop_on_signals() -> None:
    """Make SIGTERM (`kill PID`) and SIGINT unwind like Ctrl-C, so that `finally` stops the engine
    instead of leaving vLLM running without its parent. SIGINT is set explicitly because a process
    started in the background by a script inherits it ignored, and Python then keeps ignoring it."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
