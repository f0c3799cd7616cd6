"""Prompt A/B runs: wall time of the worked example (2 variants × 30 items) at several
concurrencies without a cache, then a cached rerun, and the example's statistics. Needs a running
engine (--url, or WORKBENCH_URL, or it starts one). Prints a table, writes bench/results/abtest.json.

    python bench/abtest.py [--url URL] [--concurrency 1 2 4 8]
"""

import argparse
import json
import tempfile
from pathlib import Path

from workbench import settings
from workbench.measurement import abconfig, abtest
from workbench.serving.engine import Engine, EngineConfig

RESULTS = Path(__file__).parent / "results"
EXAMPLE = abconfig.EXAMPLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    with Engine.connect(args.url or settings.engine_url(), EngineConfig()) as engine:
        url = engine.url
        base = abconfig.load_config(EXAMPLE)
        rows, report = [], None
        with tempfile.TemporaryDirectory(prefix="wb-ab-") as tmp:
            for concurrency in args.concurrency:
                config = abconfig.with_changes(base, concurrency=concurrency)
                run = abtest.run(config, url, cache=abtest.ResultCache(Path(tmp) / f"c{concurrency}.sqlite"))
                report = run if report is None or concurrency == base.concurrency else report  # the example's own
                rows.append(
                    {
                        "concurrency": concurrency,
                        "trials": len(run.trials),
                        "wall_s": round(run.wall_s, 2),
                        "trials_per_s": round(len(run.trials) / run.wall_s, 2),
                        "pass_rates": {n: round(v.pass_rate, 4) for n, v in run.variants.items()},
                    }
                )
            cached = abtest.run(config, url, cache=abtest.ResultCache(Path(tmp) / f"c{concurrency}.sqlite"))
        rows.append(
            {
                "concurrency": "cached rerun",
                "trials": len(cached.trials),
                "wall_s": round(cached.wall_s, 3),
                "trials_per_s": round(len(cached.trials) / cached.wall_s),
                "pass_rates": {n: round(v.pass_rate, 4) for n, v in cached.variants.items()},
            }
        )
        print(f"{'concurrency':>12} {'trials':>6} {'wall s':>8} {'trials/s':>9}  pass rates")
        for r in rows:
            print(
                f"{r['concurrency']!s:>12} {r['trials']:>6} {r['wall_s']:>8} {r['trials_per_s']:>9}  {r['pass_rates']}"
            )
        print("\n" + report.verdict)
        RESULTS.mkdir(exist_ok=True)
        out = {
            "example": EXAMPLE.name,
            "runs": rows,
            "summary_at_concurrency": report.config.concurrency,
            "summary": report.summary(),
        }
        (RESULTS / "abtest.json").write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
        print(f"\nwrote {RESULTS / 'abtest.json'}")


if __name__ == "__main__":
    main()
