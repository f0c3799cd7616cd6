"""Fit the planner's overhead terms on public vLLM start-up logs, measure it on the ones held out, and measure
`--calibrate-from` across models: fit on one log of a machine, predict another log of the same machine.

    python bench/planner_calibration.py          # → bench/results/planner_calibration.json and the tables

The logs are tests/data/public_logs.json: per row the settings of the run and the lines that carry its
memory facts. Given the weights vLLM measured, the planner predicts the KV cache; the error is
planned − reported. Rows alternate between the fit part and the held-out part within each engine
generation (V0, V1), in file order, a rule fixed before any error was computed.

The fit: for each fit row, the overhead that vLLM's numbers imply once the computed activations (and,
from v0.21, the CUDA-graph term, and with several GPUs their buffers) are taken out: requested − weights − KV −
activations − graphs − multi-GPU buffers (graphs only where the model runner pays them from the budget:
planner/vllm_facts.py's graphs_in_budget). V0 rows give the non-torch term; V1-engine rows give non-torch + the workspace of their
model runner (budget.workspace_term: the V2 runner of 0.22-0.28 has its own). Logs that print no "Model loading
took" are planned with the planner's computed weights (weights_of). Each term is (min, median, max) of
what its rows imply: optimistic, nominal, pessimistic. planner/budget.py holds the result (its test checks that).

Where a log reports vLLM's own peak activation (the "Actual usage is … for peak activation" line, 0.10.2+), the
planner's profile peak (budget.profile_peak) is checked against it directly.

The pairs: rows with the same "machine" (one machine, one vLLM version). For each ordered pair, planner/fit.py's fit on
the first log, then its calibrated_plan for the second log's model and settings, given the weights that log
measured, against the KV cache it reports. This is `workbench plan --calibrate-from FIRST.log` asked about the
second deployment.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.planner import budget, gpu_plan, vllm_facts  # noqa: E402
from workbench.planner import fit as log_fit  # noqa: E402  (`fit` here is the fit of the overhead terms)
from workbench.serving import hardware, model_catalog  # noqa: E402
from workbench.serving.startup_log import EngineReport  # noqa: E402

DATA = ROOT / "tests" / "data" / "public_logs.json"
GIB = budget.GIB


def load_rows(path: Path = DATA) -> list[dict]:
    """Rows with their facts read from their lines (or the values given where no lines were kept)."""
    rows = json.loads(path.read_text())["rows"]
    for row in rows:
        facts = {}
        if row["lines"]:
            f = log_fit.read_log("\n".join(row["lines"]), row["id"])
            facts = {
                "weights_gib": f.weights_gib,
                "kv_cache_gib": f.kv_cache_gib,
                "kv_cache_tokens": f.kv_cache_tokens,
                "total_gib": f.total_gib,
                "compile_s": f.compile_s,
            }
        facts.update(row.get("reported", {}))
        row["facts"] = facts
    _split(rows)
    return rows


def _split(rows: list[dict]) -> None:
    seen = {"V0": 0, "V1": 0}
    for row in rows:
        engine = "V1" if settings_of(row).v1 else "V0"
        row["engine"] = engine
        row["part"] = "fit" if seen[engine] % 2 == 0 else "held-out"
        seen[engine] += 1


def settings_of(row: dict) -> vllm_facts.ServeSettings:
    return vllm_facts.ServeSettings(
        max_model_len=row["max_model_len"],
        gpu_memory_utilization=row.get("gpu_memory_utilization"),
        kv_cache_dtype=row.get("kv_cache_dtype", "auto"),
        tensor_parallel_size=row.get("tp", 1),
        pipeline_parallel_size=row.get("pp", 1),
        max_num_batched_tokens=row.get("max_num_batched_tokens"),
        max_num_seqs=row.get("max_num_seqs"),
        vllm_version=row["vllm_version"],
        enforce_eager=row.get("enforce_eager", False),
        compile_cache=compile_cache(row),
    )


def compile_cache(row: dict) -> str:
    """torch.compile's cache at the row's start: what its "torch.compile took" line says (planner/fit.py reads it
    the same way), else what its source says ("compile_cache"), else the planner's default, cold."""
    if row["facts"].get("compile_s") is None:
        return row.get("compile_cache", "cold")
    return log_fit.compile_cache_of(row["facts"]["compile_s"])


def gpu_of(row: dict):
    total = row.get("total_gib") or row["facts"].get("total_gib")
    return hardware.find_gpu(row["gpu"], total)


def reported_kv_gib(row: dict) -> float:
    f = row["facts"]
    if f.get("kv_cache_gib") is not None:
        return f["kv_cache_gib"]
    spec, s = model_catalog.CATALOG[row["model"]], settings_of(row)
    return (
        f["kv_cache_tokens"]
        * budget.kv_bytes_per_token(spec, s.kv_cache_dtype, s.tensor_parallel_size, s.pipeline_parallel_size)
        / GIB
    )


def weights_of(row: dict) -> float:
    """The weights vLLM measured ("Model loading took"), or where the log does not print them, the planner's own."""
    measured = row["facts"].get("weights_gib")
    if measured is not None:
        return measured
    s = settings_of(row)
    return (
        budget.weight_bytes(model_catalog.CATALOG[row["model"]], row["quant"])
        / GIB
        / (s.tensor_parallel_size * s.pipeline_parallel_size)
    )


def implied_overhead_gib(row: dict) -> float:
    """What the log leaves for the fixed terms once weights, KV, activations and graphs are taken out."""
    spec, s, gpu = model_catalog.CATALOG[row["model"]], settings_of(row), gpu_of(row)
    requested = gpu.total_gib * s.effective_gmu()
    peak = budget.profile_peak_on(spec, s, gpu)
    graphs = budget.CUDA_GRAPH_GIB.nominal if vllm_facts.graphs_in_budget(spec, s) else 0.0
    buffers = budget.multi_gpu_gib(s) + budget.moe_workspace_bytes(spec, s, peak.tokens) / GIB
    return requested - weights_of(row) - reported_kv_gib(row) - peak.peak / GIB - graphs - buffers


def log_facts(row: dict) -> EngineReport:
    """The row as planner/fit.py's read_log would read its whole log: its facts and the settings it ran with."""
    f, s = row["facts"], settings_of(row)
    return EngineReport(
        device="gpu",
        vllm_version=row["vllm_version"],
        model=row["model"],
        weights_gib=weights_of(row),
        kv_cache_gib=reported_kv_gib(row),
        kv_cache_tokens=f.get("kv_cache_tokens"),
        max_model_len=row["max_model_len"],
        total_gib=gpu_of(row).total_gib,
        gpu_memory_utilization=row.get("gpu_memory_utilization"),
        tensor_parallel_size=s.tensor_parallel_size,
        kv_cache_dtype=s.kv_cache_dtype,
        max_num_batched_tokens=row.get("max_num_batched_tokens"),
        max_num_seqs=row.get("max_num_seqs"),
        pipeline_parallel_size=s.pipeline_parallel_size,
        compile_s=f.get("compile_s"),
        enforce_eager=s.enforce_eager,
    )


def pairs(rows: list[dict]) -> list[dict]:
    """Calibrate on one log of a machine, predict the KV cache of every other log of that machine."""
    out = []
    for a in rows:
        for b in rows:
            if a is b or not a.get("machine") or a.get("machine") != b.get("machine"):
                continue
            gpu = gpu_of(b)
            # as `workbench plan --calibrate-from a.log` for b's model and settings: the fit reads a's run from its
            # facts, and the peaks, weights and layout are b's
            spec, settings = model_catalog.CATALOG[b["model"]], settings_of(b)
            cal = log_fit.fit(spec, log_facts(a), gpu, settings, b["quant"])
            p = log_fit.calibrated_plan(spec, gpu, b["quant"], settings, cal, weights_gib=weights_of(b))
            reported = reported_kv_gib(b)
            out.append(
                {
                    "machine": a["machine"],
                    "calibrated_on": a["id"],
                    "predicted": b["id"],
                    "from": f"{a['model']} {a['quant']} TP{a.get('tp', 1)}×PP{a.get('pp', 1)} {a['max_model_len']:,}",
                    "to": f"{b['model']} {b['quant']} TP{b.get('tp', 1)}×PP{b.get('pp', 1)} {b['max_model_len']:,}",
                    "gpu": gpu.name,
                    "vllm": b["vllm_version"],
                    "overhead_gib": cal.overhead_gib,
                    "reported_kv_gib": round(reported, 2),
                    "predicted_kv_gib": round(p.kv_cache_bytes / GIB, 2),
                    "error_pct": round(100 * (p.kv_cache_bytes / GIB - reported) / reported, 1),
                }
            )
    return out


def activations(rows: list[dict]) -> list[dict]:
    """The planner's profile peak against the peak activation vLLM printed, where a log prints it."""
    out = []
    for row in rows:
        reported = row["facts"].get("peak_activation_gib")
        if reported is None:
            continue
        spec, s, gpu = model_catalog.CATALOG[row["model"]], settings_of(row), gpu_of(row)
        peak = budget.profile_peak_on(spec, s, gpu)
        # from 0.27 the V1 runner prints its CUDA-graph estimate inside "peak activation" (gpu_worker.py 0.27.1
        # lines 527-528, 0.28.0 lines 541-543): the planner's graph term joins its peak there
        graphs = peak.runner == "V1" and s.version[:2] >= (0, 27) and vllm_facts.graphs_in_budget(spec, s)
        planned = peak.peak / GIB + (budget.CUDA_GRAPH_GIB.nominal if graphs else 0.0)
        out.append(
            {
                "id": row["id"],
                "model": row["model"],
                "tp": s.tensor_parallel_size,
                "vllm": row["vllm_version"],
                "model_runner": peak.runner,
                "compile_cache": s.compile_cache if peak.runner == "V2" and not s.enforce_eager else None,
                "max_num_seqs": peak.seqs,
                "forward_gib": round(peak.forward / GIB, 2),
                "sampler_gib": round(peak.sampler / GIB, 2),
                "compile_gib": round(peak.compile / GIB, 2),
                "graphs_in_peak": graphs,
                "planned_gib": round(planned, 2),
                "reported_gib": reported,
                "error_pct": round(100 * (planned - reported) / reported, 1),
            }
        )
    return out


def fit(rows: list[dict]) -> dict[str, budget.Range]:
    def spread(values):
        return budget.Range(round(min(values), 2), round(statistics.median(values), 2), round(max(values), 2))

    v0 = [implied_overhead_gib(r) for r in rows if r["part"] == "fit" and r["engine"] == "V0"]
    non_torch = spread(v0)
    out = {"non_torch": non_torch}
    for runner in ("V1", "V2"):  # the workspace per model runner: the V2 logs leave more beside the peak
        out[f"{runner.lower()}_workspace"] = spread(
            [
                implied_overhead_gib(r) - non_torch.nominal
                for r in rows
                if r["part"] == "fit" and r["engine"] == "V1" and runner_of(r) == runner
            ]
        )
    return out


def cold_compile_bytes(rows: list[dict]) -> dict:
    """budget.COLD_COMPILE_BYTES read off the logs: the peak activation a cold start of the V2 runner prints, per
    token of its profile batch per element of hidden_size (split by TP), on the fit rows (the constant: their median,
    rounded) and on the held-out rows (the check)."""
    out: dict = {"fit": {}, "held-out": {}}
    for row in rows:
        reported = row["facts"].get("peak_activation_gib")
        spec, s = model_catalog.CATALOG[row["model"]], settings_of(row)
        if reported is None or s.enforce_eager or s.compile_cache != "cold":
            continue
        if vllm_facts.model_runner(spec, s) != "V2":
            continue
        tokens = min(s.batch(gpu_of(row))[0], budget.COLD_COMPILE_TOKENS)
        out[row["part"]][row["id"]] = round(reported * GIB * s.tensor_parallel_size / (tokens * spec.hidden_size), 1)
    out["median_of_fit"] = statistics.median(out["fit"].values())
    return out


def runner_of(row: dict) -> str:
    """Which workspace term the row's run fits: budget.workspace_term's choice for its runner and release."""
    s = settings_of(row)
    runner = vllm_facts.model_runner(model_catalog.CATALOG[row["model"]], s)
    return "V2" if budget.workspace_term(runner, s) is budget.V2_WORKSPACE_GIB else "V1"


def evaluate(rows: list[dict], terms: dict[str, budget.Range] | None = None) -> list[dict]:
    """The planner on every row, with `terms` (default: budget.py's) as its overheads."""
    terms = terms or {}
    out = []
    for row in rows:
        spec, s, gpu = model_catalog.CATALOG[row["model"]], settings_of(row), gpu_of(row)
        runner = vllm_facts.model_runner(spec, s)
        overheads = budget.fixed_overheads(
            s,
            terms.get("non_torch"),
            terms.get(f"{runner_of(row).lower()}_workspace"),
            graphs=vllm_facts.graphs_in_budget(spec, s),
            runner=runner,
        )
        p = gpu_plan.plan(spec, gpu, row["quant"], s, weights_gib=weights_of(row), overhead_gib=overheads)
        reported, planned = reported_kv_gib(row), p.kv_cache_bytes / GIB
        r = p.kv_cache_gib_range
        out.append(
            {
                "id": row["id"],
                "part": row["part"],
                "engine": row["engine"],
                "model": row["model"],
                "quant": row["quant"],
                "gpu": gpu.name,
                "gpu_total_gib": gpu.total_gib,
                "tp": s.tensor_parallel_size,
                "pp": s.pipeline_parallel_size,
                "vllm": row["vllm_version"],
                "reported_kv_gib": round(reported, 2),
                "planned_kv_gib": round(planned, 2),
                "error_pct": round(100 * (planned - reported) / reported, 1),
                "range_gib": [round(r.pessimistic, 2), round(r.optimistic, 2)],
                "inside_range": r.pessimistic - 0.005 <= reported <= r.optimistic + 0.005,
                "source": row["source"],
            }
        )
    return out


def _p90(errors: list[float]) -> float:
    """The 90th percentile of sorted errors, nearest rank."""
    return errors[min(len(errors) - 1, round(0.9 * (len(errors) - 1)))]


def summary(results: list[dict], part: str, engine: str | None = None) -> dict:
    chosen = [r for r in results if r["part"] == part and (engine is None or r["engine"] == engine)]
    errors = sorted(abs(r["error_pct"]) for r in chosen)
    if not errors:
        return {"rows": 0}
    p90 = _p90(errors)
    return {
        "rows": len(chosen),
        "median_abs_error_pct": round(statistics.median(errors), 1),
        "p90_abs_error_pct": p90,
        "share_inside_range": round(sum(r["inside_range"] for r in chosen) / len(chosen), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "planner_calibration.json"))
    args = parser.parse_args()
    rows = load_rows()
    fitted = fit(rows)
    current = {
        "non_torch": budget.NON_TORCH_GIB,
        "v1_workspace": budget.V1_WORKSPACE_GIB,
        "v2_workspace": budget.V2_WORKSPACE_GIB,
    }
    results = evaluate(rows, fitted)
    cross = pairs(rows)
    peaks = activations(rows)
    cross_errors = sorted(abs(p["error_pct"]) for p in cross)
    report = {
        "data": str(DATA.relative_to(ROOT)),
        "logs": len(rows),
        "fitted_terms_gib": {k: v.__dict__ for k, v in fitted.items()},
        "cold_compile_bytes": cold_compile_bytes(rows),
        "terms_in_budget_py_gib": {k: v.__dict__ for k, v in current.items()},
        "held_out": {
            "all": summary(results, "held-out"),
            "V1": summary(results, "held-out", "V1"),
            "V0": summary(results, "held-out", "V0"),
            # issue 35's zone: vLLM 0.22 or later on a card below 70 GiB
            "zone_0.22_below_70_gib": summary(
                [r for r in results if vllm_facts.version_tuple(r["vllm"])[:2] >= (0, 22) and r["gpu_total_gib"] < 70],
                "held-out",
            ),
        },
        "fit": {"all": summary(results, "fit")},
        "cross_model": {
            "pairs": len(cross),
            "median_abs_error_pct": round(statistics.median(cross_errors), 1),
            "max_abs_error_pct": cross_errors[-1],
            "within_5_pct": sum(e <= 5 for e in cross_errors),
        },
        "rows": results,
        "pairs": cross,
        "peak_activation": peaks,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print("| part | model | GPU | TP×PP | vLLM | KV reported | planned | error | inside range |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['part']} | {r['model']} {r['quant']} | {r['gpu']} | {r['tp']}×{r['pp']} | {r['vllm']} | "
            f"{r['reported_kv_gib']:.2f} | {r['planned_kv_gib']:.2f} | {r['error_pct']:+.1f} % | "
            f"{'yes' if r['inside_range'] else 'no'} |"
        )
    print(
        "\n| calibrated on | predicts | GPU | vLLM | KV reported | predicted | error |\n|---|---|---|---|---|---|---|"
    )
    for p in cross:
        print(
            f"| {p['from']} | {p['to']} | {p['gpu']} | {p['vllm']} | {p['reported_kv_gib']:.2f} | "
            f"{p['predicted_kv_gib']:.2f} | {p['error_pct']:+.1f} % |"
        )
    print(
        "\n| log | runner | rows | forward | sampler | cold compile | planned peak | vLLM's peak | error |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for p in peaks:
        runner = p["model_runner"] + (", compile " + p["compile_cache"] if p["compile_cache"] else "")
        runner += " + graph estimate" if p["graphs_in_peak"] else ""
        print(
            f"| {p['model']} TP{p['tp']} {p['vllm']} | {runner} | {p['max_num_seqs']} | {p['forward_gib']:.2f} | "
            f"{p['sampler_gib']:.2f} | {p['compile_gib']:.2f} | {p['planned_gib']:.2f} | {p['reported_gib']:.2f} | "
            f"{p['error_pct']:+.1f} % |"
        )
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "logs",
                    "fitted_terms_gib",
                    "cold_compile_bytes",
                    "terms_in_budget_py_gib",
                    "held_out",
                    "fit",
                    "cross_model",
                )
            },
            indent=1,
        )
    )
    if any(fitted[k] != current[k] for k in fitted):
        print(
            "note: planner/budget.py's terms differ from this fit; copy the fitted terms into budget.py",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
