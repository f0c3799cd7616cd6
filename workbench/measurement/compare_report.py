"""compare_report.py is what `workbench compare` hands back: every task's verdict for every candidate against the
baseline, the speed ratios with their intervals, goodput under the SLOs, the memory on the target GPU, and one
line per candidate that names the number that decided it. It reads as JSON (compare.json), CSV, Markdown
(report.md) and a self-contained HTML page (report.html: the Markdown rendered, the figures inline as SVG, no
script and no CDN, so it opens offline and can be mailed as one file).

Built from the run's outcomes (plain dicts, as the store keeps them); the statistics are verdict.py's.
"""

import html
import time

from markdown_it import MarkdownIt

from workbench import plots
from workbench.export import Exportable
from workbench.measurement import verdict

_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}code{background:#f5f5f5;
padding:0 .2em}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}h1{font-size:1.6em}h2{margin-top:1.6em}"""


def _pct(value, digits: int = 0) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}"


class CompareReport(Exportable):
    """The comparison: `answers` (one per candidate, the baseline first), `verdicts` and `speed` per candidate."""

    def __init__(self, request: dict, outcomes: list[dict], run_id: str = "", seconds: float = 0.0, store: str = ""):
        self.request, self.outcomes, self.run_id, self.seconds, self.store = request, outcomes, run_id, seconds, store
        self.names = [o["candidate"]["name"] for o in outcomes]
        self.baseline = self.names[0]
        self.confidence = request["confidence"]
        base = outcomes[0]
        self.verdicts: dict[str, list[verdict.TaskVerdict]] = {}
        self.speed: dict[str, list[verdict.SpeedRatio]] = {}
        self.answers = [self._baseline_answer(base)]
        for outcome in outcomes[1:]:
            name = outcome["candidate"]["name"]
            self.verdicts[name] = [
                verdict.judge(
                    task,
                    base["results"][task]["kind"],
                    self.baseline,
                    name,
                    base["results"][task]["items"],
                    outcome["results"][task]["items"],
                    self.confidence,
                )
                for task in request["tasks"]
                if task in base["results"] and task in outcome["results"]
            ]
            self.speed[name] = (
                verdict.speed_ratios(self._levels(base), self._levels(outcome), self.confidence)
                if self._levels(base) and self._levels(outcome)
                else []
            )
            self.answers.append(self._answer(outcome, base))

    # -- the numbers ----------------------------------------------------------------------------------
    @staticmethod
    def _levels(outcome: dict) -> list[dict]:
        bench = outcome["results"].get("bench")
        return bench["report"]["levels"] if bench else []

    def _missing(self, outcome: dict) -> list[str]:
        return [
            f"{t} ({outcome['errors'].get(t, 'not run')})" for t in self.request["tasks"] if t not in outcome["results"]
        ]

    def _memory_text(self, outcome: dict) -> tuple[bool | None, str]:
        mem = outcome.get("memory")
        if not mem or not mem.get("planned"):
            return None, (f"memory not planned: {mem['reason']}" if mem else "")
        verb = "fits" if mem["fits"] else "does not fit"
        return mem["fits"], (
            f"{verb} one {mem['gpu']} at {mem['context']:,} tokens "
            f"({mem['kv_cache_tokens']:,} KV tokens, {mem['max_concurrency']:.1f} full-length requests)"
        )

    def _baseline_answer(self, base: dict) -> verdict.Answer:
        if base["error"]:
            return verdict.Answer(
                self.baseline,
                "failed",
                f"the baseline did not run: {base['error']}; nothing can be compared against it",
            )
        parts = []
        for task in self.request["tasks"]:
            result = base["results"].get(task)
            if result and result["kind"] == "ppl":
                parts.append(f"ppl {result['summary']['ppl']:.2f}")
            elif result:
                scores = [i["score"] for i in result["items"]]
                parts.append(f"{task} {sum(scores) / len(scores):.0%} of {len(scores)}")
        levels = self._levels(base)
        if levels:
            parts.append(f"{levels[0]['output_tok_s']:.1f} output tok/s at {levels[0]['load']}")
        parts.append(self._memory_text(base)[1])
        missing = self._missing(base)
        if missing:
            parts.append("not measured: " + ", ".join(missing))
        return verdict.Answer(self.baseline, "baseline", "; ".join(p for p in parts if p) + ".")

    def _answer(self, outcome: dict, base: dict) -> verdict.Answer:
        name = outcome["candidate"]["name"]
        if base["error"]:
            return verdict.Answer(name, "failed", "the baseline did not run, so there is nothing to compare with")
        if outcome["error"]:
            return verdict.Answer(name, "failed", outcome["error"])
        fits, memory_text = self._memory_text(outcome)
        answer = verdict.answer(name, self.verdicts[name], self.speed[name], fits, memory_text)
        missing = self._missing(outcome)
        if missing:
            standing = verdict.UNDECIDED if answer.standing == verdict.GOOD else answer.standing
            answer = verdict.Answer(name, standing, f"{answer.deciding}; not measured: {', '.join(missing)}")
        return answer

    def goodput(self, outcome: dict) -> list[dict]:
        return [
            {
                "load": lv["load"],
                "goodput_req_s": lv["goodput_req_s"],
                "met_slo": lv["met_slo"],
                "completed": lv["completed"],
            }
            for lv in self._levels(outcome)
        ]

    # -- exports ----------------------------------------------------------------------------------------
    def as_dict(self) -> dict:
        return {
            "date": time.strftime("%Y-%m-%d"),
            "run": self.run_id,
            "seconds": round(self.seconds, 1),
            "store": self.store,
            "request": self.request,
            "baseline": self.baseline,
            "answers": [a.as_dict() for a in self.answers],
            "verdicts": {n: [v.as_dict() for v in vs] for n, vs in self.verdicts.items()},
            "speed": {n: [s.as_dict() for s in ss] for n, ss in self.speed.items()},
            "goodput": {o["candidate"]["name"]: self.goodput(o) for o in self.outcomes},
            "memory": {o["candidate"]["name"]: o.get("memory") for o in self.outcomes},
            "candidates": [
                {k: o[k] for k in ("candidate", "identity", "reused", "computed", "errors", "error", "log")}
                for o in self.outcomes
            ],
            "results": {o["candidate"]["name"]: o["results"] for o in self.outcomes},
        }

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = [
            "candidate",
            "what",
            "kind",
            "items",
            "baseline",
            "candidate_value",
            "difference",
            "ci_low",
            "ci_high",
            "verdict",
            "power",
            "recovery_pct",
            "p_value",
        ]
        rows = [
            [
                v.candidate,
                v.task,
                v.kind,
                v.items,
                v.baseline_value,
                v.candidate_value,
                v.difference,
                v.interval[0],
                v.interval[1],
                v.outcome,
                v.power,
                v.recovery_pct,
                v.p_value,
            ]
            for vs in self.verdicts.values()
            for v in vs
        ]
        rows += [
            [
                name,
                f"{s.metric} at {s.load}",
                "speed ratio",
                s.runs,
                s.baseline,
                s.candidate,
                s.ratio,
                s.interval[0],
                s.interval[1],
                "",
                "",
                "",
                "",
            ]
            for name, ss in self.speed.items()
            for s in ss
        ]
        return header, rows

    def _header(self) -> list[str]:
        r = self.request
        load = (
            "none"
            if r["workload"] is None
            else f"rate {r['rate']}/s"
            if r["rate"]
            else f"concurrency {', '.join(map(str, r['concurrency']))}"
        )
        gpu = f"{r['gpu']} at {r['plan_context']:,} tokens" if r["gpu"] else "none"
        return [
            f"Baseline: **{self.baseline}** · tasks: {', '.join(r['tasks'])} · benchmark: {load}"
            + (f" × {r['repeats']} runs" if r["workload"] is not None else "")
            + f" · target GPU: {gpu} · {self.confidence:.0%} confidence"
        ]

    def to_markdown(self) -> str:
        lines = ["# Is it good enough?", "", *self._header(), ""]
        lines += [f"- {a.line}" for a in self.answers]
        lines += [
            "",
            "## Quality per task",
            "",
            f"Against {self.baseline}, on the same items. Pass/fail items: exact McNemar test and a paired "
            "bootstrap interval of the difference; scores: the paired bootstrap interval; perplexity: a paired "
            "bootstrap over text chunks. *Power*: the chance these items had to see a loss of the margin shown.",
            "",
            "| task | candidate | items | baseline → candidate | difference (CI) | verdict | recovery | p |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, vs in self.verdicts.items():
            for v in vs:
                unit = "%" if v.kind == "ppl" else " pts"
                diff = (
                    "—"
                    if v.difference is None
                    else f"{_pct(v.difference, 1)}{unit} ({_pct(v.interval[0], 1)} to {_pct(v.interval[1], 1)})"
                )
                lines.append(
                    f"| {v.task} | {name} | {v.items} | {v.value_text} | {diff} | {v.summary} | "
                    f"{'—' if v.recovery_pct is None else f'{v.recovery_pct:.1f} %'} | "
                    f"{'—' if v.p_value is None else f'{v.p_value:.3g}'} |"
                )
        lines += self._speed_markdown() + self._memory_markdown() + self._runs_markdown()
        return "\n".join(lines)

    def _speed_markdown(self) -> list[str]:
        if not any(self.speed.values()):
            return []
        runs = self.request["repeats"]
        lines = [
            "",
            "## Speed",
            "",
            f"Candidate ÷ {self.baseline}: the mean over {runs} run(s) of each run's median, "
            f"with a {self.confidence:.0%} interval (delta method on the log of the ratio; none from one run). "
            "Below 1 is faster for TTFT and TPOT; above 1 is faster for tok/s.",
            "",
            "| load | candidate | TTFT p50 | TPOT p50 | output tok/s | goodput req/s (met SLO) |",
            "|---|---|---|---|---|---|",
        ]
        for name, ss in self.speed.items():
            outcome = self.outcomes[self.names.index(name)]
            good = {g["load"]: g for g in self.goodput(outcome)}
            for load in dict.fromkeys(s.load for s in ss):
                cells = {s.metric: s.value_text for s in ss if s.load == load}
                g = good.get(load)
                lines.append(
                    f"| {load} | {name} | {cells.get('ttft_ms', '—')} | {cells.get('tpot_ms', '—')} | "
                    f"{cells.get('output_tok_s', '—')} | "
                    + (f"{g['goodput_req_s']:.2f} ({g['met_slo']}/{g['completed']})" if g else "—")
                    + " |"
                )
        base = self.outcomes[0]
        for g in self.goodput(base):
            lines.append(
                f"| {g['load']} | {self.baseline} (baseline) | 1 | 1 | 1 | {g['goodput_req_s']:.2f} "
                f"({g['met_slo']}/{g['completed']}) |"
            )
        return lines

    def _memory_markdown(self) -> list[str]:
        rows = [(o["candidate"]["name"], o.get("memory")) for o in self.outcomes if o.get("memory")]
        if not rows:
            return []
        r = self.request
        lines = [
            "",
            f"## Memory on one {r['gpu']} at {r['plan_context']:,} tokens",
            "",
            "The planner's budget (workbench plan) for each candidate's weights and serve flags.",
            "",
            "| candidate | format | weights GiB | KV cache GiB | KV tokens | full-length requests | fits |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, m in rows:
            if not m.get("planned"):
                lines.append(f"| {name} | — | — | — | — | — | not planned: {m['reason']} |")
                continue
            lines.append(
                f"| {name} | {m['quant']} | {m['weights_gib']:.2f} | {m['kv_cache_gib']:.2f} | "
                f"{m['kv_cache_tokens']:,} | {m['max_concurrency']:.2f} | {'yes' if m['fits'] else 'no'} |"
            )
        return lines

    def _runs_markdown(self) -> list[str]:
        lines = [
            "",
            "## Runs",
            "",
            f"Store: `{self.store}` · this run: {self.run_id} · {self.seconds:.0f} s",
            "",
            "| candidate | target | reused | computed | failed |",
            "|---|---|---|---|---|",
        ]
        for o in self.outcomes:
            c = o["candidate"]
            failed = "; ".join([*(f"{k}: {v}" for k, v in o["errors"].items()), *([o["error"]] if o["error"] else [])])
            lines.append(
                f"| {c['name']} | `{' '.join([c['target'], *c['flags']])}` | {', '.join(o['reused']) or '—'} "
                f"| {', '.join(o['computed']) or '—'} | {failed or '—'} |"
            )
        return lines

    def figures(self) -> dict[str, tuple[str, object]]:
        """{"quality" | "latency" | "memory": (caption, matplotlib Figure)}, for what the run has."""
        out = {}
        rows = [v.as_dict() for vs in self.verdicts.values() for v in vs]
        if any(r["difference"] is not None for r in rows):
            out["quality"] = (
                f"Each task's difference from {self.baseline} with its {self.confidence:.0%} interval "
                "(right of 0 is better); the grey tick is the margin a loss is judged against.",
                plots.quality_deltas(rows),
            )
        benches = {
            o["candidate"]["name"]: o["results"]["bench"]["report"] for o in self.outcomes if "bench" in o["results"]
        }
        if benches:
            out["latency"] = (
                "TTFT and TPOT per request, each candidate at the lowest load (CDF).",
                plots.latency_cdfs(benches),
            )
        memory_rows = [
            {"name": o["candidate"]["name"], **o["memory"]}
            for o in self.outcomes
            if o.get("memory") and o["memory"].get("planned")
        ]
        if memory_rows:
            out["memory"] = (
                f"Memory on one {self.request['gpu']} at {self.request['plan_context']:,} tokens.",
                plots.memory_bars(memory_rows),
            )
        return out

    def to_html(self) -> str:
        body = MarkdownIt("commonmark", {"html": False}).enable("table").render(self.to_markdown())
        figures = "".join(
            f"<figure>{plots.svg(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>"
            for caption, fig in self.figures().values()
        )
        marker = "<h2>Speed</h2>" if "<h2>Speed</h2>" in body else "<h2>Runs</h2>"
        body = body.replace(marker, f"<h2>Figures</h2>{figures}{marker}", 1) if figures else body
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>workbench compare: "
            f"{html.escape(', '.join(self.names))}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
        )

    def to_text(self) -> str:
        """What the CLI prints: the answers, then each verdict."""
        lines = [a.line.replace("**", "") for a in self.answers]
        for name, vs in self.verdicts.items():
            for v in vs:
                lines.append(f"  {name} · {v.task}: {v.value_text}; {v.summary}")
        for name, ss in self.speed.items():
            lines += [f"  {name} · {s.load}: {s.summary}" for s in ss]
        return "\n".join(lines)

    def save_report(self, folder) -> dict:
        """report.html, report.md, report.csv and compare.json in `folder`."""
        return self.save(folder, "report", names={"json": "compare.json"})
