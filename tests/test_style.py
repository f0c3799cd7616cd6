"""The code reads one way: `ruff format` leaves nothing to change and `ruff check` finds nothing ([tool.ruff] in
pyproject.toml). Runs in `make test-fast` too; the fix is the two commands in the failure message."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = "Fix: .venv/bin/ruff format . && .venv/bin/ruff check --fix ."


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_ruff_finds_nothing_to_change(command):
    done = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}\n{FIX}"
