"""The one engine a running workbench app drives, shared by every browser tab on purpose (it is
a machine resource, not per-user state). Starting runs in a background thread so that the UI can
show the log while vLLM compiles. No gradio here.

One engine per GPU (gpu_lease.py): the app's engine agrees to step aside. When a run that needs another model
(Compare, the Quantize tab's quality report, a tuner; or, in another process, a notebook or `workbench compare`)
starts its engine on the same device, this engine is stopped, the status says for what, and it is started again when
that run is done."""

import threading
from dataclasses import dataclass, field, replace

from workbench.errors import WorkbenchError
from workbench.serving import gpu_lease, hub
from workbench.serving.client import Client
from workbench.serving.engine import Engine, EngineConfig
from workbench.ui.jobs import JobRegistry


@dataclass
class AppContext:
    config: EngineConfig = field(default_factory=EngineConfig)
    url: str | None = None  # attach instead of starting
    log_path: str | None = None  # the attached engine's log, when known
    engine: Engine | None = None
    error: str | None = None
    jobs: JobRegistry = field(default_factory=JobRegistry)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop_requested: bool = False
    aside_for: str | None = None  # set aside for another engine on this device (gpu_lease): what it serves
    download: hub.DownloadProgress | None = None  # a Hub model's weights on their way, while it starts

    @property
    def starting(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ready(self) -> bool:
        return self.engine is not None and not self.starting and self.engine.running

    def status(self) -> str:
        """One line: starting, running, or why it is not (never started, stopped, exited, unreachable)."""
        if self.starting:
            if self.download is not None and not self.download.finished:
                return f"starting: {self.download}"
            return "starting (the first start compiles the model; about a minute)"
        engine = self.engine
        if engine is not None and engine.running:
            kind = "attached to" if not engine.owned else "serving at"
            return f"running: {kind} {engine.base_url}"
        if self.aside_for:
            return (
                f"set aside: one engine per GPU, and another run has the device for {self.aside_for}; "
                "this engine comes back when that run is done"
            )
        if self.error:
            return f"stopped: {self.error.splitlines()[0]}"
        if engine is not None and engine.owned and not self._stop_requested:
            code = engine.process.poll()
            return f"stopped: vLLM exited with code {code} (its log is on the Engine tab); press Start to restart it"
        if engine is not None and self.url:  # attached to an engine someone else runs
            return f"stopped: nothing answers at {engine.url} any more; start that engine again, then press Start"
        return "stopped"

    def start(self, wait: bool = False) -> None:
        with self._lock:
            if self.starting or self.ready:
                return
            self.error = None
            self._stop_requested = False
            self._thread = threading.Thread(target=self._start, daemon=True)
            self._thread.start()
        if wait:
            self._thread.join()

    def _start(self) -> None:
        try:
            if self.url:
                self.engine = Engine.connect(self.url, log_path=self.log_path)
            else:
                # Held before it starts (not Engine.connect), so that stop() can end a start-up under way:
                # a UI that exits while vLLM compiles must not leave it running without a parent.
                with self._lock:  # a stop() that came before this thread ran wins: nothing is started
                    if self._stop_requested:
                        return
                    self.engine = Engine(self.config)
                    self.engine.yielder = gpu_lease.Yielder(
                        f"the app's engine ({self.config.model})", self._set_aside, self._bring_back
                    )
                with hub.watching(lambda d: setattr(self, "download", d)):
                    self.engine.start()
        except WorkbenchError as exc:
            self.error = None if self._stop_requested else str(exc)

    def _set_aside(self, borrower: str) -> None:
        """gpu_lease: another engine needs this device. Stop ours and say why (status)."""
        self.stop()
        self.aside_for = borrower

    def _bring_back(self) -> None:
        """gpu_lease: the run that needed the device is done: start our engine again (in the background)."""
        if self.aside_for is None:  # stopped or replaced meanwhile by a person: leave it so
            return
        self.aside_for = None
        self.start()

    def stop(self) -> None:
        """Stop an engine this app started (also while it is starting); an attached one is left alone."""
        self.aside_for = None  # a person's stop: a run that set it aside leaves it stopped
        with self._lock:  # either _start() sees the request, or stop() sees its engine
            self._stop_requested = True
            engine = self.engine
        if engine is not None:
            engine.stop()

    def serve(self, model: str) -> None:
        """Replace the engine with one serving `model` (stops an engine we own; detaches otherwise)."""
        self.stop()
        self.engine = None
        self.url = None
        self.config = replace(self.config, model=model)
        self.start()

    def client(self) -> Client:
        """A client of the running engine, or the reason there is none (starting, stopped) with its fix."""
        return Client(self.base_url())

    def base_url(self) -> str:
        """The running engine's OpenAI URL, for a run that makes its own requests (a benchmark, an A/B test)."""
        if self.starting:
            raise WorkbenchError(
                "the engine is still starting (the first start compiles the model; about a minute). "
                "Fix: wait until the Engine tab says running, then try again."
            )
        if not self.ready:
            raise WorkbenchError(f"the engine is not running ({self.status()}). Fix: press Start on the Engine tab.")
        return self.engine.base_url

    def log_tail(self, lines: int = 30) -> str:
        if self.engine is not None and self.engine.log_path is None and not self.engine.owned:
            return (
                "(the log of an attached engine is not known here; the report above comes from the server. "
                "Set WORKBENCH_ENGINE_LOG to its log file to see it.)"
            )
        if self.engine is not None:
            return self.engine.log_tail(lines)
        return self.error or ""
