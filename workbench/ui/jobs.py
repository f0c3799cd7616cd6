"""Background jobs the UI starts and polls (quantization, quality reports). No gradio here."""

import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field

from workbench.errors import WorkbenchError


@dataclass
class Job:
    """One background call; `status()` is what the UI shows while it runs."""

    kind: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: object = None
    result: object = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, fn, *args, **kwargs) -> "Job":
        def target():
            try:
                self.result = fn(*args, **kwargs)
            except WorkbenchError as exc:
                self.error = str(exc)
            except Exception as exc:  # noqa: BLE001 - a bug: one line for the person, the traceback to the log
                self.error = f"unexpected {type(exc).__name__}: {exc} (the traceback is in the workbench's log)"
                traceback.print_exc()
            finally:
                self.finished = time.monotonic()

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)


@dataclass
class JobRegistry:
    """Jobs by id, so that per-user gr.State holds only an id (threads cannot be copied). An app left
    running forgets finished jobs an hour after they end once it holds more than `keep`."""

    jobs: dict[str, Job] = field(default_factory=dict)
    keep: int = 100
    forget_after_s: float = 3600.0

    def add(self, job: Job) -> Job:
        if len(self.jobs) >= self.keep:
            now = time.monotonic()
            for old in [j for j in self.jobs.values() if j.finished and now - j.finished > self.forget_after_s]:
                del self.jobs[old.id]
        self.jobs[job.id] = job
        return job

    def get(self, job_id: str | None) -> Job | None:
        return self.jobs.get(job_id) if job_id else None


def relay(pieces, show):
    """Inside a generator handler: `result = yield from relay(stream_pieces(...), show)` yields show(piece)
    for each piece and returns the stream's result."""
    while True:
        try:
            piece = next(pieces)
        except StopIteration as done:
            return done.value
        yield show(piece)


def stream_pieces(fn, *args, **kwargs):
    """Call fn(*args, on_text=callback, **kwargs) in a thread and yield each piece of text as it
    arrives; the generator's return value is fn's result (its exception is raised here)."""
    pieces: queue.Queue = queue.Queue()
    box: dict = {}

    def work():
        try:
            box["result"] = fn(*args, on_text=pieces.put, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            pieces.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (piece := pieces.get()) is not None:
        yield piece
    if "error" in box:
        raise box["error"]
    return box["result"]
