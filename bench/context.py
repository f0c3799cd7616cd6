"""How much of the context the bundled model (SmolLM2-135M) and its GPTQ and RTN INT4 checkpoints can be trusted
with, up to the 8,192 positions the model allows: `workbench compare`'s context task (facts planted over depth ×
length in a generated Chinese and English contract, asked through document QA) on each, with the paired verdicts
against bf16 and the planner's memory answer beside each. Writes bench/results/context.json.

    python bench/context.py [--lengths 1024,4096,8192] [--depths 0,100] [--facts 2] [--only bf16,rtn,gptq]

The three are served here in turn by vLLM's CPU build at max_model_len 8192 (--enforce-eager, as in
bench/compare.py); the checkpoints come from the cache (quantize.cached: made once, about 2.5 minutes for GPTQ and
20 s for RTN on 2 cores) and every finished result from the comparison's store, so a stopped run goes on where it
stopped. This is a 135M model on 2 CPU cores: what it shows is the method and the shape of the answer, not what a
14B model does on a GPU.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from workbench import context, settings
from workbench.measurement import compare, compare_request
from workbench.quantization import quantize
from workbench.serving import hardware, models

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=context.parse_lengths, default=(1024, 4096, 8192))
    parser.add_argument("--depths", type=context.parse_depths, default=(0.0, 100.0))
    parser.add_argument("--facts", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--only", default="bf16,gptq,rtn", help="which candidates (bf16 first: the baseline)")
    args = parser.parse_args()
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    eager = "--enforce-eager"
    candidates = [compare_request.Candidate("bf16", models.BUNDLED_MODEL, (eager,))]
    for method in ("gptq", "rtn"):
        if method in wanted:
            folder = quantize.cached(
                models.BUNDLED_MODEL, quantize.QuantizeSettings(method=method, group_size=args.group_size)
            ).out
            candidates.append(compare_request.Candidate(f"{method}-int4-g{args.group_size}", str(folder), (eager,)))
    request = compare_request.CompareRequest(
        candidates=tuple(candidates),
        tasks=("context",),
        workload=None,
        gpu="RTX 3090",
        max_model_len=max(args.lengths),
        settings=compare_request.TaskSettings(
            context_lengths=args.lengths, context_depths=args.depths, context_facts=args.facts
        ),
        store=str(settings.cache_dir() / "bench-context" / "store"),
    )
    started = time.perf_counter()
    report = compare.run(request, on_event=lambda e: print(e, file=sys.stderr, flush=True))
    full = report.as_dict()
    rows = []
    for c in candidates:
        result = full["results"].get(c.name, {}).get("context")
        if not result:
            rows.append({"candidate": c.name, "error": full["candidates"][candidates.index(c)].get("error")})
            continue
        s = result["summary"]
        rows.append(
            {
                "candidate": c.name,
                "headline": s["headline"],
                "longest_reliable": s["longest_reliable"],
                "per_length": s["per_length"],
                "grid": s["grid"],
                "memory": s["memory"],
                "seconds": result.get("seconds"),
            }
        )
    payload = {
        "what": "facts planted in a generated zh and en contract, asked through document QA; found = verified quote "
        "and the planted value; a value from the near-duplicate distractor = wrong",
        "honest_label": "SmolLM2-135M and its INT4 checkpoints on vLLM's CPU build, 2 CPU cores shared with other "
        "work: the method and the shape of the answer, not a 14B model's numbers on a GPU",
        "settings": {
            "lengths": list(args.lengths),
            "depths": list(args.depths),
            "facts_per_cell": args.facts,
            "documents": 2,
            "target": 0.95,
            "max_model_len": max(args.lengths),
            "gpu_for_memory": "RTX 3090",
        },
        "rows": rows,
        "verdicts": {name: [v for v in vs if v["task"] == "context"] for name, vs in full["verdicts"].items()},
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "cpus": hardware.machine_facts().cpu_count,
            "vllm": f"{hardware.vllm_build()} {hardware.package_version(hardware.vllm_build() or 'vllm')}",
        },
        "command": "python bench/context.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "context.json").write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
    print(f"{'candidate':<16} {'recall per length':<44} longest reliable  headline")
    for r in rows:
        if "error" in r:
            print(f"{r['candidate']:<16} failed: {r['error']}")
            continue
        per = ", ".join(f"{p['length'] // 1024}K {p['recall']:.2f}" for p in r["per_length"])
        print(f"{r['candidate']:<16} {per:<44} {r['longest_reliable']!s:<17} {r['headline']}")
    for name, verdicts in payload["verdicts"].items():
        for v in verdicts:
            print(f"{name} vs bf16: {v['outcome']} (difference {v['difference']}, power {v['power']})")
    print(f"wrote {RESULTS / 'context.json'}")


if __name__ == "__main__":
    main()
