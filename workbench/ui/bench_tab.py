"""Benchmark tab: the serving benchmark of `workbench bench` against the running engine, with live
progress, a latency CDF, throughput and goodput against concurrency, JSON/CSV export, and whether the app
(the load generator) and the engine share CPUs, with the CPUs to pin the app to."""

import tempfile

import gradio as gr

from workbench import plots
from workbench.measurement import bench, bench_report
from workbench.ui.context import AppContext
from workbench.ui.handlers import HEAVY, filled, shows_errors
from workbench.ui.jobs import relay, stream_pieces
from workbench.ui.notice import build_engine_notice

_HEADERS = [
    "load",
    "done",
    "failed",
    "TTFT p50",
    "TTFT p99",
    "TPOT p50",
    "TPOT p99",
    "ITL p50",
    "e2e p50",
    "req/s",
    "output tok/s",
    "goodput req/s",
]


def _rows(report: dict) -> list[list]:
    return [
        [
            lv["load"],
            lv["completed"],
            lv["failed"],
            lv["ttft_ms"]["p50"],
            lv["ttft_ms"]["p99"],
            lv["tpot_ms"]["p50"],
            lv["tpot_ms"]["p99"],
            lv["itl_ms"]["p50"],
            lv["e2e_ms"]["p50"],
            lv["req_s"],
            lv["output_tok_s"],
            lv["goodput_req_s"],
        ]
        for lv in report["levels"]
    ]


def _slo(text: str, what: str) -> float | None:
    return bench.parse_duration_ms(text, what) if text and text.strip() else None


def _summary(report: dict) -> str:
    s, slo = report["server"], report["slo"]
    goals = ", ".join(
        g
        for g in (
            f"TTFT ≤ {slo['ttft_ms']:g} ms" if slo["ttft_ms"] else "",
            f"TPOT ≤ {slo['tpot_ms']:g} ms" if slo["tpot_ms"] else "",
        )
        if g
    )
    lines = [
        f"**{s['model']}** · vLLM {s['vllm_version'] or '?'} · {s['device']} · max_model_len {s['max_model_len']:,}",
        f"Bound: {s['bound']}",
        f"Goodput counts the requests per second that met {goals or 'every SLO (none given: all completed)'}.",
    ]
    if report.get("placement"):
        lines.append(f"CPUs: {report['placement']['note']}.")
    for lv in report["levels"]:
        lines.append(
            f"- {lv['load']}: {lv['met_slo']} of {lv['completed']} completed requests met the SLOs"
            + (f"; {lv['failed']} failed ({'; '.join(lv['errors'])})" if lv["failed"] else "")
        )
    head = 4 if report.get("placement") else 3
    return "\n\n".join(lines[:head]) + "\n\n" + "\n".join(lines[head:])


def build_bench_tab(ctx: AppContext) -> None:
    with gr.Tab("Benchmark"):
        build_engine_notice(ctx, "sends the benchmark's requests to the engine")
        gr.Markdown(
            "Measure the engine the way `vllm bench serve` does: streamed requests with exact input and "
            "output lengths. **TTFT**: time to the first token; **TPOT**: time per output token after the "
            "first; **ITL**: the gaps between tokens; **goodput**: requests per second that met your SLOs. "
            "Empty number fields take their defaults; SLOs need a unit (`2s`, `100ms`)."
        )
        with gr.Row():
            concurrency = gr.Textbox("1,2,4", label="Concurrency levels", elem_id="bench-concurrency")
            num_prompts = gr.Number(8, label="Prompts per level", precision=0)
            input_len = gr.Number(128, label="Input tokens", precision=0)
            output_len = gr.Number(32, label="Output tokens", precision=0)
            dataset = gr.Radio(list(bench.DATASETS), value="random", label="Prompts")
        with gr.Row():
            slo_ttft = gr.Textbox("2s", label="SLO: TTFT at most (empty: none)")
            slo_tpot = gr.Textbox("100ms", label="SLO: TPOT at most (empty: none)")
            client_cpus = gr.Textbox(
                "",
                label="Client CPUs: pin this app to them, apart from the engine's (e.g. 0; empty: as it runs)",
                elem_id="bench-client-cpus",
            )
            run = gr.Button("Run benchmark", variant="primary")
        status = gr.Markdown("_no run yet_", elem_id="bench-status")
        table = gr.Dataframe(headers=_HEADERS, label="Per load level (milliseconds)", elem_id="bench-table")
        cdf = gr.Plot(label="Latency CDF")
        curve = gr.Plot(label="Throughput and goodput vs concurrency")
        with gr.Row():
            export_json = gr.File(label="Export JSON")
            export_csv = gr.File(label="Export CSV")

        @shows_errors
        def on_run(concurrency, num_prompts, input_len, output_len, dataset, slo_ttft, slo_tpot, client_cpus=""):
            levels = bench.parse_concurrency(concurrency or "1")
            workload = bench.Workload(
                int(filled(num_prompts, 8)),
                int(filled(input_len, 128)),
                int(filled(output_len, 32)),
                dataset or "random",
            )
            slo = bench_report.SLO(_slo(slo_ttft, "SLO TTFT"), _slo(slo_tpot, "SLO TPOT"))
            url = ctx.base_url()
            engine = ctx.engine
            server_pid = engine.process.pid if engine is not None and engine.owned else None  # else found by port
            yield "starting: tokenizing the prompts ...", None, None, None, None, None
            updates = stream_pieces(
                lambda on_text: bench.run(
                    url,
                    workload,
                    concurrency=levels,
                    slo=slo,
                    on_progress=lambda p: on_text(str(p)),
                    client_cpus=(client_cpus or "").strip() or None,
                    server_pid=server_pid,
                )
            )
            report = yield from relay(updates, lambda text: (f"running: {text}", *[gr.skip()] * 5))
            files = report.save(tempfile.mkdtemp(prefix="bench-"), "bench")
            yield (
                f"done: {len(report['levels'])} load level(s)\n\n{_summary(report)}",
                _rows(report),
                plots.latency_cdf(report),
                plots.throughput_curve(report),
                str(files["json"]),
                str(files["csv"]),
            )

        run.click(
            on_run,
            [concurrency, num_prompts, input_len, output_len, dataset, slo_ttft, slo_tpot, client_cpus],
            [status, table, cdf, curve, export_json, export_csv],
            api_name="bench_run",
            **HEAVY,
        )
