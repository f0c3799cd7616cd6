"""tune.py finds the engine flags that serve a stated workload best.

1. `propose` (tune_plan.py): the planner builds candidates around vLLM's defaults and prunes, with the reason,
   every one that vLLM would refuse to start or that could not hold one request of the workload, and keeps one
   of each group that would schedule the workload the same way.
2. `tune`: vLLM's own defaults (no flag beyond the model, and on the CPU build the KV cache size the engine
   must set) and each remaining candidate are started, warmed up, benchmarked with bench.run (repeated for
   intervals), stopped, and ranked by goodput under the SLOs, then by output tokens/s. The winner's `vllm serve`
   line is printed, and `vs_defaults` says how much better it is than vLLM's defaults: the ratio of its goodput
   and throughput over theirs, with a 95 % interval over the repeats.

vLLM's own benchmarks/auto_tune/auto_tune.sh sweeps max_num_seqs × max_num_batched_tokens blindly and
starts every point; here the planner removes what cannot start, and what cannot change the schedule,
before any engine starts. Knows nothing about the UI.
"""

import os
from dataclasses import asdict, replace

from workbench import stats
from workbench.errors import ConfigError
from workbench.export import Exportable
from workbench.measurement import bench
from workbench.measurement.bench import Workload
from workbench.measurement.bench_report import SLO
from workbench.measurement.placement import pinned
from workbench.measurement.tune_plan import defaults, kept, propose, pruned_lines, target
from workbench.planner import gpu_plan, vllm_facts
from workbench.serving import hardware, models
from workbench.serving.engine import Engine, detect_device

GOAL = 0.20  # the gain over vLLM's defaults worth tuning for


class TuneReport(Exportable, dict):
    """tune's result, a plain dict: what was pruned, the benchmarked candidates ranked, why, the winner's line."""

    def as_dict(self) -> dict:
        return dict(self)

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = ["rank", "label", "goodput_req_s", "output_tok_s", "ttft_p50_ms", "tpot_p50_ms", "error"]
        rows = []
        for n, e in enumerate(self["ranked"], 1):
            lv = e["level"] or {}
            rows.append(
                [
                    n,
                    e["label"],
                    lv.get("goodput_req_s"),
                    lv.get("output_tok_s"),
                    (lv.get("ttft_ms") or {}).get("p50"),
                    (lv.get("tpot_ms") or {}).get("p50"),
                    e["error"],
                ]
            )
        return header, rows

    def to_markdown(self) -> str:
        return "```\n" + self.to_text() + "\n```"

    def to_text(self) -> str:
        lines = [
            f"{self['model']} on {self['gpu'] or self['device']} · {self['workload']['input_len']} in / "
            f"{self['workload']['output_len']} out tokens · concurrency {self['concurrency']}",
            f"pruned by the planner ({len(self['pruned'])}):",
            *pruned_lines(self["pruned"]),
        ]
        lines.append(f"{'rank':<5} {'candidate':<52} {'goodput':>8} {'tok/s':>7} {'TTFT p50':>9} {'TPOT p50':>9}")
        for n, e in enumerate(self["ranked"], 1):
            lv = e["level"]
            if lv is None:
                lines.append(f"{n:<5} {e['label']:<52} failed: {e['error']}")
            else:
                lines.append(
                    f"{n:<5} {e['label']:<52} {lv['goodput_req_s']:>8.3f} {lv['output_tok_s']:>7.1f} "
                    f"{lv['ttft_ms']['p50']:>9.0f} {lv['tpot_ms']['p50']:>9.1f}"
                )
        lines += ["", self["explanation"]]
        where = next((e["placement"] for e in self["ranked"] if e.get("placement")), None)
        if where:
            lines += [
                "",
                f"CPUs: {where['note']}" + ("; give tune --server-cpus to pin its engines" if where["overlap"] else ""),
            ]
        vs = self.get("vs_defaults")
        if vs:
            tok = vs.get("output_tok_s")
            lines += [
                "",
                f"over {vs['defaults']}: {vs['verdict']}"
                + (
                    f" Output tokens/s ×{tok['ratio']:.3f}"
                    + (f" ({tok['ci_low']:.3f}–{tok['ci_high']:.3f})." if tok["ci_low"] is not None else ".")
                    if tok and not vs.get("winner_is_defaults")
                    else ""
                ),
            ]
        if self["serve"]:
            lines += ["", "winner:", f"  {self['serve']}"]
        return "\n".join(lines)


def tune(
    model: str,
    workload: Workload,
    concurrency: int,
    slo: SLO,
    gpu_name: str | None = None,
    gpu_total_gib: float | None = None,
    quant: str = "bf16",
    max_candidates: int | None = None,
    warmup: int = 2,
    on_event=print,
    repeats: int = 1,
    client_cpus: "set[int] | None" = None,
    server_cpus: "set[int] | None" = None,
    revision: str | None = None,
) -> TuneReport:
    """Start, benchmark and rank vLLM's defaults and every kept candidate (or the first `max_candidates`), each
    level `repeats` times. A candidate that fails to start is reported, never fatal. `on_event(str)` hears what
    happens. `server_cpus` pins the engines it starts and `client_cpus` the benchmark (one given, the other gets
    the rest of this process's CPUs). A GPU named on a machine without one is refused: nothing could be benchmarked
    (`dry_run` plans for it). `revision`: of a Hub id, for every engine it starts."""
    spec = models.find_model(model, revision)
    device, gpu = target(gpu_name, gpu_total_gib)
    if gpu_name and detect_device() != "gpu":
        raise ConfigError(
            f"--gpu {gpu_name} plans for a GPU, but this machine has none to benchmark on. "
            "Fix: add --dry-run to see the planner's candidates, or run it on that GPU."
        )
    if repeats < 1:
        raise ConfigError(f"repeats {repeats} is not positive. Fix: 1, or 3 for intervals over the runs.")
    here = os.sched_getaffinity(0)  # one side given: the other gets the rest (engines started here inherit ours)
    if server_cpus and not client_cpus:
        client_cpus = (here - set(server_cpus)) or None
    elif client_cpus and not server_cpus:
        server_cpus = (here - set(client_cpus)) or None
    version = _vllm_version()
    proposals = propose(spec, workload, concurrency, device, gpu, quant, version)
    runs = [
        defaults(spec, workload, concurrency, device, gpu, quant, version),
        *(kept(proposals)[:max_candidates] if max_candidates else kept(proposals)),
    ]
    on_event(
        f"{len(proposals)} candidates, {len(proposals) - len(kept(proposals))} pruned by the planner; "
        f"benchmarking {len(runs) - 1} and vLLM's defaults" + (f", {repeats} runs each" if repeats > 1 else "")
    )
    results = []
    for i, p in enumerate(runs, 1):
        c = p.candidate
        on_event(f"[{i}/{len(runs)}] starting {c.label()} ...")
        entry = {**p.as_dict(), "error": None, "level": None}
        engine = None
        try:
            engine = Engine(c.engine_config(model, revision=revision))
            with pinned(server_cpus):  # the engine and its children inherit these CPUs
                engine.start()
            if warmup:
                bench.run(
                    engine.base_url,
                    replace(workload, num_prompts=warmup, seed=workload.seed + 1),
                    concurrency=[min(warmup, concurrency)],
                    warmup=0,
                    client_cpus=client_cpus,
                )
            report = bench.run(
                engine.base_url,
                workload,
                concurrency=[concurrency],
                slo=slo,
                repeats=repeats,
                client_cpus=client_cpus,
                server_pid=engine.process.pid,
            )
            entry["level"] = report["levels"][0]
            entry["server"] = report["server"]
            entry["placement"] = report["placement"]
        except Exception as exc:  # noqa: BLE001 - one candidate failing is a result, not the end of the run
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        finally:
            if engine is not None:
                engine.stop()
        lv = entry["level"]
        on_event(
            f"[{i}/{len(runs)}] "
            + (
                f"failed: {entry['error']}"
                if lv is None
                else f"goodput {lv['goodput_req_s']:.3f} req/s, {lv['output_tok_s']:.1f} tok/s, "
                f"TTFT p50 {lv['ttft_ms']['p50']:.0f} ms, TPOT p50 {lv['tpot_ms']['p50']:.1f} ms"
            )
        )
        results.append(entry)
    order = sorted(range(len(results)), key=lambda n: _rank_key(results[n]))
    ranked = [results[n] for n in order]
    winner = runs[order[0]].candidate if ranked and ranked[0]["level"] else None
    return TuneReport(
        model=spec.name,
        device=device,
        gpu=getattr(gpu, "name", None),
        workload=asdict(workload),
        concurrency=concurrency,
        slo=asdict(slo),
        repeats=repeats,
        pruned=[p.as_dict() for p in proposals if p.pruned is not None],
        ranked=ranked,
        explanation=explain(ranked, slo),
        vs_defaults=vs_defaults(ranked),
        serve=winner.serve_line(_checkpoint(spec, model, quant, revision)) if winner else None,
    )


def _runs(entry: dict, key: str) -> list[float]:
    """A benchmarked candidate's value of `key` in each repeated run (one value without repeats)."""
    ci = entry["level"].get("repeat_ci")
    return list(ci[key]["runs"]) if ci else [entry["level"][key]]


def vs_defaults(ranked: list[dict], goal: float = GOAL) -> dict | None:
    """The winner's goodput and output throughput over vLLM's defaults': the ratio of their means over the repeats,
    with a 95 % interval (stats.ratio_interval; None with a single run), and a sentence saying whether the gain
    reaches `goal`, or that the workload leaves no room. None when vLLM's defaults were not benchmarked."""
    base = next((e for e in ranked if e.get("vllm_defaults")), None)
    done = [e for e in ranked if e["level"]]
    if base is None:
        return None
    if not base["level"] or not done:
        return {
            "defaults": base["label"],
            "winner": done[0]["label"] if done else None,
            "goodput_req_s": None,
            "output_tok_s": None,
            "verdict": f"vLLM's defaults did not finish ({base['error']}): no ratio.",
        }
    win = done[0]
    out = {"defaults": base["label"], "winner": win["label"], "winner_is_defaults": win is base}
    for key in ("goodput_req_s", "output_tok_s"):
        ratio, low, high = stats.ratio_interval(_runs(base, key), _runs(win, key))
        out[key] = (
            None
            if ratio != ratio
            else {  # NaN: the defaults' mean was 0 (no request met the SLOs)
                "ratio": round(ratio, 4),
                "ci_low": None if low is None else round(low, 4),
                "ci_high": None if high is None else round(high, 4),
            }
        )
    g = out["goodput_req_s"]
    if win is base:
        verdict = "vLLM's defaults win: no candidate beat them on this workload, so there is nothing to tune here."
    elif g is None:
        verdict = (
            f"vLLM's defaults met no SLO and {win['label']} did: tuning is what makes this workload servable here."
        )
    else:
        shown = f"×{g['ratio']:.3f}" + (
            f" ({g['ci_low']:.3f}–{g['ci_high']:.3f})" if g["ci_low"] is not None else " (one run: no interval)"
        )
        if g["ci_low"] is not None and g["ci_low"] <= 1 <= g["ci_high"]:
            verdict = (
                f"goodput {shown} of vLLM's defaults: no measurable gain, the workload leaves no room beyond "
                "what vLLM picks itself."
            )
        elif g["ratio"] >= 1 + goal:
            verdict = f"goodput {shown} of vLLM's defaults: at least the {goal:.0%} gain aimed for."
        else:
            verdict = (
                f"goodput {shown} of vLLM's defaults: below the {goal:.0%} gain aimed for; the workload "
                "leaves little room beyond what vLLM picks itself."
            )
    out["verdict"] = verdict
    return out


def _vllm_version() -> str:
    build = hardware.vllm_build()
    return (hardware.package_version(build) if build else None) or vllm_facts.DEFAULT_VLLM_VERSION


def _rank_key(entry: dict):
    lv = entry["level"]
    if lv is None:
        return (1, 0.0, 0.0)
    return (0, -lv["goodput_req_s"], -lv["output_tok_s"])


def _checkpoint(spec, model: str, quant: str, revision: str | None = None) -> str:
    try:
        return str(models.resolve_model(model, revision))
    except Exception:  # noqa: BLE001 - not on this machine: the catalog's checkpoint
        return gpu_plan.serve_checkpoint(spec, quant)[0]


def explain(ranked: list[dict], slo: SLO) -> str:
    """Why the winner won, in a sentence or two."""
    done = [e for e in ranked if e["level"]]
    if not done:
        return "no candidate finished its benchmark; see each one's error."
    slos = (
        ", ".join(
            s
            for s in (
                f"TTFT ≤ {slo.ttft_ms:g} ms" if slo.ttft_ms else "",
                f"TPOT ≤ {slo.tpot_ms:g} ms" if slo.tpot_ms else "",
            )
            if s
        )
        or "no SLO given"
    )
    w = done[0]
    lv = w["level"]
    text = (
        f"Ranked by goodput ({slos}), then output tokens/s. {w['label']} wins with "
        f"{lv['goodput_req_s']:.3f} req/s goodput ({lv['met_slo']}/{lv['completed']} requests met the SLOs) and "
        f"{lv['output_tok_s']:.1f} tok/s; the planner expected: {w['note']}."
    )
    if len(done) > 1:
        r = done[1]["level"]
        gain = (lv["goodput_req_s"] / r["goodput_req_s"] - 1) * 100 if r["goodput_req_s"] else None
        text += (
            f" Runner-up {done[1]['label']}: {r['goodput_req_s']:.3f} req/s"
            + (f" ({gain:+.1f} % for the winner)" if gain is not None else "")
            + f", TTFT p50 {r['ttft_ms']['p50']:.0f} vs {lv['ttft_ms']['p50']:.0f} ms, TPOT p50 "
            f"{r['tpot_ms']['p50']:.1f} vs {lv['tpot_ms']['p50']:.1f} ms."
        )
    return text
