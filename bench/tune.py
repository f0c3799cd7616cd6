"""`workbench tune` on the bundled model, on this machine: the planner's candidates for a stated workload,
what it pruned and why, and the kept candidates (3 here) each started, benchmarked and ranked by goodput.
Prints the ranking and the winner's `vllm serve` line; writes bench/results/tune.json.

    python bench/tune.py [--concurrency 4] [--num-prompts 16] [--input-len 128] [--output-len 32]
                         [--slo-ttft-ms 1000] [--slo-tpot-ms 50] [--max-candidates 3]
"""

import argparse
import json
import time
from pathlib import Path

from workbench import bench, models, tune

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--num-prompts", type=int, default=16)
    p.add_argument("--input-len", type=int, default=128)
    p.add_argument("--output-len", type=int, default=32)
    p.add_argument("--slo-ttft-ms", type=float, default=1000.0)
    p.add_argument("--slo-tpot-ms", type=float, default=50.0)
    p.add_argument("--max-candidates", type=int, default=3)
    args = p.parse_args()

    workload = bench.Workload(args.num_prompts, args.input_len, args.output_len)
    started = time.perf_counter()
    report = tune.tune(models.BUNDLED_MODEL, workload, args.concurrency, bench.SLO(args.slo_ttft_ms, args.slo_tpot_ms),
                       max_candidates=args.max_candidates)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["command"] = ("python bench/tune.py " + " ".join(f"--{k.replace('_', '-')} {v}"
                                                              for k, v in vars(args).items()))
    for entry in report["ranked"]:  # the per-request samples are in the level; keep the file readable
        if entry["level"]:
            entry["level"].pop("samples", None)
    print(report.to_text())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tune.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {RESULTS / 'tune.json'} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
