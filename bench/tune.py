"""`workbench tune` on the bundled model, on this machine: the planner's candidates for a stated workload,
what it pruned and why, and vLLM's own defaults with the kept candidates (3 here), each started, benchmarked
`--repeats` times and ranked by goodput; the engines on CPUs of their own and the benchmark on the others
(bench/pinning.py). Prints the ranking, the winner's `vllm serve` line and its goodput and throughput over vLLM's
defaults (a ratio with a 95 % interval over the repeats); writes bench/results/tune.json.

    python bench/tune.py [--concurrency 4] [--num-prompts 16] [--input-len 128] [--output-len 32]
                         [--slo-ttft-ms 1000] [--slo-tpot-ms 50] [--max-candidates 3] [--repeats 3]
                         [--layout pinned|shared] [--server-cpus 1 --client-cpus 0] [--out PATH]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pinning  # noqa: E402

from workbench.measurement import bench, bench_report, tune  # noqa: E402
from workbench.serving import models  # noqa: E402

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
    p.add_argument("--repeats", type=int, default=3, help="benchmark runs per candidate, for the intervals")
    p.add_argument("--out", default=None, help="the JSON to write (default: bench/results/tune.json)")
    pinning.add_flags(p)
    args = p.parse_args()
    client_cpus, server_cpus = pinning.cpus(args) if args.layout == "pinned" else (None, None)
    out_path = Path(args.out) if args.out else RESULTS / "tune.json"

    workload = bench.Workload(args.num_prompts, args.input_len, args.output_len)
    started = time.perf_counter()
    report = tune.tune(
        models.BUNDLED_MODEL,
        workload,
        args.concurrency,
        bench_report.SLO(args.slo_ttft_ms, args.slo_tpot_ms),
        max_candidates=args.max_candidates,
        repeats=args.repeats,
        client_cpus=client_cpus,
        server_cpus=server_cpus,
    )
    report["layout"] = {
        "mode": args.layout,
        "nproc": os.cpu_count(),
        "server_cpus": sorted(server_cpus) if server_cpus else None,
        "client_cpus": sorted(client_cpus) if client_cpus else None,
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["command"] = "python bench/tune.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
    )
    for entry in report["ranked"]:  # the per-request samples are in the level; keep the file readable
        if entry["level"]:
            entry["level"].pop("samples", None)
    print(report.to_text())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {out_path} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
