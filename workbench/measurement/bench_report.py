"""bench_report.py is what a benchmark's requests add up to.

Per request (`RequestResult`): TTFT is the time to the first chunk with text; ITL the gaps between later chunks;
TPOT (e2e − TTFT) / (output tokens − 1); e2e the whole request. Per load level (`summarize`): mean and p50/p90/p99
of each, request and output token throughput, goodput (requests per second that met every `SLO` given), and the
client's token counts checked against the server's usage; over repeated runs (`repeat_ci`): each median's mean with
a t interval. `BenchReport` prints, saves and plots the whole. Arithmetic only: bench.py sends the requests.
"""

from dataclasses import dataclass, field

from workbench import stats
from workbench.export import Exportable

METRICS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
_COLUMNS = ("completed", "failed", "req_s", "output_tok_s", "goodput_req_s")


@dataclass(frozen=True)
class SLO:
    ttft_ms: float | None = None
    tpot_ms: float | None = None

    def met(self, r: "RequestResult") -> bool:
        if not r.ok:
            return False
        if self.ttft_ms is not None and r.ttft_s * 1000 > self.ttft_ms:
            return False
        return self.tpot_ms is None or r.tpot_s is None or r.tpot_s * 1000 <= self.tpot_ms


@dataclass
class RequestResult:
    ok: bool = False
    input_tokens: int = 0  # the server's usage
    output_tokens: int = 0
    sent_tokens: int = 0  # what the client sent and asked for, to check the usage against
    asked_tokens: int = 0
    chunks: int = 0  # streamed chunks with text: one per token when ITL is per token
    ttft_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def tpot_s(self) -> float | None:
        if not self.ok or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)


def summarize(results: list[RequestResult], duration_s: float, slo: SLO) -> dict:
    done = [r for r in results if r.ok]

    def ms(values):
        d = stats.describe([v * 1000 for v in values if v is not None])
        return {k: (round(d[k], 2) if d[k] is not None else None) for k in ("mean", "p50", "p90", "p99")}

    out_tokens = sum(r.output_tokens for r in done)
    return {
        "completed": len(done),
        "failed": len(results) - len(done),
        "errors": sorted({r.error for r in results if not r.ok})[:5],
        "duration_s": round(duration_s, 3),
        "input_tokens": sum(r.input_tokens for r in done),
        "output_tokens": out_tokens,
        "ttft_ms": ms(r.ttft_s for r in done),
        "tpot_ms": ms(r.tpot_s for r in done),
        "itl_ms": ms(gap for r in done for gap in r.itl_s),
        "e2e_ms": ms(r.e2e_s for r in done),
        "req_s": round(len(done) / duration_s, 4),
        "output_tok_s": round(out_tokens / duration_s, 3),
        "goodput_req_s": round(sum(slo.met(r) for r in done) / duration_s, 4),
        "met_slo": sum(slo.met(r) for r in done),
        "token_check": token_check(done),
        # per request, in the order they finished: for latency CDFs (plots.latency_cdf)
        "samples": {
            "ttft_ms": [round(r.ttft_s * 1000, 2) for r in done],
            "tpot_ms": [round(r.tpot_s * 1000, 2) for r in done if r.tpot_s is not None],
            "e2e_ms": [round(r.e2e_s * 1000, 2) for r in done],
        },
    }


def token_check(done: list[RequestResult]) -> dict:
    """The client's counts against the server's usage, per request: prompt tokens sent, output tokens asked for
    (exact with ignore_eos), and streamed chunks (when each carries one token, ITL is per token as in vLLM's)."""
    return {
        "requests": len(done),
        "prompt_differs": sum(r.sent_tokens not in (0, r.input_tokens) for r in done),
        "output_differs": sum(r.asked_tokens != r.output_tokens for r in done),
        "chunks_differ": sum(r.chunks != r.output_tokens for r in done),
    }


def repeat_ci(runs: list[dict], confidence: float = 0.95) -> dict:
    """Each median (and output throughput, and goodput) over the repeated runs: mean, a t interval, every run's
    value."""
    out = {}
    for metric in (*METRICS, "output_tok_s", "goodput_req_s"):
        values = [r[metric]["p50"] if metric in METRICS else r[metric] for r in runs]
        values = [v for v in values if v is not None]
        low, high = stats.mean_interval(values, confidence)
        out[metric] = {
            "mean": round(sum(values) / len(values), 3) if values else None,
            "ci_low": None if low is None else round(low, 3),
            "ci_high": None if high is None else round(high, 3),
            "runs": values,
        }
    return out


def load_label(level: dict) -> str:
    """'concurrency 4' or 'rate 2.0/s'."""
    return f"concurrency {level['concurrency']}" if level["concurrency"] else f"rate {level['request_rate']}/s"


class BenchReport(Exportable, dict):
    """bench.run's result: a plain dict (its JSON as it is: server, workload, slo, levels), which prints as a
    table, saves as JSON, CSV (one row per load level) and Markdown, and which plots.latency_cdf and
    plots.throughput_curve draw."""

    def as_dict(self) -> dict:
        return dict(self)

    def to_markdown(self) -> str:
        s = self["server"]
        rows = [
            "| load | done | failed | TTFT p50 | TTFT p99 | TPOT p50 | ITL p50 | e2e p50 | req/s | tok/s | goodput |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for lv in self["levels"]:
            m = lambda k, q: "—" if lv[k][q] is None else f"{lv[k][q]:.0f}"  # noqa: E731
            rows.append(
                f"| {load_label(lv)} | {lv['completed']} | {lv['failed']} | {m('ttft_ms', 'p50')} | "
                f"{m('ttft_ms', 'p99')} | {m('tpot_ms', 'p50')} | {m('itl_ms', 'p50')} | {m('e2e_ms', 'p50')} | "
                f"{lv['req_s']:.2f} | {lv['output_tok_s']:.1f} | {lv['goodput_req_s']:.2f} |"
            )
        where = f"\n\nCPUs: {self['placement']['note']}" if self.get("placement") else ""
        return (
            f"**{s['model']}** · vLLM {s['vllm_version'] or '?'} · {s['device']} · bound: {s['bound']}\n\n"
            + "\n".join(rows)
            + "\n\n(milliseconds; goodput: requests/s that met every SLO given)"
            + where
        )

    def csv_rows(self) -> tuple[list[str], list[list]]:
        header = [
            "concurrency",
            "request_rate",
            *_COLUMNS,
            *[f"{m}_{q}" for m in METRICS for q in ("mean", "p50", "p90", "p99")],
        ]
        rows = [
            [
                lv["concurrency"],
                lv["request_rate"],
                *[lv[c] for c in _COLUMNS],
                *[lv[m][q] for m in METRICS for q in ("mean", "p50", "p90", "p99")],
            ]
            for lv in self["levels"]
        ]
        return header, rows

    def to_text(self) -> str:
        """The table `workbench bench` prints."""
        s, w = self["server"], self["workload"]
        lines = [
            f"{s['model']} · vLLM {s['vllm_version'] or '?'} · {s['device']} · max_model_len {s['max_model_len']}",
            f"{w['num_prompts']} prompts ({w.get('prompts') or w['dataset']}), {w['input_len']} in / {w['output_len']} out "
            f"tokens; bound: {s['bound']}",
            f"{'load':<16} {'done':>5} {'fail':>5} {'TTFT p50':>9} {'p99':>8} {'TPOT p50':>9} {'p99':>8} "
            f"{'ITL p50':>8} {'e2e p50':>8} {'req/s':>7} {'tok/s':>8} {'goodput':>8}",
        ]
        for lv in self["levels"]:
            f = lambda m, q: "—" if lv[m][q] is None else f"{lv[m][q]:.0f}"  # noqa: E731
            lines.append(
                f"{load_label(lv):<16} {lv['completed']:>5} {lv['failed']:>5} {f('ttft_ms', 'p50'):>9} "
                f"{f('ttft_ms', 'p99'):>8} {f('tpot_ms', 'p50'):>9} {f('tpot_ms', 'p99'):>8} "
                f"{f('itl_ms', 'p50'):>8} {f('e2e_ms', 'p50'):>8} {lv['req_s']:>7.2f} {lv['output_tok_s']:>8.1f} "
                f"{lv['goodput_req_s']:>8.2f}"
            )
            if lv["errors"]:
                lines.append(f"  failed: {'; '.join(lv['errors'])}")
            ci = lv.get("repeat_ci")
            if ci:
                parts = [
                    f"{name} {ci[key]['mean']:.1f} ({ci[key]['ci_low']:.1f}–{ci[key]['ci_high']:.1f})"
                    for key, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("output_tok_s", "tok/s"))
                    if ci[key]["ci_low"] is not None
                ]
                lines.append(
                    f"  over {len(ci['ttft_ms']['runs'])} runs, mean of the medians (95 % t interval): "
                    + ", ".join(parts)
                )
            check = lv.get("token_check") or {}
            if any(v for k, v in check.items() if k != "requests"):
                lines.append(f"  token counts differ from the server's usage: {check}")
        if self.get("placement"):
            lines.append(f"CPUs: {self['placement']['note']}")
        slo = self["slo"]
        lines.append(
            "(milliseconds; goodput: requests/s that met every SLO given"
            + (f": TTFT ≤ {slo['ttft_ms']:g} ms" if slo["ttft_ms"] else "")
            + (f", TPOT ≤ {slo['tpot_ms']:g} ms" if slo["tpot_ms"] else "")
            + ")"
        )
        return "\n".join(lines)
