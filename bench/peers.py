"""The peer tools the benchmarks set beside the workbench, each in a virtual environment of its own under
bench/.venvs/ (their pins clash with vLLM's, so they never touch the project's environment): GuideLLM and aiperf
(serving benchmarks), llm-compressor (quantization). Made on request, once; a stamp file says it is complete.

    python bench/peers.py guidellm aiperf llmcompressor     # make them (minutes; a few GB)
"""

import shutil
import subprocess
import sys
import venv
from pathlib import Path

VENVS = Path(__file__).parent / ".venvs"
CPU_TORCH = "torch==2.13.0+cpu"  # the project's own torch: first, so that no CUDA build is pulled in
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
PEERS = {  # name: (what to install, the command it runs, with torch first when it needs one)
    "guidellm": (["guidellm==0.8.1"], "guidellm", True),
    "aiperf": (["aiperf==0.13.0"], "aiperf", False),
    "llmcompressor": (["llmcompressor==0.14.0.1"], None, True),
}


class PeerMissing(Exception):
    """A peer's environment is not there (or not complete); the message says how to make it."""


def python(name: str) -> Path:
    """The peer's interpreter, or PeerMissing naming the command that makes its environment."""
    if name not in PEERS:
        raise PeerMissing(f"{name!r} is not a peer tool here. Valid: {', '.join(PEERS)}.")
    folder = VENVS / name
    if not (folder / ".complete").is_file():
        raise PeerMissing(
            f"{name} is not installed (its environment {folder} is missing). Fix: "
            f"python bench/peers.py {name}   (or pass --install)"
        )
    return folder / "bin" / "python"


def command(name: str) -> Path:
    return python(name).parent / PEERS[name][1]


def make(name: str) -> Path:
    """Create the peer's environment (once): a fresh venv, the CPU torch first where it needs torch, then it."""
    if name not in PEERS:
        raise PeerMissing(f"{name!r} is not a peer tool here. Valid: {', '.join(PEERS)}.")
    folder = VENVS / name
    if (folder / ".complete").is_file():
        return folder / "bin" / "python"
    shutil.rmtree(folder, ignore_errors=True)
    venv.create(folder, with_pip=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    requirements, _, needs_torch = PEERS[name]
    if needs_torch and subprocess.run([*pip, CPU_TORCH]).returncode != 0:
        subprocess.run([*pip, CPU_TORCH, "--index-url", CPU_TORCH_INDEX], check=True)
    subprocess.run([*pip, *requirements], check=True)
    (folder / ".complete").write_text(" ".join(requirements) + "\n")
    return folder / "bin" / "python"


def available(name: str, install: bool) -> Path:
    return make(name) if install else python(name)


if __name__ == "__main__":
    for peer in sys.argv[1:] or list(PEERS):
        print(f"{peer}: {make(peer)}", flush=True)
