"""gpu_lease.py: one vLLM engine per GPU. Starting vLLM on a GPU takes the device; a second start on a taken device is
refused with the holder's name and the fix, or, when the holder agreed to step aside (the app's own engine), the
holder is stopped, told why, and started again when the borrower is done.

Why: vLLM reserves `gpu_memory_utilization` (0.9) of the card when it starts, so a second engine on the same GPU
fails with "Free memory on device ... is less than desired GPU memory utilization". The CPU build hides this (each
engine takes a fixed VLLM_CPU_KVCACHE_SPACE), so on the CPU build the rule is off unless
WORKBENCH_ONE_ENGINE_PER_DEVICE=1 switches it on (the tests do, to check every path that needs another model).

A lease is a lock file per device (flock), held by the process that started the engine and by the vLLM server it
started (the descriptor is handed down), so it holds across processes and ends by itself when both are gone.
Within one process, the table `_held` says who holds what, and who agreed to step aside (`Yielder`).

Knows nothing about vLLM's flags or prompts: the engine calls `take` before it spawns vLLM.
"""

import fcntl
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from workbench import settings
from workbench.errors import EngineStartupError

ENV = "WORKBENCH_ONE_ENGINE_PER_DEVICE"
log = logging.getLogger("workbench.gpu_lease")


def one_engine(device: str) -> bool:
    """True where the rule holds: every GPU, and the CPU build when WORKBENCH_ONE_ENGINE_PER_DEVICE=1."""
    return device == "gpu" or os.environ.get(ENV, "") not in ("", "0")


def device_key(device: str) -> str:
    """The device an engine lands on: the first CUDA device this process sees (CUDA_VISIBLE_DEVICES), or 'cpu'."""
    if device != "gpu":
        return "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return f"cuda-{visible or '0'}"


def _describe(key: str) -> str:
    return "this machine's CPU (the one-engine rule switched on by " + ENV + ")" if key == "cpu" else \
        f"the GPU {key.replace('-', ':')}"


@dataclass
class Yielder:
    """A holder that agrees to step aside: `stop(borrower)` stops its engine (saying why), `start()` brings it back."""

    name: str
    stop: Callable[[str], None]
    start: Callable[[], None]


@dataclass
class Lease:
    key: str
    what: str
    fd: int
    yielder: Yielder | None = None
    restore: list = field(default_factory=list)  # holders this lease set aside, brought back on release
    released: bool = False

    @property
    def fds(self) -> tuple[int, ...]:
        """For subprocess.Popen(pass_fds=...): the engine's server holds the lease too, so that a vLLM left running
        by a killed workbench keeps the device taken."""
        return (self.fd,)

    def note(self, **facts) -> None:
        """Add facts (the server's pid and URL) to what a refused start reads about this holder."""
        _write(self.fd, {**_read_fd(self.fd), **facts})

    def release(self) -> None:
        with _lock:
            if self.released:
                return
            self.released = True
            os.close(self.fd)  # the lock ends once the engine's server has exited too
            if _held.get(self.key) is self:
                del _held[self.key]
            restore, self.restore = self.restore, []
        for yielder in restore:
            _bring_back(yielder, f"{self.what} stopped")


_lock = threading.RLock()
_held: dict[str, Lease] = {}
_scopes: list["_Scope"] = []


@dataclass
class _Scope:
    name: str
    say: Callable[[str], None] | None
    restore: list = field(default_factory=list)


def _say(text: str) -> None:
    log.warning(text)
    for scope in _scopes:
        if scope.say:
            scope.say(text)


def _bring_back(yielder: Yielder, why: str) -> None:
    _say(f"bringing back {yielder.name} ({why})")
    yielder.start()


def holder(device: str) -> dict | None:
    """Who holds the device now (this process or another): {'pid', 'what', 'since', ...}, or None."""
    key = device_key(device)
    with _lock:
        if key in _held:
            return _read_fd(_held[key].fd)
    fd = _open(key)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_fd(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def take(device: str, what: str, yielder: Yielder | None = None) -> Lease | None:
    """Take the device for an engine described by `what` ("vLLM serving X"). None where the rule is off. A holder in
    this process that agreed to step aside is stopped (and brought back when this lease, or the `borrowing` scope
    around it, ends); any other holder makes this raise EngineStartupError naming it and the fix."""
    if not one_engine(device):
        return None
    key = device_key(device)
    with _lock:
        current = _held.get(key)
        wait_s = 0.0
        if current is not None and not current.released:
            if current.yielder is None:
                raise _busy(key, _read_fd(current.fd), what)
            aside = current.yielder
            where = _scopes[-1].name if _scopes else "it stops"
            _say(f"one engine per device: setting aside {aside.name} on {_describe(key)} to serve {what}; "
                 f"it comes back when {where}")
            aside.stop(what)
            current.release()  # in case its stop did not end the lease (it should)
            if _scopes:
                _scopes[-1].restore.append(aside)
            pending = [] if _scopes else [aside]
            wait_s = 20.0  # its server's last processes may take a moment to exit and let go of the lock
        else:
            pending = []
        fd = _open(key)
        if not _lock_within(fd, wait_s):
            other = _read_fd(fd)
            os.close(fd)
            for yielder_ in pending:  # nothing is served after all: bring back what was set aside
                _bring_back(yielder_, "the device is held by another process")
            raise _busy(key, other, what) from None
        _write(fd, {"pid": os.getpid(), "what": what, "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        lease = Lease(key, what, fd, yielder, restore=pending)
        _held[key] = lease
        return lease


@contextmanager
def borrowing(name: str, say: Callable[[str], None] | None = None):
    """Within this block, a holder set aside is brought back only at its end (not after each engine), so that a run
    of several engines (compare's candidates, the quality report's checkpoints) stops the app's engine once.
    `name` says when it comes back ("the compare run ends"); `say` hears what is set aside and brought back."""
    scope = _Scope(name, say)
    with _lock:
        _scopes.append(scope)
    try:
        yield scope
    finally:
        with _lock:
            _scopes.remove(scope)
        for yielder in scope.restore:
            if say:
                say(f"bringing back {yielder.name} ({name.removesuffix(' ends')} is done)")
            log.warning("bringing back %s", yielder.name)
            yielder.start()


def _busy(key: str, info: dict, what: str) -> EngineStartupError:
    pid = info.get("server_pid") or info.get("pid")
    url = f" at {info['url']}" if info.get("url") else ""
    held = info.get("what", "an engine")
    gpu = key != "cpu"
    why = ("vLLM reserves most of a GPU's memory when it starts (gpu_memory_utilization, 0.9 by default), so a second "
           "engine would not start" if gpu else "the one-engine rule is switched on for the CPU build")
    return EngineStartupError(
        f"cannot start {what}: {_describe(key)} already runs {held}{url} (pid {pid}, since {info.get('since', '?')}); "
        f"{why}. Fix: stop that engine first (Ctrl-C where it runs, Stop on the Engine tab, or `kill {pid}`), then "
        f"try again; or use it by URL instead of starting another (e.g. --candidate NAME={info.get('url') or 'URL'})."
    )


def _lock_within(fd: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def _open(key: str) -> int:
    folder = settings.cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)


def _read_fd(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 65536).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _write(fd: int, info: dict) -> None:
    data = json.dumps(info).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def run_borrowing(name: str, fn, *args, **kwargs):
    """fn(*args, **kwargs) inside `borrowing(name)`: a holder it sets aside comes back once, when fn returns."""
    with borrowing(name):
        return fn(*args, **kwargs)
