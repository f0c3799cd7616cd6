"""compare_tasks.py runs one comparison task on one served candidate (`run_task`): perplexity on held-out text, the
project's tool calls, BFCL, document QA, an A/B config's dataset, planted facts over depth × length, the daily
report's facts. Each gives items scored the same way for every candidate, and `items_digest` names the items a task
asks about, so that a stored result is reused only for the same items. It serves nothing and stores nothing
(compare.py does).
"""

import math
import random
from pathlib import Path

from workbench import context
from workbench.measurement import abconfig, abtest, bfcl, toolseval
from workbench.measurement.compare_request import TaskSettings
from workbench.quantization import quality
from workbench.report import accuracy as report_accuracy
from workbench.serving.client import Client
from workbench.store import Store
from workbench.tasks import demo_tools, docqa_dataset


def _cap(items: list, limit: int | None) -> list:
    return items if limit is None else items[:limit]


def tool_cases(s: TaskSettings) -> list:
    """The project's cases; capped, a stratified draw (round-robin over the categories, seeded)."""
    if s.items is None or s.items >= len(toolseval.CASES):
        return list(toolseval.CASES)
    rng = random.Random(s.seed)
    pools = {
        c: rng.sample([x for x in toolseval.CASES if x.category == c], sum(x.category == c for x in toolseval.CASES))
        for c in toolseval.CATEGORIES
    }
    picked = []
    while len(picked) < s.items:
        for category in toolseval.CATEGORIES:
            if pools[category] and len(picked) < s.items:
                picked.append(pools[category].pop())
    return sorted(picked, key=toolseval.CASES.index)


def _bfcl_per_category(s: TaskSettings) -> int:
    categories = s.bfcl_categories or tuple(bfcl.CATEGORIES)
    return s.bfcl_per_category if s.items is None else max(1, min(s.bfcl_per_category, s.items // len(categories)))


def items_digest(task: str, s: TaskSettings) -> str:
    """The items a task asks about, as a digest: the same items give the same digest on any machine."""
    if task == "ppl":
        return Store.key([quality.eval_text(s.ppl_chars), s.chunk_chars, s.items])
    if task == "tools":
        return Store.key([(c.category, c.message, c.expected) for c in tool_cases(s)])
    if task == "bfcl":
        return Store.key([e.id for e in bfcl.sample(s.bfcl_categories or None, _bfcl_per_category(s), s.seed)])
    if task == "docqa":
        return Store.key([s.docqa_count, s.items, "docqa_dataset seed 7"])
    if task == "context":
        return Store.key([s.context_lengths, s.context_depths, s.context_facts, s.seed, s.items, context.grid.VERSION])
    if task == "report":
        return Store.key([report_accuracy.labelled_days(), s.items, report_accuracy.MEASURES])
    config = abconfig.load_config(s.ab_config)
    return Store.key([config.model_dump(mode="json"), [(i.id, i.vars) for i in abconfig.load_items(config)], s.items])


def run_task(task: str, client: Client, s: TaskSettings, workdir: Path, shared: Path) -> dict:
    """One task on one served candidate: {"kind", "items": [...], "summary": {...}}. `workdir` is this result's
    own (audit logs, BFCL's per-entry store), `shared` holds what every candidate reads (the contract set)."""
    if task == "ppl":
        text = quality.eval_text(s.ppl_chars)
        chunks = _cap([text[i : i + s.chunk_chars] for i in range(0, len(text), s.chunk_chars)], s.items)
        items = []
        for k, chunk in enumerate(chunks):
            logprobs = [lp for lp in client.prompt_logprobs(chunk) if lp is not None]
            items.append({"id": f"chunk-{k}", "nll": -sum(logprobs), "tokens": len(logprobs)})
        total, tokens = sum(i["nll"] for i in items), sum(i["tokens"] for i in items)
        return {"kind": "ppl", "items": items, "summary": {"ppl": math.exp(total / tokens), "tokens": tokens}}
    if task == "tools":
        mode, few_shot = toolseval.parse_design(s.tools_design)
        cases = tool_cases(s)
        policy = demo_tools.policy(workdir / "tools-data", workdir / "tools-audit.jsonl")
        result = toolseval.evaluate(client, policy, mode, few_shot, cases)
        items = [
            {
                "id": f"case-{toolseval.CASES.index(case)}",
                "score": float(row["exact"]),
                "category": row["category"],
                "message": row["message"],
                "proposed": row["proposed"],
            }
            for case, row in zip(cases, result["rows"])
        ]
        return {
            "kind": "pass",
            "items": items,
            "summary": {"exact": result["overall"]["exact"], "design": result["design"]},
        }
    if task == "bfcl":
        report = bfcl.evaluate(
            client,
            s.bfcl_categories or None,
            _bfcl_per_category(s),
            [toolseval.parse_design(s.tools_design)],
            s.seed,
            store=workdir / "bfcl",
        )
        items = _cap(
            [{"id": r["id"], "score": float(r["valid"]), "category": r["category"]} for r in report.rows], s.items
        )
        return {
            "kind": "pass",
            "items": items,
            "summary": {"accuracy": sum(i["score"] for i in items) / len(items) if items else None},
        }
    if task == "docqa":
        report = docqa_dataset.evaluate(
            client, shared / f"docqa-set-{s.docqa_count}", limit=s.docqa_count, count=s.docqa_count
        )
        items = _cap(
            [
                {"id": f"{r['document']}:{r['field']}", "score": float(r["value_correct"]), "verified": r["verified"]}
                for r in report["rows"]
            ],
            s.items,
        )
        return {"kind": "pass", "items": items, "summary": report["summary"].get("all", {})}
    if task == "context":
        report = context.run(
            context.ContextRequest(
                lengths=s.context_lengths,
                depths=s.context_depths,
                facts_per_cell=s.context_facts,
                seed=s.seed,
                thinking=(None,),
                store=str(workdir / "cells"),
            ),
            client,
        )
        m = report.maps[0]
        return {
            "kind": "pass",
            "items": _cap(report.items(None), s.items),
            "summary": {
                "recall": m["per_length"][-1]["recall"] if m["per_length"] else None,
                "longest_reliable": (m["longest"] or {}).get("length"),
                "headline": m["headline"],
                "per_length": m["per_length"],
                "grid": m["grid"],
                "memory": m["memory"],
            },
        }
    if task == "report":
        result = report_accuracy.evaluate(client, shared / "report", limit=s.items)
        items = [
            {"id": r["day"], "score": r["fact_share"] or 0.0, "kind": r["kind"], "figures": r["figures"]}
            for r in result["rows"]
        ]
        return {"kind": "score", "items": items, "summary": result["summary"]}
    config = abconfig.load_config(s.ab_config)
    if s.items is not None:
        config = abconfig.with_changes(config, limit=s.items)
    items = abtest.variant_scores(config, s.ab_variant, client.base_url)
    return {
        "kind": "score",
        "items": items,
        "summary": {"pass_rate": sum(i["score"] for i in items) / len(items), "config": config.name},
    }
