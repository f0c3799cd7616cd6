"""Engine start-up: cold (empty torch.compile cache) and warm, and the first token after.

    python bench/engine_startup.py [--runs-warm 1]

Prints a table and writes bench/results/engine_startup.json. A cold start uses a fresh
VLLM_CACHE_ROOT, so vLLM compiles the model from scratch; a warm start reuses that cache.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from workbench.serving import hardware
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT, Client
from workbench.serving.engine import Engine, EngineConfig

RESULTS = Path(__file__).parent / "results"


def one_start(cache_root: str, label: str) -> dict:
    os.environ["VLLM_CACHE_ROOT"] = cache_root
    engine = Engine(EngineConfig(max_model_len=4096))
    started = time.perf_counter()
    report = engine.start()
    ready_s = time.perf_counter() - started
    try:
        client = Client(engine.base_url)
        first = client.chat(
            "What is the capital of France?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=32
        )
        second = client.chat(
            "What is the capital of France?", system=DEFAULT_SYSTEM_PROMPT, temperature=0, max_tokens=32
        )
    finally:
        engine.stop()
    return {
        "start": label,
        "ready_s": round(ready_s, 1),
        "vllm_init_s": report.init_s,
        "first_request_ttft_ms": round(first.ttft_s * 1000, 1),
        "second_request_ttft_ms": round(second.ttft_s * 1000, 1),
        "decode_tok_s": round(second.tokens_per_s or 0, 1),
        "answer": second.text,
        "kv_cache_tokens": report.kv_cache_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-warm", type=int, default=1)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="vllm-cache-") as cache_root:
        rows.append(one_start(cache_root, "cold"))
        for _ in range(args.runs_warm):
            rows.append(one_start(cache_root, "warm"))
    header = f"{'start':<6} {'ready s':>8} {'init s':>7} {'TTFT 1st ms':>12} {'TTFT 2nd ms':>12} {'tok/s':>6}"
    print(header)
    for r in rows:
        print(
            f"{r['start']:<6} {r['ready_s']:>8} {r['vllm_init_s']:>7} {r['first_request_ttft_ms']:>12} "
            f"{r['second_request_ttft_ms']:>12} {r['decode_tok_s']:>6}"
        )
    facts = hardware.machine_facts()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "engine_startup.json"
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": facts.cpu_count,
                    "memory_gib": facts.memory_gib,
                    "platform": platform.platform(),
                    "gpus": [g.name for g in facts.gpus],
                    "vllm": f"{hardware.vllm_build()} {hardware.package_version(hardware.vllm_build() or 'vllm')}",
                },
                "model": "smollm2-135m-instruct",
                "date": time.strftime("%Y-%m-%d"),
                "runs": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
