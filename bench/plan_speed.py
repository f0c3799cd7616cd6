"""How long a plan and a sweep take (target: well under 50 ms). Prints a table and writes
bench/results/plan_speed.json.

    python bench/plan_speed.py
"""

import json
import statistics
import time
from pathlib import Path

from workbench.planner import gpu_plan, sweeps
from workbench.planner.vllm_facts import ServeSettings
from workbench.serving import hardware, model_catalog, models

RESULTS = Path(__file__).parent / "results"
LENGTHS = [2048, 4096, 8192, 16384, 32768, 40960]


def timed(fn, repeats: int) -> dict:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "median_ms": round(statistics.median(samples), 4),
        "p99_ms": round(sorted(samples)[int(0.99 * repeats) - 1], 4),
        "repeats": repeats,
    }


def main() -> None:
    spec, gpu = model_catalog.CATALOG["Qwen3-14B"], hardware.find_gpu("RTX 3090")
    settings = ServeSettings(max_model_len=32768)
    rows = {
        "plan (catalog model)": timed(lambda: gpu_plan.plan(spec, gpu, "gptq-int4", settings), 2000),
        "sweep (6 context lengths)": timed(
            lambda: sweeps.sweep_context(spec, gpu, "gptq-int4", settings, LENGTHS), 500
        ),
        "find_model + find_gpu": timed(lambda: (models.find_model("qwen3-14b"), hardware.find_gpu("rtx3090")), 2000),
    }
    print(f"{'what':<28} {'median ms':>10} {'p99 ms':>10}")
    for name, r in rows.items():
        print(f"{name:<28} {r['median_ms']:>10} {r['p99_ms']:>10}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "plan_speed.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
