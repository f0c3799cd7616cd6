"""`workbench bench` beside the serving benchmarks people already use, against one server with one workload:
vLLM's own (`vllm.benchmarks.serve`, in-process), GuideLLM 0.8.1 (the vLLM project's) and aiperf 0.13.0
(NVIDIA's), each in its own environment under bench/.venvs/ (bench/peers.py makes them; their pins clash with
vLLM's). Loads: fixed concurrency 1 and 4, and a Poisson request rate. The server runs on CPUs of its own and every
load generator on the others, one tool at a time, in alternating order, each after a warm-up (bench/pinning.py;
`--layout shared` for the unpinned illustration). Every tool's median TTFT, ITL, TPOT and end-to-end latency and
its output throughput, by the tool's own definitions and by vLLM's, each as a ratio to vLLM's. Prints the table and
writes bench/results/compare_peers.json (the unpinned illustration: compare_peers_shared.json), with the CPU layout.
`--render-docs` (or its old name `--render-readme`) measures nothing: it rewrites the peer table of the documentation
site's page docs/peers.md from that file.

    python bench/compare_peers.py [--url URL] [--install] [--tools vllm,workbench,guidellm,aiperf]
                                  [--num-prompts 16] [--input-len 128] [--output-len 64] [--rate 0.5] [--repeats 2]
                                  [--layout pinned|shared] [--server-cpus 1 --client-cpus 0] [--out PATH]
    python bench/compare_peers.py --render-docs [--out PATH]

Definitions (vLLM's, which the workbench follows): TTFT from sending the request to the first streamed token;
TPOT per request (e2e − TTFT) / (output tokens − 1); ITL the gaps between streamed chunks, over all requests;
e2e the whole request; output throughput all output tokens over the run's wall time. GuideLLM's "ITL" is vLLM's
TPOT, and its "TPOT" divides the whole latency by every output token (the first included); aiperf's
"inter_token_latency" is vLLM's TPOT and its "inter_chunk_latency" vLLM's ITL. GuideLLM keeps no per-chunk times,
so it has no ITL by vLLM's definition.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402
import pinning  # noqa: E402

from workbench.measurement import bench, placement  # noqa: E402
from workbench.serving import models  # noqa: E402
from workbench.serving.client import Client  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PAGE = Path(__file__).parents[1] / "docs" / "peers.md"  # the documentation page that shows the table
TABLE_START = "<!-- peer table: written by `python bench/compare_peers.py --render-docs` from compare_peers.json -->"
TABLE_END = "<!-- end of the peer table -->"
TOOLS = ("vllm", "workbench", "guidellm", "aiperf")
METRICS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "output_tok_s")


def vllm_bench(url: str, model: str, tokenizer: str, load: dict, args) -> dict:
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
        "--ignore-eos",
        "--disable-tqdm",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--seed",
        "0",
        "--temperature",
        "0",
    ]
    argv += (
        ["--max-concurrency", str(load["concurrency"])]
        if load["concurrency"]
        else ["--request-rate", str(load["rate"]), "--burstiness", "1.0"]
    )
    r = serve.main(parser.parse_args(argv))
    common = {
        "ttft_ms": r["median_ttft_ms"],
        "tpot_ms": r["median_tpot_ms"],
        "itl_ms": r["median_itl_ms"],
        "e2e_ms": r["median_e2el_ms"],
        "output_tok_s": r["output_throughput"],
    }
    return {
        "vllm_definitions": common,
        "own": {
            "median_ttft_ms": r["median_ttft_ms"],
            "median_tpot_ms": r["median_tpot_ms"],
            "median_itl_ms": r["median_itl_ms"],
            "median_e2el_ms": r["median_e2el_ms"],
            "output_throughput": r["output_throughput"],
        },
        "completed": r["completed"],
    }


def workbench_bench(url: str, load: dict, args) -> dict:
    report = bench.run(
        url,
        bench.Workload(args.num_prompts, args.input_len, args.output_len),
        concurrency=[load["concurrency"]] if load["concurrency"] else None,
        rate=load["rate"],
        warmup=1,
    )
    lv = report["levels"][0]
    common = {
        "ttft_ms": lv["ttft_ms"]["p50"],
        "tpot_ms": lv["tpot_ms"]["p50"],
        "itl_ms": lv["itl_ms"]["p50"],
        "e2e_ms": lv["e2e_ms"]["p50"],
        "output_tok_s": lv["output_tok_s"],
    }
    return {"vllm_definitions": common, "own": common, "completed": lv["completed"], "token_check": lv["token_check"]}


def guidellm(url: str, tokenizer: str, load: dict, args, folder: Path) -> dict:
    out = folder / "guidellm.json"
    profile = (
        f"kind=concurrent,streams={load['concurrency']}" if load["concurrency"] else f"kind=poisson,rate={load['rate']}"
    )
    # One worker process: GuideLLM 0.8.1 gives every worker process its own random.Random(random_seed) for the
    # Poisson gaps (scheduler/strategies.py, AsyncPoissonStrategy.next_request_time) and starts up to
    # max_worker_processes (10) of them, so each gap repeats once per worker: at 0.5/s its first 10 requests went
    # exactly 2.04 s apart (Random(42)'s first draw) and the next 6 within 0.25 s. One worker draws one sequence.
    env = {**os.environ, "GUIDELLM__MAX_WORKER_PROCESSES": "1"}
    run = subprocess.run(
        [
            str(peers.command("guidellm")),
            "run",
            "--backend",
            f"kind=openai_http,target={url},request_format=/v1/completions",
            "--profile",
            profile,
            "--data",
            f"kind=synthetic_text,prompt_tokens={args.input_len},output_tokens={args.output_len}",
            "--tokenizer",
            f"kind=hf_auto,model={tokenizer}",
            "--constraint",
            f"kind=max_requests,count={args.num_prompts}",
            "--output",
            f"kind=json,path={out}",
            "--disable-console-interactive",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    if run.returncode != 0:
        raise RuntimeError(f"guidellm failed: {run.stderr[-800:]}")
    m = json.loads(out.read_text())["benchmarks"][0]["metrics"]
    med = lambda key: m[key]["successful"]["median"]  # noqa: E731
    own = {
        "time_to_first_token_ms": med("time_to_first_token_ms"),
        "inter_token_latency_ms": med("inter_token_latency_ms"),
        "time_per_output_token_ms": med("time_per_output_token_ms"),
        "request_latency_ms": med("request_latency") * 1000,
        "output_tokens_per_second": m["output_tokens_per_second"]["successful"]["mean"],
    }
    common = {
        "ttft_ms": own["time_to_first_token_ms"],
        "tpot_ms": own["inter_token_latency_ms"],
        "itl_ms": None,
        "e2e_ms": own["request_latency_ms"],
        "output_tok_s": own["output_tokens_per_second"],
    }
    return {"vllm_definitions": common, "own": own, "completed": m["request_totals"]["successful"]}


def aiperf(url: str, model: str, tokenizer: str, load: dict, args, folder: Path) -> dict:
    out = folder / "aiperf"
    argv = [
        str(peers.command("aiperf")),
        "profile",
        "--model",
        model,
        "--url",
        url,
        "--endpoint-type",
        "completions",
        "--streaming",
        "--tokenizer",
        tokenizer,
        "--request-count",
        str(args.num_prompts),
        "--prompt-input-tokens-mean",
        str(args.input_len),
        "--prompt-input-tokens-stddev",
        "0",
        "--prompt-output-tokens-mean",
        str(args.output_len),
        "--prompt-output-tokens-stddev",
        "0",
        "--extra-inputs",
        "ignore_eos:true",
        "--output-artifact-dir",
        str(out),
        "--random-seed",
        "0",
        "--warmup-request-count",
        "1",
        "--no-server-metrics",
        "--no-gpu-telemetry",
        "--use-server-token-count",
        # one worker and one record processor: aiperf's own processes share the client's CPUs, and its
        # inter_chunk_latency stamps each network read (transports/aiohttp_client.py), so a late read merges
        # chunks into a 0 gap and a double one
        "--workers-max",
        "1",
        "--record-processors",
        "1",
    ]
    argv += (
        ["--concurrency", str(load["concurrency"])]
        if load["concurrency"]
        else ["--request-rate", str(load["rate"]), "--arrival-pattern", "poisson"]
    )
    run = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        raise RuntimeError(f"aiperf failed: {run.stderr[-800:] or run.stdout[-800:]}")
    d = json.loads((out / "profile_export_aiperf.json").read_text())
    own = {
        "time_to_first_token": d["time_to_first_token"]["p50"],
        "inter_token_latency": d["inter_token_latency"]["p50"],
        "inter_chunk_latency": d["inter_chunk_latency"]["p50"],
        "request_latency": d["request_latency"]["p50"],
        "output_token_throughput": d["output_token_throughput"]["avg"],
    }
    common = {
        "ttft_ms": own["time_to_first_token"],
        "tpot_ms": own["inter_token_latency"],
        "itl_ms": own["inter_chunk_latency"],
        "e2e_ms": own["request_latency"],
        "output_tok_s": own["output_token_throughput"],
    }
    return {"vllm_definitions": common, "own": own, "completed": d["request_count"]["avg"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--install", action="store_true", help="make a missing peer's environment (bench/peers.py)")
    parser.add_argument("--num-prompts", type=int, default=16)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.5, help="the Poisson load, requests per second")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of every tool at every load")
    parser.add_argument(
        "--out",
        default=None,
        help="the JSON to write, or with --render-docs to read (default: bench/results/compare_peers[_shared].json)",
    )
    parser.add_argument(
        "--render-docs",
        "--render-readme",
        dest="render_docs",
        action="store_true",
        help="measure nothing: rewrite the peer table in docs/peers.md from the JSON (--render-readme is its old name)",
    )
    pinning.add_flags(parser)
    args = parser.parse_args()
    out_path = (
        Path(args.out)
        if args.out
        else RESULTS / ("compare_peers.json" if args.layout == "pinned" else "compare_peers_shared.json")
    )
    if args.render_docs:
        render_table(json.loads(out_path.read_text()), PAGE)
        print(f"rewrote the peer table in {PAGE} from {out_path}")
        return 0
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        print(f"error: --tools {','.join(unknown)}: not a tool here. Valid: {', '.join(TOOLS)}.", file=sys.stderr)
        return 2
    try:
        for tool in ("guidellm", "aiperf"):
            if tool in tools:
                peers.available(tool, args.install)
    except peers.PeerMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    loads = [
        {"name": "concurrency 1", "concurrency": 1, "rate": None},
        {"name": "concurrency 4", "concurrency": 4, "rate": None},
        {"name": f"Poisson {args.rate}/s", "concurrency": None, "rate": args.rate},
    ]
    runs = []
    with pinning.engine_for(args) as (engine, layout), tempfile.TemporaryDirectory(prefix="wb-peers-") as tmp:
        client = Client(engine.url)
        tokenizer = str(models.resolve_model(client.model_card()["root"] or models.BUNDLED_MODEL))
        facts = bench.server_facts(client)
        for repeat in range(args.repeats):
            for load in loads:
                for tool in tools if repeat % 2 == 0 else tools[::-1]:  # alternate the order: drift hits all alike
                    folder = Path(tmp) / f"{repeat}-{load['name']}-{tool}".replace(" ", "_").replace("/", "_")
                    folder.mkdir()
                    print(f"[{repeat + 1}/{args.repeats}] {load['name']}: {tool} ...", flush=True)
                    pinning.warm(engine.url, args.input_len, args.output_len)
                    result = {
                        "vllm": lambda: vllm_bench(client.server_url, client.model, tokenizer, load, args),
                        "workbench": lambda: workbench_bench(engine.url, load, args),
                        "guidellm": lambda: guidellm(client.server_url, tokenizer, load, args, folder),
                        "aiperf": lambda: aiperf(client.server_url, client.model, tokenizer, load, args, folder),
                    }[tool]()
                    runs.append(
                        {
                            "repeat": repeat,
                            "load": load["name"],
                            "tool": tool,
                            "client_cpus": sorted(os.sched_getaffinity(0)),
                            **result,
                        }
                    )
    table = summarize(runs, tools, loads)
    print_table(table, tools)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "server": facts,
        "machine": placement.machine(),
        "layout": layout,
        "workload": {k: v for k, v in vars(args).items()},
        "definitions": __doc__.split("Definitions (")[1].strip(),
        "table": table,
        "runs": runs,
    }
    out_path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(markdown_table(out))
    print(f"wrote {out_path}")
    return 0


def summarize(runs: list[dict], tools: list[str], loads: list[dict]) -> dict:
    """Per load and tool: the median over repeats of each metric (by vLLM's definitions), and its ratio to vLLM's."""
    table = {}
    for load in loads:
        rows = {}
        for tool in tools:
            mine = [r for r in runs if r["load"] == load["name"] and r["tool"] == tool]
            values = {}
            for metric in METRICS:
                got = [r["vllm_definitions"][metric] for r in mine if r["vllm_definitions"][metric] is not None]
                values[metric] = round(statistics.median(got), 3) if got else None
            own = {k: round(statistics.median(r["own"][k] for r in mine), 3) for k in mine[0]["own"]} if mine else {}
            rows[tool] = {"vllm_definitions": values, "own": own}
        base = rows.get("vllm", {}).get("vllm_definitions", {})
        for tool, row in rows.items():
            row["ratio_to_vllm"] = {
                m: (
                    round(row["vllm_definitions"][m] / base[m], 4)
                    if row["vllm_definitions"][m] is not None and base.get(m)
                    else None
                )
                for m in METRICS
            }
        table[load["name"]] = rows
    return table


def print_table(table: dict, tools: list[str]) -> None:
    print(f"{'load':<16} {'tool':<10} " + " ".join(f"{m:>18}" for m in METRICS))
    for load, rows in table.items():
        for tool in tools:
            row = rows[tool]
            cells = []
            for m in METRICS:
                v, r = row["vllm_definitions"][m], row["ratio_to_vllm"][m]
                cells.append("—".rjust(18) if v is None else f"{v:>9.1f} (×{r:.3f})".rjust(18) if r else f"{v:>18.1f}")
            print(f"{load:<16} {tool:<10} " + " ".join(cells))


NAMES = {
    "vllm": "vLLM `bench serve`",
    "workbench": "**workbench bench**",
    **{
        tool: f"{tool.replace('guidellm', 'GuideLLM')} {peers.PEERS[tool][0][0].split('==')[1]}"
        for tool in ("guidellm", "aiperf")
    },
}
AGREE = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "itl_ms": "ITL", "output_tok_s": "output throughput"}  # within 5 %


def markdown_table(data: dict) -> str:
    """The peer table from compare_peers.json: vLLM's row in its units, every other tool's as a ratio to
    it; then the layout it was measured with, and whether the workbench is within 5 % of vLLM's on each load."""
    rows = ["| load | tool | TTFT | TPOT | ITL | e2e | output tok/s |", "|---|---|---|---|---|---|---|"]
    misses = []
    for load, tools in data["table"].items():
        for tool, row in tools.items():
            cells = []
            for m in METRICS:
                value, ratio = row["vllm_definitions"][m], row["ratio_to_vllm"][m]
                cells.append(
                    "—"
                    if value is None
                    else (f"{value:.1f}" + ("" if m == "output_tok_s" else " ms"))
                    if tool == "vllm"
                    else f"×{ratio:.3f}"
                    if ratio is not None
                    else "—"
                )
            rows.append(f"| {load} | {NAMES.get(tool, tool)} | " + " | ".join(cells) + " |")
            if tool == "workbench":
                misses += [
                    f"{load} {AGREE[m]} ×{row['ratio_to_vllm'][m]:.3f}"
                    for m in AGREE
                    if row["ratio_to_vllm"][m] is not None and abs(row["ratio_to_vllm"][m] - 1) > 0.05
                ]
    lay, w = data.get("layout"), data["workload"]
    where = (
        "CPU layout not recorded (an unpinned run from before the layout was kept)"
        if not lay
        else f"{lay['mode']}: server on CPUs {placement.cpu_list(lay['server_cpus'] or [])}, load generators on CPUs "
        f"{placement.cpu_list(lay['client_cpus'])}, {lay['nproc']} in all"
    )
    verdict = (
        "the workbench is within 5 % of vLLM's benchmark on median TTFT, TPOT, ITL and output throughput at every load"
        if not misses
        else "the workbench is **not** within 5 % of vLLM's benchmark on: " + ", ".join(misses)
    )
    return (
        "\n".join(rows) + f"\n\n{w['repeats']} alternating repeats of {w['num_prompts']} prompts ({w['input_len']} "
        f"in / {w['output_len']} out) per tool and load; {where}. By vLLM's definitions: vLLM's rows in its own "
        f"units, every other cell that tool's median ÷ vLLM's. Against vLLM's own: {verdict}."
    )


def render_table(data: dict, page: Path) -> None:
    """Replace what lies between the page's peer-table markers with markdown_table(data)."""
    text = page.read_text()
    pattern = re.compile(re.escape(TABLE_START) + r"\n.*?\n" + re.escape(TABLE_END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"error: {page} has no peer-table markers ({TABLE_START} ... {TABLE_END}).")
    page.write_text(pattern.sub(lambda _: f"{TABLE_START}\n{markdown_table(data)}\n{TABLE_END}", text, count=1))


if __name__ == "__main__":
    sys.exit(main())
