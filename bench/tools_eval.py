"""Tool choice on the bundled model: BFCL-style exact match per category and language for each design
(mode, with or without few-shot examples), over one or more fresh engine starts. Prints a table and
writes bench/results/tools_eval.json.

    python bench/tools_eval.py [--starts 3] [--url URL]   # --url attaches to one running engine instead
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from workbench.measurement import toolseval
from workbench.serving.client import Client
from workbench.serving.engine import Engine, EngineConfig
from workbench.tasks import demo_tools, tools

RESULTS = Path(__file__).parent / "results"


def one_start(url: str | None, data: Path) -> dict:
    with Engine.connect(url, EngineConfig(enable_tools=True)) as engine:
        registry = demo_tools.builtin_registry(data)
        started = time.perf_counter()
        report = toolseval.compare(
            Client(engine.url, timeout_s=600),
            lambda name: tools.Policy(registry, tools.AuditLog(data / f"audit-{name}-{time.time_ns()}.jsonl")),
        )
        return {"seconds": round(time.perf_counter() - started, 1), "designs": report}


def summary(starts: list[dict]) -> dict:
    """Per design and group (category, language, overall): exact-match share, mean/min/max over starts."""
    out = {}
    for design in starts[0]["designs"]:
        groups = {}
        for key in [*toolseval.CATEGORIES, "en", "zh", "overall"]:
            values = []
            for s in starts:
                r = s["designs"][design]
                row = (
                    r["categories"].get(key) or r["languages"].get(key) or (r["overall"] if key == "overall" else None)
                )
                values.append(row["exact"])
            groups[key] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}
        out[design] = groups
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    runs, keys = [], [*toolseval.CATEGORIES, "en", "zh", "overall"]
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wb-toolseval-") as tmp:
        for _ in range(1 if args.url else args.starts):
            runs.append(one_start(args.url, Path(tmp)))
            print(f"start {len(runs)}: {runs[-1]['seconds']} s", flush=True)
            table = summary(runs)  # written after every start, so a later failure keeps what was measured
            out = {
                "cases": len(toolseval.CASES),
                "engine_starts": len(runs),
                "attached": bool(args.url),
                "summary": table,
                "runs": runs,
            }
            (RESULTS / "tools_eval.json").write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str) + "\n")
    print(f"{'design':<22}" + "".join(f"{k:>12}" for k in keys))
    for design, groups in table.items():
        print(f"{design:<22}" + "".join(f"{groups[k]['mean']:>12.0%}" for k in keys))


if __name__ == "__main__":
    main()
