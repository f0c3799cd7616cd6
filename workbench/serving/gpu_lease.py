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

Across processes (the app serving in one, a notebook or `workbench compare` wanting the device in another), a holder
that agreed to step aside also listens on a Unix socket named in its lock file ("yield_socket"), answered by a daemon
thread. A borrower that finds the device held sends what it wants to serve; the holder says it heard (within ACK_S,
or the borrower refuses, naming it), stops its engine, lets go of the lease and says it stepped aside (within STOP_S);
the borrower takes the lock and keeps the connection open for as long as its lease, or the `borrowing` scope around
it, lasts. The connection's end (a release, or the borrower's process dying, which the kernel closes) is what brings
the holder back. A holder without a Yielder (`workbench serve`, started on purpose) is refused as before, and so is
one whose process is gone while its vLLM server still holds the device (nobody answers at its socket).

Knows nothing about vLLM's flags or prompts: the engine calls `take` before it spawns vLLM.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from workbench import settings
from workbench.errors import EngineStartupError, WorkbenchError

ENV = "WORKBENCH_ONE_ENGINE_PER_DEVICE"
ACK_S = 5.0  # a holder in another process says it heard a request to step aside within this, or is taken for stuck
STOP_S = 90.0  # ...and has stopped its engine within this (vLLM's stop: SIGTERM, up to 20 s, then SIGKILL)
FREE_S = 20.0  # a stopped engine's last processes let go of the lock within this
log = logging.getLogger("workbench.serving.gpu_lease")


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
    return (
        "this machine's CPU (the one-engine rule switched on by " + ENV + ")"
        if key == "cpu"
        else f"the GPU {key.replace('-', ':')}"
    )


@dataclass
class Yielder:
    """A holder that agrees to step aside: `stop(borrower)` stops its engine (saying why), `start()` brings it back.
    For a borrower in another process both are called from the lease's own thread. A borrower holds a holder it set
    aside in another process as a Yielder too, whose `start()` ends the loan."""

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
    listener: socket.socket | None = None  # where a borrower in another process asks the yielder to step aside
    socket_path: str | None = None

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
            if self.listener is not None:  # removed while the lock is still ours, so never a successor's socket
                with contextlib.suppress(OSError):
                    os.unlink(self.socket_path)
                self.listener.close()
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
    this process or another that agreed to step aside is stopped (and brought back when this lease, or the
    `borrowing` scope around it, ends); any other holder makes this raise EngineStartupError naming it and the fix.
    With a `yielder`, this lease agrees to step aside in turn, for borrowers in this process and in others."""
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
            _say(
                f"one engine per device: setting aside {aside.name} on {_describe(key)} to serve {what}; "
                f"it comes back when {where}"
            )
            aside.stop(what)
            current.release()  # in case its stop did not end the lease (it should)
            if _scopes:
                _scopes[-1].restore.append(aside)
            pending = [] if _scopes else [aside]
            wait_s = FREE_S  # its server's last processes may take a moment to exit and let go of the lock
        else:
            pending = []
        fd = _open(key)
        locked = _lock_within(fd, wait_s)
        other = {} if locked else _read_fd(fd)
        if not locked and not wait_s and other.get("yield_socket") and other.get("pid") != os.getpid():
            try:  # the holder is in another process and agreed to step aside: ask it
                loan = _borrow(key, other, what)
            except EngineStartupError:
                os.close(fd)
                raise
            if loan is not None:
                (_scopes[-1].restore if _scopes else pending).append(loan)
            locked = _lock_within(fd, FREE_S if loan else 0.0)  # nobody answered: its holder may have just ended
        if not locked:
            other = _read_fd(fd)
            os.close(fd)
            for yielder_ in pending:  # nothing is served after all: bring back what was set aside
                _bring_back(yielder_, "the device is held by another process")
            raise _busy(key, other, what) from None
        _write(fd, {"pid": os.getpid(), "what": what, "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        lease = Lease(key, what, fd, yielder, restore=pending)
        _held[key] = lease
        if yielder is not None:
            _listen(lease)
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


def _busy(key: str, info: dict, what: str, note: str = "") -> EngineStartupError:
    """The refusal: who holds the device, why a second engine cannot start, the fix; `note` says why the holder,
    though it agreed to step aside, did not."""
    pid = info.get("server_pid") or info.get("pid")
    url = f" at {info['url']}" if info.get("url") else ""
    held = info.get("what", "an engine")
    gpu = key != "cpu"
    why = (
        "vLLM reserves most of a GPU's memory when it starts (gpu_memory_utilization, 0.9 by default), so a second "
        "engine would not start"
        if gpu
        else "the one-engine rule is switched on for the CPU build"
    )
    return EngineStartupError(
        f"cannot start {what}: {_describe(key)} already runs {held}{url} (pid {pid}, since {info.get('since', '?')}); "
        f"{note + '; ' if note else ''}{why}. "
        f"Fix: stop that engine first (Ctrl-C where it runs, Stop on the Engine tab, or `kill {pid}`), then "
        f"try again; or use it by URL instead of starting another (e.g. --candidate NAME={info.get('url') or 'URL'})."
    )


def _listen(lease: Lease) -> None:
    """Holder: let borrowers in other processes ask `lease.yielder` to step aside, on a Unix socket that the lock file
    names. Without one (it cannot be made), they are refused as from a holder that did not agree."""
    path = _socket_path(lease.key)
    with contextlib.suppress(OSError):  # (one we may not remove makes bind fail, below)
        os.unlink(path)  # left by a holder that was killed: the lock is ours now, so the socket is nobody's
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        os.chmod(path, 0o600)  # only this user's processes may ask its engine to step aside
        listener.listen()
    except OSError as exc:
        listener.close()
        log.warning(
            "cannot listen at %s (%s): engines in other processes will not set aside %s", path, exc, lease.yielder.name
        )
        return
    listener.settimeout(0.5)  # the loop below looks at `lease.released` this often
    lease.listener, lease.socket_path = listener, str(path)
    lease.note(yield_socket=str(path), yielder=lease.yielder.name)
    threading.Thread(target=_answer_borrowers, args=(lease,), name=f"gpu_lease {lease.key}", daemon=True).start()


def _answer_borrowers(lease: Lease) -> None:
    while not lease.released:
        try:
            conn, _ = lease.listener.accept()
        except TimeoutError:
            continue
        except OSError:  # closed by release()
            return
        with conn, conn.makefile("rb") as reader:
            _lend(lease, conn, reader)


def _lend(lease: Lease, conn: socket.socket, reader) -> None:
    """Holder: answer one borrower. Say it was heard, stop the engine, let go of the lease, say it stepped aside; then
    wait for the connection to end (the borrower is done, or its process died) and bring the engine back."""
    conn.settimeout(ACK_S)
    try:
        asked = json.loads(reader.readline())
        borrower = f"{asked['what']} in process {asked['pid']}"
        conn.sendall(b'{"heard": true}\n')
    except (OSError, ValueError, KeyError, TypeError):
        return  # not a borrower, or one that left
    yielder = lease.yielder
    with _lock:
        if lease.released:  # stopped meanwhile: the borrower finds the device free, or held by someone else
            _reply(conn, refused="it stopped meanwhile")
            return
        _say(
            f"one engine per device: setting aside {yielder.name} on {_describe(lease.key)} for {borrower}; "
            "it comes back when that engine stops or that process ends"
        )
        conn.settimeout(STOP_S)
        try:
            yielder.stop(borrower)
        except Exception as exc:  # noqa: BLE001 - a thread's edge: the borrower hears why, not a timeout
            log.exception("stopping %s for %s failed", yielder.name, borrower)
            _reply(conn, refused=f"stopping it failed: {exc}")
            return
        lease.release()  # in case its stop did not end the lease (it should)
    _reply(conn, stepped_aside=True)
    conn.settimeout(None)
    try:
        done = reader.readline()  # a line when the borrower is done; nothing when its process died
    except OSError:
        done = b""
    _wait_free(lease.key)  # the borrower's server may take a moment to let go of the device
    try:
        _bring_back(yielder, f"{borrower} stopped" if done else f"process {asked['pid']} ended")
    except WorkbenchError as exc:
        _say(f"could not bring back {yielder.name}: {exc}")


def _borrow(key: str, info: dict, what: str) -> Yielder | None:
    """Borrower: ask the holder in another process (`info`, its lock file) to step aside. Returns the loan, a Yielder
    whose start() ends it; None where nobody answers at its socket (its process is gone; its vLLM server may still
    hold the device); raises the refusal, naming it, where it does not answer in time or does not step aside."""
    name = f"{info.get('yielder', 'an engine')} in process {info.get('pid')}"
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(ACK_S)
    try:
        conn.connect(info["yield_socket"])
    except OSError:
        conn.close()
        return None
    late = f"{name} agreed to step aside but did not answer within {ACK_S:g} s (is that process stopped or stuck?)"
    try:
        with conn.makefile("rb") as reader:
            conn.sendall(json.dumps({"what": what, "pid": os.getpid()}).encode() + b"\n")
            json.loads(reader.readline())  # heard
            where = _scopes[-1].name if _scopes else f"{what} stops"
            _say(
                f"one engine per device: setting aside {name} on {_describe(key)} to serve {what}; it comes back "
                f"when {where} or this process ends"
            )
            late = f"{name} agreed to step aside but had not stopped its engine within {STOP_S:g} s"
            conn.settimeout(STOP_S)
            answer = json.loads(reader.readline())
    except (OSError, ValueError):
        conn.close()
        raise _busy(key, info, what, late) from None
    if not answer.get("stepped_aside"):
        conn.close()
        raise _busy(key, info, what, f"{name} did not step aside: {answer.get('refused')}")
    return Yielder(name, lambda _: None, lambda: _end_loan(conn))


def _end_loan(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(b'{"done": true}\n')
    conn.close()


def _reply(conn: socket.socket, **answer) -> None:
    with contextlib.suppress(OSError):  # a borrower that left hears nothing
        conn.sendall(json.dumps(answer).encode() + b"\n")


def _wait_free(key: str) -> None:
    fd = _open(key)
    try:
        if _lock_within(fd, FREE_S):
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _socket_path(key: str) -> Path:
    """Next to the lock file; a Unix socket's path is limited to 108 bytes, so a long cache dir's goes to the temp
    folder, named by a digest of where it would have been."""
    path = settings.cache_dir() / "locks" / f"{key}.sock"
    if len(os.fsencode(path)) < 100:
        return path
    return Path(tempfile.gettempdir()) / f"workbench-{hashlib.sha1(os.fsencode(path)).hexdigest()[:16]}.sock"


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
