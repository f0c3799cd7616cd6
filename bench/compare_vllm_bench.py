"""`workbench bench` against vLLM's own serving benchmark (`vllm.benchmarks.serve`, called in-process: the CPU
build's `vllm` console script is broken), same server, same workload, alternating runs after a warm-up; and the
workbench client against the raw openai SDK. The server and this script run on CPUs of their own (bench/pinning.py;
`--layout shared` for the unpinned illustration). Prints the ratios, writes bench/results/compare_vllm_bench.json
(the unpinned illustration: compare_vllm_bench_shared.json), with the CPU layout.

    python bench/compare_vllm_bench.py [--url URL] [--num-prompts 16] [--input-len 128] [--output-len 64]
                                       [--concurrency 1] [--repeats 3] [--layout pinned|shared]
                                       [--server-cpus 1 --client-cpus 0] [--out PATH]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pinning  # noqa: E402

from workbench.measurement import bench, placement  # noqa: E402
from workbench.serving import models  # noqa: E402
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT, Client  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def vllm_bench(url: str, model: str, tokenizer: str, args) -> dict:
    from vllm.benchmarks import serve
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    serve.add_cli_args(parser)
    argv = [
        "--backend",
        "openai",
        "--base-url",
        url,
        "--endpoint",
        "/v1/completions",
        "--model",
        model,
        "--tokenizer",
        tokenizer,
        "--dataset-name",
        "random",
        "--random-input-len",
        str(args.input_len),
        "--random-output-len",
        str(args.output_len),
        "--num-prompts",
        str(args.num_prompts),
        "--max-concurrency",
        str(args.concurrency),
        "--ignore-eos",
        "--disable-tqdm",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--seed",
        "0",
        "--temperature",
        "0",
    ]
    result = serve.main(parser.parse_args(argv))
    return {
        k: result[k]
        for k in (
            "completed",
            "failed",
            "median_ttft_ms",
            "median_tpot_ms",
            "median_itl_ms",
            "output_throughput",
            "request_throughput",
        )
    }


def ours(url: str, args) -> dict:
    report = bench.run(
        url, bench.Workload(args.num_prompts, args.input_len, args.output_len), concurrency=[args.concurrency]
    )
    level = report["levels"][0]
    return {
        "completed": level["completed"],
        "failed": level["failed"],
        "median_ttft_ms": level["ttft_ms"]["p50"],
        "median_tpot_ms": level["tpot_ms"]["p50"],
        "median_itl_ms": level["itl_ms"]["p50"],
        "output_throughput": level["output_tok_s"],
        "request_throughput": level["req_s"],
    }


def client_overhead(url: str, requests: int) -> dict:
    """The same streamed chat request through the raw openai SDK and through workbench's Client, alternating."""
    import openai

    client = Client(url)
    raw = openai.OpenAI(base_url=client.base_url, api_key="EMPTY")
    messages = [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "Name three primary colours and say one thing about each."},
    ]
    params = {"temperature": 0, "max_tokens": 48, "extra_body": {"ignore_eos": True}}
    sdk_ttft, sdk_rate, wb_ttft, wb_rate = [], [], [], []
    for i in range(requests):
        start = time.perf_counter()
        first, count = None, 0
        for chunk in raw.chat.completions.create(
            model=client.model, messages=messages, stream=True, stream_options={"include_usage": True}, **params
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                first = first or time.perf_counter()
            if chunk.usage:
                count = chunk.usage.completion_tokens
        end = time.perf_counter()
        sdk_ttft.append(first - start)
        sdk_rate.append((count - 1) / (end - first))
        result = client.chat(messages, stream=True, **params)
        wb_ttft.append(result.ttft_s)
        wb_rate.append(result.tokens_per_s)
    med = statistics.median
    return {
        "requests": requests,
        "sdk_ttft_ms": round(med(sdk_ttft) * 1000, 2),
        "client_ttft_ms": round(med(wb_ttft) * 1000, 2),
        "ttft_ratio": round(med(wb_ttft) / med(sdk_ttft), 4),
        "sdk_tok_s": round(med(sdk_rate), 2),
        "client_tok_s": round(med(wb_rate), 2),
        "tok_s_ratio": round(med(wb_rate) / med(sdk_rate), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each tool")
    parser.add_argument("--requests", type=int, default=15, help="for the client-overhead comparison")
    parser.add_argument(
        "--out", default=None, help="the JSON to write (default: bench/results/compare_vllm_bench[_shared].json)"
    )
    pinning.add_flags(parser)
    args = parser.parse_args()
    out_path = (
        Path(args.out)
        if args.out
        else RESULTS / ("compare_vllm_bench.json" if args.layout == "pinned" else "compare_vllm_bench_shared.json")
    )
    with pinning.engine_for(args) as (engine, layout):
        client = Client(engine.url)
        tokenizer = str(models.resolve_model(client.model_card()["root"] or models.BUNDLED_MODEL))
        runs = []
        for repeat in range(args.repeats):  # alternate the order, so that drift of the machine hits both alike
            run = {}
            for tool in ("vllm", "workbench") if repeat % 2 == 0 else ("workbench", "vllm"):
                pinning.warm(engine.url, args.input_len, args.output_len)
                run[tool] = (
                    vllm_bench(client.server_url, client.model, tokenizer, args)
                    if tool == "vllm"
                    else ours(engine.url, args)
                )
            runs.append({"first": next(iter(run)), **run})
        overhead = client_overhead(engine.url, args.requests)
        facts = bench.server_facts(client)
    med = lambda tool, key: statistics.median(r[tool][key] for r in runs)  # noqa: E731
    keys = ("median_ttft_ms", "median_tpot_ms", "median_itl_ms", "output_throughput")
    agreement = {
        k: {
            "vllm": round(med("vllm", k), 3),
            "workbench": round(med("workbench", k), 3),
            "ratio": round(med("workbench", k) / med("vllm", k), 4),
        }
        for k in keys
    }
    print(f"{'metric':<20} {'vllm bench':>11} {'workbench':>10} {'ratio':>7}")
    for k, row in agreement.items():
        print(f"{k:<20} {row['vllm']:>11.2f} {row['workbench']:>10.2f} {row['ratio']:>7.3f}")
    print(
        f"client vs raw SDK over {overhead['requests']} requests: TTFT ×{overhead['ttft_ratio']}, "
        f"tokens/s ×{overhead['tok_s_ratio']}"
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "server": facts,
        "layout": layout,
        "machine": placement.machine(),
        "workload": vars(args),
        "agreement": agreement,
        "client_overhead": overhead,
        "runs": runs,
    }
    out_path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
