"""bf16 vs GPTQ (GPTQModel, the workbench's) vs llm-compressor's GPTQ (W4A16, compressed-tensors) vs
round-to-nearest on the bundled model, at the same bits, group size, dampening and calibration texts:
perplexity through the served engine (each checkpoint served by vLLM's CPU build in turn), exact-match answers,
size, quantization time and peak RAM. Prints a table, writes bench/results/quantize.json and quantize.png.

    python bench/quantize.py [--group-size 64] [--samples 32] [--seq-len 512] [--install] [--no-llmcompressor]

llm-compressor runs in its own environment (bench/.venvs/llmcompressor, made by bench/peers.py: its
compressed-tensors 0.19 clashes with vLLM's 0.17). Each quantization runs in a process of its own, so that its
peak resident memory is its own. Targets: GPTQ's perplexity increase is at most 0.7 × RTN's, and at most
llm-compressor's.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402

from workbench.quantization import quality, quantize  # noqa: E402
from workbench.serving import hardware, models  # noqa: E402
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT  # noqa: E402

RESULTS = Path(__file__).parent / "results"
_GPTQMODEL = """
import json, resource, sys
from workbench.quantization import quantize
from workbench.serving import models
settings = quantize.QuantizeSettings(**json.loads(sys.argv[2]))
result = quantize.quantize(models.BUNDLED_MODEL, sys.argv[1], settings)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # the GPTQModel worker's, KiB on Linux
print(json.dumps({"seconds": round(result.seconds, 1), "peak_rss_gib": round(peak, 2)}))
"""


def gptqmodel(out: Path, settings: quantize.QuantizeSettings) -> dict:
    """GPTQModel (GPTQ or RTN) through workbench.quantization.quantize, in a process of its own."""
    from dataclasses import asdict

    run = subprocess.run(
        [sys.executable, "-c", _GPTQMODEL, str(out), json.dumps(asdict(settings))],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def llm_compressor(out: Path, settings: quantize.QuantizeSettings, install: bool) -> dict:
    """llm-compressor's GPTQ W4A16 on the same calibration texts GPTQModel gets (quantize.split_calibration)."""
    from transformers import AutoTokenizer

    source = models.resolve_model(models.BUNDLED_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(source)
    text = (
        quantize.default_text()
        if settings.calibration == "pydoc"  # what quantize.quantize calibrates on
        else quantize.chat_mix(tokenizer, quantize.needed_tokens(settings), max_tokens_each=settings.seq_len)
    )
    calibration = quantize.split_calibration(text, tokenizer, settings)
    job = out.parent / "llmcompressor-job.json"
    job.write_text(
        json.dumps(
            {
                "source": str(source),
                "out": str(out),
                "bits": settings.bits,
                "group_size": settings.group_size,
                "damp": settings.damp_percent,
                "seq_len": settings.seq_len,
                "samples": calibration.samples,
            }
        )
    )
    run = subprocess.run(
        [
            str(peers.available("llmcompressor", install)),
            str(Path(__file__).parent / "llmcompressor_gptq.py"),
            str(job),
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"llm-compressor failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument(
        "--calibration",
        choices=["pydoc", "chat"],
        default="pydoc",
        help="pydoc: the domain the perplexity is measured on (the recorded table); chat: the default mix",
    )
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--install", action="store_true", help="make llm-compressor's environment if missing")
    parser.add_argument("--no-llmcompressor", action="store_true")
    args = parser.parse_args()
    names = {
        "gptq": f"gptq-int4-g{args.group_size}",
        "rtn": f"rtn-int4-g{args.group_size}",
        "llmcompressor": f"llmcompressor-w4a16-g{args.group_size}",
    }
    methods = ["gptq", "rtn"] + ([] if args.no_llmcompressor else ["llmcompressor"])
    with tempfile.TemporaryDirectory(prefix="wb-quant-") as tmp:
        tmp = Path(tmp)
        folders, costs = {"bf16": models.BUNDLED_MODEL}, {}
        for method in methods:
            settings = quantize.QuantizeSettings(
                method="gptq" if method == "llmcompressor" else method,
                group_size=args.group_size,
                samples=args.samples,
                seq_len=args.seq_len,
                calibration=args.calibration,
            )
            out = tmp / method
            costs[names[method]] = (
                llm_compressor(out, settings, args.install) if method == "llmcompressor" else gptqmodel(out, settings)
            )
            folders[names[method]] = out
            print(f"{method}: {costs[names[method]]}", flush=True)
        rows = quality.quality_report(folders, quality.eval_text(), DEFAULT_SYSTEM_PROMPT, engine_log_dir=tmp)
    for row in rows:
        row.update(
            quantize_s=costs.get(row["name"], {}).get("seconds"),
            peak_rss_gib=costs.get(row["name"], {}).get("peak_rss_gib"),
        )
    by_name = {r["name"]: r for r in rows}
    gptq, rtn = by_name[names["gptq"]], by_name[names["rtn"]]
    ratio = gptq["ppl_increase"] / rtn["ppl_increase"] if rtn["ppl_increase"] > 0 else None
    lc = by_name.get(names["llmcompressor"])
    versus = gptq["ppl_increase"] / lc["ppl_increase"] if lc and lc["ppl_increase"] > 0 else None
    print(
        f"\n{'checkpoint':<26} {'ppl':>8} {'Δppl':>7} {'exact':>6} {'MB':>7} {'quantize s':>11} {'peak GiB':>9}  kernel"
    )
    for r in rows:
        dash = lambda v: "-" if v is None else v  # noqa: E731
        print(
            f"{r['name']:<26} {r['ppl']:>8.3f} {r['ppl_increase']:>+7.3f} {r['exact_match']:>6} {r['size_mb']:>7.1f} "
            f"{dash(r['quantize_s']):>11} {dash(r['peak_rss_gib']):>9}  {r['linear_kernel'] or 'dense bf16'}"
        )
    verdict = "meets" if ratio is not None and ratio <= 0.7 else "misses"
    print(f"\nGPTQ's increase / RTN's increase = {ratio:.3f} ({verdict} the 0.7 target)")
    if versus is not None:
        print(
            f"GPTQ's increase / llm-compressor's increase = {versus:.3f} "
            f"({'meets' if versus <= 1 else 'misses'} the target of at most 1)"
        )
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "date": time.strftime("%Y-%m-%d"),
        "model": models.BUNDLED_MODEL,
        "eval_tokens": rows[0]["tokens"],
        "settings": vars(args),
        "rows": rows,
        "gptq_over_rtn_increase": ratio,
        "gptq_over_llmcompressor_increase": versus,
        "same_settings": "4 bits, symmetric, the group size above, dampening 0.05, no act-order, the same "
        "calibration texts (quantize.split_calibration of Python's docs); lm_head and "
        "embeddings kept in 16 bits by both",
        "machine": {
            "cpus": hardware.machine_facts().cpu_count,
            "vllm": f"{hardware.vllm_build()} {hardware.package_version(hardware.vllm_build() or 'vllm')}",
        },
        "published_qwen3_14b_w4g128_wikitext2": {"fp16": 8.64, "gptq": 8.88, "awq": 9.48, "source": "arXiv 2505.02214"},
    }
    (RESULTS / "quantize.json").write_text(json.dumps(payload, indent=2))
    plot(rows, RESULTS / "quantize.png")
    print(f"wrote {RESULTS / 'quantize.json'} and quantize.png")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    names = [r["name"] for r in rows]
    colors = ["#4C72B0", "#55A868", "#C44E52", "#8172B3"][: len(rows)]
    a.bar(names, [r["ppl"] for r in rows], color=colors)
    a.set_ylabel("perplexity (held-out Python docs)")
    b.bar(names, [r["size_mb"] for r in rows], color=colors)
    b.set_ylabel("checkpoint size (MB)")
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"{models.BUNDLED_MODEL}: what 4-bit quantization costs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
