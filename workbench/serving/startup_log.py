"""startup_log.py reads what vLLM says about itself: the facts of a start-up log (GPU or CPU build, V0 or V1
formats, newest first) and, for an engine whose log is not at hand, what a running server serves about itself
(/version, /v1/models, the cache_config_info metric). It is the one reader of a start-up log: the engine's report
and the planner's calibration (planner/fit.py) both read it here. It starts nothing (the engine process is
engine.py's) and fits nothing (the planner does).
"""

import json
import re
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.errors import ConfigError


@dataclass(frozen=True)
class EngineReport:
    """What vLLM said about itself while starting. Missing facts are None.

    The first fields are what a person looks for (the report shows them); the rest are the settings and the
    memory budget the engine printed, which the planner's calibration reads (the report leaves them out)."""

    device: str | None = None  # "cpu" or "gpu"
    vllm_version: str | None = None
    weights_gib: float | None = None
    kv_cache_gib: float | None = None  # the pool (GPU) or VLLM_CPU_KVCACHE_SPACE (CPU)
    kv_cache_tokens: int | None = None
    max_model_len: int | None = None
    max_concurrency: float | None = None
    init_s: float | None = None
    linear_kernel: str | None = None
    cuda_graph_gib: float | None = None
    # what the engine ran with, as its config and budget lines print it
    model: str | None = None  # the path or repo the engine served
    total_gib: float | None = None  # the GPU's memory, from the budget line (0.6.4 on)
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    kv_cache_dtype: str | None = None  # as printed: auto, fp8, fp8_e4m3, ...
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    compile_s: float | None = None  # "torch.compile took … s in total": tens of seconds cold, under one warm
    enforce_eager: bool | None = None  # as the engine's arguments or config print it

    def as_dict(self) -> dict:
        """The facts a person reads (the report's rows), not the settings it ran with."""
        return {k: v for k, v in asdict(self).items() if k in _SHOWN}

    def rows(self) -> list[tuple[str, str]]:
        """The report in people's words, one (what, value) per fact vLLM gave, with separators and units:
        ("KV cache", "1.0 GiB (46,592 tokens)"). A fact it did not give is left out, not shown empty. The one
        formatter of the report: `workbench serve`, the Engine tab and the notebooks' panel all show these rows."""
        where = {"cpu": "on the CPU", "gpu": "on a GPU"}.get(self.device or "")
        kv = ([f"{_gib(self.kv_cache_gib)} GiB"] if self.kv_cache_gib is not None else []) + (
            [f"{self.kv_cache_tokens:,} tokens"] if self.kv_cache_tokens is not None else []
        )
        length = f"{self.max_model_len:,} tokens" if self.max_model_len is not None else None
        rows = [
            ("vLLM", " ".join(x for x in (self.vllm_version, where) if x)),
            ("Weights", f"{_gib(self.weights_gib)} GiB" if self.weights_gib is not None else ""),
            ("KV cache", kv[0] + (f" ({kv[1]})" if len(kv) > 1 else "") if kv else ""),
            ("Longest request", length or ""),
            (
                "Requests at once",
                f"{self.max_concurrency:,.2f}" + (f" of {length} each" if length else " full-length")
                if self.max_concurrency is not None
                else "",
            ),
            ("Start-up (profile, KV cache, warm-up)", f"{self.init_s:,.1f} s" if self.init_s is not None else ""),
            ("Linear-layer kernel", self.linear_kernel or ""),
            ("CUDA graphs", f"{_gib(self.cuda_graph_gib)} GiB" if self.cuda_graph_gib is not None else ""),
        ]
        return [(what, value) for what, value in rows if value]

    def to_text(self) -> str:
        """One fact a line: `KV cache: 1.0 GiB (46,592 tokens)`."""
        return "\n".join(f"{what}: {value}" for what, value in self.rows()) or _NOTHING

    def to_markdown(self) -> str:
        return "\n".join(f"- **{what}**: {value}" for what, value in self.rows()) or f"_{_NOTHING}_"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


_NOTHING = "vLLM has not reported its start-up facts yet"


def _gib(value: float) -> str:
    """GiB with two decimals, a trailing zero dropped: 1.0, 0.25, 112.61, 1,024.5."""
    text = f"{value:,.2f}"
    return text[:-1] if text.endswith("0") else text


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
    "compile_s": [rf"torch\.compile took {_NUM} s in total"],
    "vllm_version": [r"vLLM API server version ([\w.+-]+)", r"Initializing an? (?:V\d )?LLM engine \(v?([\w.+-]+)\)"],
    "device": [
        r"Automatically detected platform (\w+)",
        r"(GPU|CPU) KV cache size",
        r"# (GPU|cuda) blocks",
        r"\[(gpu|cpu)_(?:model_runner|worker)\.py",
        r"(cuda)\.py",
    ],
}
# The settings the engine prints in its config line (V1) or engine arguments (V0), first match wins.
_SETTINGS: dict[str, list[str]] = {
    "model": [r"LLM engine \(v?[\w.+-]+\) with config: model='([^']+)'", r"'model': '([^']+)'"],
    "gpu_memory_utilization": [r"'gpu_memory_utilization': ([\d.]+)", r"gpu_memory_utilization=([\d.]+)"],
    "tensor_parallel_size": [r"tensor_parallel_size=(\d+)", r"'tensor_parallel_size': (\d+)"],
    "pipeline_parallel_size": [r"pipeline_parallel_size=(\d+)", r"'pipeline_parallel_size': (\d+)"],
    "kv_cache_dtype": [r"kv_cache_dtype=(\w+)", r"'kv_cache_dtype': '(\w+)'"],
    "max_num_batched_tokens": [r"max_num_batched_tokens=(\d+)", r"'max_num_batched_tokens': (\d+)"],
    "max_num_seqs": [r"'max_num_seqs': (\d+)", r"max_num_seqs=(\d+)"],
    "max_model_len": [r"Using max model len (\d+)", r"max_seq_len=(\d+)", r"'max_model_len': (\d+)"],
    "enforce_eager": [r"'enforce_eager': (True|False)", r"enforce_eager=(True|False)"],
}
# The memory budget, by vLLM version: the GPU's total GiB and gpu_memory_utilization on one line.
_BUDGET = [
    r"total_gpu_memory \((?P<total>[\d.]+) ?GiB\) x gpu_memory_utilization \((?P<gmu>[\d.]+)\)",  # 0.7-0.10
    r"Free memory on device \([\d.]+/(?P<total>[\d.]+) GiB\) on startup\. Desired GPU memory utilization is "
    r"\((?P<gmu>[\d.]+)",  # 0.11 and later
    r"total_gpu_memory=(?P<total>[\d.]+) ?GiB.*?gpu_memory_utilization=(?P<gmu>[\d.]+)",  # 0.6.4
    r"total_gpu_memory\s+(?P<total>[\d.]+) ?GiB\s*\n.*?gpu_memory_utilization\s+(?P<gmu>[\d.]+)",  # 0.6.5 table
]
_BLOCK_SIZE = 16  # vLLM's default block size; older logs report blocks, not tokens
_SHOWN = (
    "device",
    "vllm_version",
    "weights_gib",
    "kv_cache_gib",
    "kv_cache_tokens",
    "max_model_len",
    "max_concurrency",
    "init_s",
    "linear_kernel",
    "cuda_graph_gib",
)  # the report's rows


def _first(pattern_list: list[str], text: str) -> re.Match | None:
    for pattern in pattern_list:
        match = re.search(pattern, text)
        if match:
            return match
    return None


def _num(s: str) -> float:
    return float(s.replace(",", ""))


def parse_startup_log(text: str) -> EngineReport:
    """Read the facts of a vLLM start-up log, CPU or GPU build, V0 or V1: what a person looks for, and the
    settings and memory budget the engine printed."""
    found: dict = {}
    for key in ("weights_gib", "kv_cache_gib", "init_s", "cuda_graph_gib", "compile_s"):
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
    settings = {}
    for key, patterns in _SETTINGS.items():
        m = _first(patterns, text)
        settings[key] = m.group(1) if m else None
    for key in ("tensor_parallel_size", "pipeline_parallel_size", "max_num_batched_tokens", "max_num_seqs"):
        found[key] = int(settings[key]) if settings[key] else None
    found["model"], found["kv_cache_dtype"] = settings["model"], settings["kv_cache_dtype"]
    found["enforce_eager"] = settings["enforce_eager"] == "True" if settings["enforce_eager"] else None
    if found["max_model_len"] is None and settings["max_model_len"]:
        found["max_model_len"] = int(settings["max_model_len"])
    budget = _first(_BUDGET, text)
    found["total_gib"] = float(budget.group("total")) if budget else None
    gmu = budget.group("gmu") if budget else settings["gpu_memory_utilization"]
    found["gpu_memory_utilization"] = float(gmu) if gmu else None
    return EngineReport(**found)


def read_startup_log(path: str | Path, source: str) -> EngineReport:
    """The facts of a saved start-up log; ConfigError naming the file as `source` says when it cannot be read."""
    try:
        text = Path(path).expanduser().read_text(errors="replace")
    except OSError as e:
        raise ConfigError(
            f"{source}: cannot read it ({e.strerror}). Fix: give the path of a saved `vllm serve` log."
        ) from None
    return parse_startup_log(text)


def report_from_server(url: str, timeout_s: float = 5.0) -> EngineReport:
    """The facts a running vLLM serves about itself (/version, /v1/models, the cache_config_info metric),
    for an engine whose start-up log is not at hand. Weights and timings are only in the log."""

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
    line = next((row for row in get("/metrics").splitlines() if row.startswith("vllm:cache_config_info")), "")
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
