"""bf16 vs GPTQ vs round-to-nearest on the bundled model: perplexity through the served engine,
exact-match answers, size and quantization time. Prints a table, writes
bench/results/quantize.json and bench/results/quantize.png.

    python bench/quantize.py [--group-size 64] [--samples 32] [--seq-len 512]

Target: GPTQ's perplexity increase is at most 0.7 x RTN's at the same bits and group size.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from workbench import hardware, models, quality, quantize
from workbench.client import DEFAULT_SYSTEM_PROMPT

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-quant-") as tmp:
        tmp = Path(tmp)
        folders = {"bf16": models.BUNDLED_MODEL}
        for method in ("gptq", "rtn"):
            settings = quantize.QuantizeSettings(method=method, group_size=args.group_size, samples=args.samples,
                                                 seq_len=args.seq_len)
            result = quantize.quantize(models.BUNDLED_MODEL, tmp / method, settings)
            folders[f"{method}-int4-g{args.group_size}"] = result.out
            print(f"{method}: {result.seconds:.0f} s", flush=True)
        rows = quality.quality_report(folders, quality.eval_text(), DEFAULT_SYSTEM_PROMPT, engine_log_dir=tmp)
    gptq, rtn = rows[1], rows[2]
    ratio = gptq["ppl_increase"] / rtn["ppl_increase"] if rtn["ppl_increase"] > 0 else None
    print(f"\n{'checkpoint':<18} {'ppl':>8} {'Δppl':>7} {'exact':>6} {'MB':>7} {'quantize s':>11}  kernel")
    for r in rows:
        print(f"{r['name']:<18} {r['ppl']:>8.3f} {r['ppl_increase']:>+7.3f} {r['exact_match']:>6} {r['size_mb']:>7.1f} "
              f"{r['quantize_s'] if r['quantize_s'] is not None else '-':>11}  {r['linear_kernel'] or 'dense bf16'}")
    verdict = "meets" if ratio is not None and ratio <= 0.7 else "misses"
    print(f"\nGPTQ's increase / RTN's increase = {ratio:.3f} ({verdict} the 0.7 target)")
    RESULTS.mkdir(exist_ok=True)
    payload = {"date": time.strftime("%Y-%m-%d"), "model": models.BUNDLED_MODEL, "eval_tokens": rows[0]["tokens"],
               "settings": vars(args), "rows": rows, "gptq_over_rtn_increase": ratio,
               "machine": {"cpus": hardware.machine_facts().cpu_count,
                           "vllm": f"{hardware.vllm_build()} {hardware.package_version(hardware.vllm_build() or 'vllm')}"},
               "published_qwen3_14b_w4g128_wikitext2": {"fp16": 8.64, "gptq": 8.88, "awq": 9.48,
                                                       "source": "arXiv 2505.02214"}}
    (RESULTS / "quantize.json").write_text(json.dumps(payload, indent=2))
    plot(rows, RESULTS / "quantize.png")
    print(f"wrote {RESULTS / 'quantize.json'} and quantize.png")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    names = [r["name"] for r in rows]
    a.bar(names, [r["ppl"] for r in rows], color=["#4C72B0", "#55A868", "#C44E52"])
    a.set_ylabel("perplexity (held-out Python docs)")
    b.bar(names, [r["size_mb"] for r in rows], color=["#4C72B0", "#55A868", "#C44E52"])
    b.set_ylabel("checkpoint size (MB)")
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"{models.BUNDLED_MODEL}: what 4-bit quantization costs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
