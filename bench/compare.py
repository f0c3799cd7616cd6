"""The bundled model's bf16 against its GPTQ INT4 g64 and RTN INT4 g64 checkpoints on every task of `workbench
compare` (perplexity, the project's tool cases, BFCL, document QA, the A/B example's dataset), with the benchmark at
concurrency 1 and 2 and the memory plan on an RTX 3090 at 32K. Writes bench/results/compare.json and the report
(bench/results/compare/report.html, report.md, report.csv).

    python bench/compare.py [--group-size 64] [--samples 32] [--seq-len 512] [--items N]

The checkpoints are made once into the cache (quantize.cached) and reused while their settings hold; the
comparison's store keeps every finished result, so a run that is stopped goes on where it stopped. About 45
minutes on 2 cores, most of it the tool and document tasks of three engines.
"""

import argparse
import json
import sys
from pathlib import Path

from workbench import settings
from workbench.measurement import abconfig, bench, compare, compare_request
from workbench.quantization import quantize
from workbench.serving import hardware, models

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--items", type=int, default=None, help="cap every task (default: each task's whole set)")
    args = parser.parse_args()
    folders = {
        m: quantize.cached(
            models.BUNDLED_MODEL,
            quantize.QuantizeSettings(method=m, group_size=args.group_size, samples=args.samples, seq_len=args.seq_len),
        ).out
        for m in ("gptq", "rtn")
    }
    eager = "--enforce-eager"  # the same for all three: vLLM's CPU build compiles otherwise, per checkpoint
    request = compare_request.CompareRequest(
        candidates=(
            compare_request.Candidate("bf16", models.BUNDLED_MODEL, (eager,)),
            compare_request.Candidate(f"gptq-int4-g{args.group_size}", str(folders["gptq"]), (eager,)),
            compare_request.Candidate(f"rtn-int4-g{args.group_size}", str(folders["rtn"]), (eager,)),
        ),
        tasks=tuple(compare_request.TASKS),
        settings=compare_request.TaskSettings(
            items=args.items, tools_design="constrained", ab_config=str(abconfig.EXAMPLE)
        ),
        workload=bench.Workload(num_prompts=8, input_len=128, output_len=32),
        concurrency=(1, 2),
        repeats=3,
        gpu="RTX 3090",
        plan_context=32_768,
        store=str(settings.cache_dir() / "bench-compare" / "store"),
    )
    report = compare.run(request, on_event=lambda e: print(e, file=sys.stderr, flush=True))
    RESULTS.mkdir(exist_ok=True)
    files = report.save_report(RESULTS / "compare")
    payload = report.as_dict()
    payload["machine"] = {
        "cpus": hardware.machine_facts().cpu_count,
        "vllm": f"{hardware.vllm_build()} {hardware.package_version(hardware.vllm_build() or 'vllm')}",
    }
    payload["command"] = "python bench/compare.py " + " ".join(sys.argv[1:])
    (RESULTS / "compare.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
    files["json"].unlink()  # the one compare.json is bench/results/compare.json, with the machine
    print(report.to_text())
    print(f"wrote {RESULTS / 'compare.json'} and {files['html']}")


if __name__ == "__main__":
    main()
