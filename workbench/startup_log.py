"""startup_log.py reads what vLLM says about itself: the facts of a start-up log (GPU or CPU build, V0 or V1
formats, newest first) and, for an engine whose log is not at hand, what a running server serves about itself
(/version, /v1/models, the cache_config_info metric). It starts nothing; the engine process is engine.py's.
"""

import json
import re
import urllib.request
from dataclasses import asdict, dataclass


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
