"""The daily report's accuracy on the DEMO database's labelled days (planted drops and spikes, a region that stopped
reporting, a holiday, a subtle drop below the rule, and quiet days): alert precision and recall, alerts on quiet
days, and the share of the prose's figures that are facts, for the bundled model and its GPTQ INT4 g64
checkpoint. Writes bench/results/report.json and prints a table beside the seed's "accuracy stable above 90 %".

    python bench/report.py [--models bundled,gptq] [--url URL] [--limit N] [--max-tokens 160]

The alerts are computed in code, so they are the same for every model; the prose is the model's. --url attaches
to a running engine of the bundled model (default: $WORKBENCH_URL, else one is started). The GPTQ checkpoint is
made once into the cache (quantize.cached, as bench/compare.py makes it) and served with --enforce-eager. Each
model's result is saved as it finishes, beside the other models' results of the same days, so `--models gptq` adds
the checkpoint to an earlier run of the bundled model.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from workbench import settings
from workbench.quantization import quantize
from workbench.report import accuracy
from workbench.serving import hardware, models
from workbench.serving.client import Client
from workbench.serving.engine import Engine, EngineConfig

RESULTS = Path(__file__).parent / "results"
SEED_CLAIM = "accuracy stable above 90 % (the seed: Qwen3-14B drafting the regional daily report)"


def run_one(name: str, client: Client, args, workdir: Path) -> dict:
    start = time.perf_counter()
    result = accuracy.evaluate(
        client,
        workdir,
        limit=args.limit,
        max_tokens=args.max_tokens,
        on_day=lambda row: print(
            f"  {name} {row['day']} {row['kind']:<8} alerts {row['alerts']} prose {row['facts']}/{row['figures']}",
            file=sys.stderr,
            flush=True,
        ),
    )
    return {"model": client.model, **result, "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bundled,gptq", help="comma-separated: bundled, gptq")
    parser.add_argument("--url", default=None, help="a running engine of the bundled model")
    parser.add_argument("--limit", type=int, default=None, help="only the first N labelled days")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-report-"))
    out = {
        "seed_claim": SEED_CLAIM,
        "days": [list(d) for d in accuracy.labelled_days()[: args.limit]],
        "max_tokens": args.max_tokens,
        "results": {},
    }
    path = RESULTS / "report.json"
    if path.is_file():  # keep the other models' results of the same set: each model is run and saved on its own
        kept = json.loads(path.read_text())
        if kept.get("days") == out["days"] and kept.get("max_tokens") == out["max_tokens"]:
            out["results"] = kept.get("results", {})
    for which in [m.strip() for m in args.models.split(",") if m.strip()]:
        if which == "bundled":
            engine = Engine.connect(args.url or settings.engine_url(), EngineConfig())
        elif which == "gptq":
            folder = quantize.cached(models.BUNDLED_MODEL, quantize.QuantizeSettings(method="gptq", group_size=64)).out
            engine = Engine.connect(None, EngineConfig(model=str(folder), enforce_eager=True))
            which = "gptq-int4-g64"
        else:
            parser.error(f"unknown model {which!r}; use bundled or gptq")
        try:
            print(f"== {which} at {engine.base_url}", file=sys.stderr, flush=True)
            out["results"][which] = run_one(which, Client(engine.base_url), args, workdir)
        finally:
            engine.stop()
        out["results"][which]["command"] = "python bench/report.py " + " ".join(sys.argv[1:])
        out["machine"] = {
            "cpus": hardware.machine_facts().cpu_count,
            "vllm": f"{hardware.vllm_build()} {hardware.package_version(hardware.vllm_build() or 'vllm')}",
        }
        RESULTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(out, ensure_ascii=False, indent=2, default=str) + "\n")  # after each model
    print(table(out))
    print(f"wrote {path}")


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def table(out: dict) -> str:
    lines = [
        "| model | days | alert precision | alert recall | alerts on quiet days | prose figures that are facts |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in out["results"].items():
        s = result["summary"]
        lines.append(
            f"| {name} | {s['days']} | {_pct(s['alert_precision'])} | {_pct(s['alert_recall'])} | "
            f"{s['alerts_on_quiet_days']} of {s['quiet_days']} quiet days | {_pct(s.get('prose_fact_share'))} "
            f"({s.get('prose_figures', 0)} figures) |"
        )
    lines.append(f"| the seed's claim | | | | | {SEED_CLAIM} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
