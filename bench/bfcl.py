"""BFCL v4 on the bundled model: BFCL's own data and AST checker, every mode, a stratified sample per category.
Prints the table and writes bench/results/bfcl.json (the per-entry rows and the settings) and bfcl.md; the
table on the documentation site (docs/bfcl.md) is its Markdown. A run that is stopped goes on where it stopped
(workbench.measurement.bfcl keeps each scored entry), so the rows of a rerun are the same replies.

    python bench/bfcl.py [--per-category 20] [--seed 0] [--url URL]   # --url attaches to a running engine
"""

import argparse
import json
import time
from pathlib import Path

from workbench.measurement import bfcl
from workbench.serving.client import Client
from workbench.serving.engine import Engine, EngineConfig
from workbench.tasks import agent

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--per-category", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    with Engine.connect(args.url, EngineConfig(enable_tools=True)) as engine:
        report = bfcl.evaluate(
            Client(engine.url, timeout_s=600),
            per_category=args.per_category,
            seed=args.seed,
            designs=[(mode, False) for mode in agent.MODES],
            on_row=lambda done, total, row: print(f"\r{done}/{total}", end="", flush=True),
        )
    print()
    out = report.as_dict() | {
        "seconds": round(time.perf_counter() - started, 1),
        "command": f"python bench/bfcl.py --per-category {args.per_category} --seed {args.seed}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bfcl.json").write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str) + "\n")
    (RESULTS / "bfcl.md").write_text(report.to_markdown() + "\n")
    print(report.to_text())
    print(f"wrote {RESULTS / 'bfcl.json'} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
