"""Document QA: first question vs follow-up latency (the prefix cache at work) and the contract
evaluation set's field accuracy. Needs a running engine (--url, or WORKBENCH_URL, or it starts one).
Prints tables, writes bench/results/docqa.json.

    python bench/docqa.py [--url URL] [--repeats 3] [--limit 10]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from workbench import settings
from workbench.serving.client import Client
from workbench.serving.engine import Engine, EngineConfig
from workbench.tasks import docqa, docqa_dataset, documents

RESULTS = Path(__file__).parent / "results"


def latency(client, folder: Path, repeats: int) -> list[dict]:
    rows = []
    for language, chars in (("en", 3000), ("en", 9000)):
        first, follow = [], []
        for r in range(repeats):
            path = folder / f"latency-{language}-{chars}-{r}.docx"
            docqa_dataset.make_contract(path, language, chars, seed=1000 + r + chars)  # unseen text: a cold prefix
            doc = documents.load(path)
            first.append(docqa.ask(client, doc, "question", "Who are the parties?").ttft_s)
            follow.append(docqa.ask(client, doc, "question", "What is the total contract amount?").ttft_s)
        tokens = client.count_tokens(doc.text)
        rows.append(
            {
                "document": f"{language} {chars} chars",
                "document_tokens": tokens,
                "first_ttft_ms": round(statistics.median(first) * 1000, 1),
                "follow_up_ttft_ms": round(statistics.median(follow) * 1000, 1),
                "repeats": repeats,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="wb-docqa-") as tmp,
        Engine.connect(args.url or settings.engine_url(), EngineConfig()) as engine,
    ):
        client = Client(engine.url)
        rows = latency(client, Path(tmp), args.repeats)
        print(f"{'document':<16} {'tokens':>7} {'first TTFT ms':>14} {'follow-up TTFT ms':>18}")
        for r in rows:
            print(
                f"{r['document']:<16} {r['document_tokens']:>7} {r['first_ttft_ms']:>14} {r['follow_up_ttft_ms']:>18}"
            )
        started = time.perf_counter()
        docqa_dataset.make_eval_set(Path(tmp) / "eval")
        report = docqa_dataset.evaluate(client, Path(tmp) / "eval", ("pdf",), args.limit)
        eval_s = time.perf_counter() - started
    print(f"\n{'set':<5} {'fields':>6} {'value acc.':>10} {'quote acc.':>10} {'verified':>9}")
    for key, s in report["summary"].items():
        print(
            f"{key:<5} {s['fields']:>6} {s['value_accuracy']:>10.0%} {s['quote_accuracy']:>10.0%} {s['verified_share']:>9.0%}"
        )
    print("per field:", json.dumps(report["per_field"]))
    print(f"verified marks that were wrong: {report['verified_marks_wrong']}; {eval_s:.0f} s for the set")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "docqa.json").write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "model": "smollm2-135m-instruct",
                "latency": rows,
                "eval": {k: report[k] for k in ("summary", "per_field", "verified_marks_wrong")},
                "eval_seconds": round(eval_s),
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"wrote {RESULTS / 'docqa.json'}")


if __name__ == "__main__":
    main()
