"""Quantize tab: GPTQ or RTN in the background with progress and cancel; then serve the checkpoint
and measure it against the original through the real engine."""

from pathlib import Path

import gradio as gr

from workbench.quantization import quality, quantize
from workbench.serving import gpu_lease, models
from workbench.serving.client import DEFAULT_SYSTEM_PROMPT
from workbench.ui.context import AppContext
from workbench.ui.handlers import shows_errors
from workbench.ui.jobs import Job
from workbench.ui.notice import build_engine_notice


def _status(job: Job | None) -> str:
    if job is None:
        return "no run yet"
    if job.cancel.is_set() and not job.running:
        return "cancelled: nothing was written"
    if job.error:
        return f"failed: {job.error.splitlines()[0]}"
    p = job.progress
    if job.running:
        if p is not None and p.stage.startswith("downloading"):
            return f"{job.kind}: {p.stage}"
        if p is None or not p.layer:
            return f"{job.kind}: loading the model and calibration data ..."
        eta = f", about {p.eta_s:.0f} s left" if p.eta_s is not None else ""
        return f"{job.kind}: layer {p.layer} of {p.layers} ({p.fraction:.0%}){eta}"
    if job.result is not None:
        if job.kind == "quantize":
            r = job.result
            return f"done in {r.seconds:.0f} s: {r.out} ({r.source_bytes / 1e6:.0f} MB -> {r.out_bytes / 1e6:.0f} MB)"
        return "quality report done"
    return "cancelled" if job.cancel.is_set() else "finished"


def _report_rows(rows: list[dict]) -> list[list]:
    return [
        [r["name"], r["ppl"], r["ppl_increase"], r["exact_match"], r["size_mb"], r["linear_kernel"] or "dense"]
        for r in rows
    ]


def build_quantize_tab(ctx: AppContext) -> None:
    with gr.Tab("Quantize"):
        build_engine_notice(
            ctx, "serves the checkpoint and measures it through the engine (quantizing needs no engine)"
        )
        gr.Markdown(
            "Quantize with GPTQ (GPTQModel) or round-to-nearest, then serve the result and compare it with "
            "the original through vLLM. The group size must divide every layer's input width: "
            "the bundled model (576 wide) takes 64 or 32, Qwen3-14B takes 128. Every setting is checked "
            "by vLLM's own GPTQ config validation before the run."
        )
        with gr.Row():
            model = gr.Textbox(models.BUNDLED_MODEL, label="Model (name or folder)")
            method = gr.Radio(["gptq", "rtn"], value="gptq", label="Method")
            bits = gr.Radio([4, 8], value=4, label="Bits")
            group_size = gr.Number(
                0, label="Group size (0: 128 where the widths allow, else the largest valid)", precision=0
            )
        with gr.Row():
            samples = gr.Number(32, label="Calibration samples", precision=0)
            seq_len = gr.Number(512, label="Tokens per sample", precision=0)
            act_group_aware = gr.Checkbox(True, label="static activation order (act_group_aware; vLLM serves it)")
            desc_act = gr.Checkbox(False, label="act-order (desc_act; vLLM 0.32 refuses it, checked first)")
            out = gr.Textbox("", label="Output folder (empty: under the cache)")
        with gr.Row():
            start = gr.Button("Quantize", variant="primary")
            cancel = gr.Button("Cancel", variant="stop")
            serve = gr.Button("Serve this checkpoint")
            report = gr.Button("Quality report (original vs this)")
        status = gr.Textbox(label="Status", interactive=False)
        table = gr.Dataframe(
            headers=["checkpoint", "perplexity", "Δ perplexity", "exact match", "MB", "kernel"],
            label="Quality through the served engine",
        )
        job_id = gr.State(None)
        report_id = gr.State(None)

        @shows_errors
        def on_start(model, method, bits, group_size, samples, seq_len, desc_act, out, act_group_aware=True):
            running = [j for j in ctx.jobs.jobs.values() if j.kind == "quantize" and j.running]
            if running:
                raise gr.Error(
                    "A quantization is already running on this machine (it uses every core); wait for "
                    "it to finish or be cancelled, then start yours."
                )
            s = quantize.QuantizeSettings.given(
                method=method,
                bits=bits,
                group_size=group_size,
                samples=samples,
                seq_len=seq_len,
                desc_act=desc_act,
                act_group_aware=act_group_aware,
            )
            target = str(quantize.target(model, s, out))
            job = ctx.jobs.add(Job("quantize"))
            job.run(
                quantize.quantize,
                model,
                target,
                s,
                on_progress=lambda p: setattr(job, "progress", p),
                cancel=job.cancel,
            )
            return job.id, _status(job), target

        @shows_errors
        def on_cancel(job_id):
            job = ctx.jobs.get(job_id)
            if job is not None:
                job.cancel.set()
            return _status(job)

        @shows_errors
        def on_poll(job_id, report_id):
            job, rep = ctx.jobs.get(job_id), ctx.jobs.get(report_id)
            text = _status(job)
            if rep is not None:
                text += " · quality report: " + (
                    "running (serving each checkpoint in turn) ..." if rep.running else (rep.error or "done")
                )
                if ctx.aside_for:
                    text += f" · app engine {ctx.status()}"
            rows = _report_rows(rep.result) if rep is not None and rep.result else None
            return text, rows

        def finished_checkpoint(job_id) -> str:
            job = ctx.jobs.get(job_id)
            if job is None or job.result is None:
                raise gr.Error("No finished checkpoint yet: run Quantize first and wait for 'done'.")
            return str(job.result.out)

        @shows_errors
        def on_serve(job_id):
            ctx.serve(finished_checkpoint(job_id))
            return f"serving {Path(finished_checkpoint(job_id)).name}: see the Engine tab ({ctx.status()})"

        @shows_errors
        def on_report(job_id, model):
            folder = finished_checkpoint(job_id)
            checkpoints = {"original": model, Path(folder).name: folder}
            rep = ctx.jobs.add(Job("report"))
            # one engine per GPU: the app's engine is set aside while the report serves each checkpoint, then back
            rep.run(
                gpu_lease.run_borrowing,
                "the quality report ends",
                quality.quality_report,
                checkpoints,
                quality.eval_text(),
                DEFAULT_SYSTEM_PROMPT,
            )
            return rep.id

        start.click(
            on_start,
            [model, method, bits, group_size, samples, seq_len, desc_act, out, act_group_aware],
            [job_id, status, out],
            api_name="quantize_start",
        )
        cancel.click(on_cancel, [job_id], [status], api_name="quantize_cancel")
        serve.click(on_serve, [job_id], [status], api_name="quantize_serve")
        report.click(on_report, [job_id, model], [report_id], api_name="quantize_report")
        gr.Timer(2.0).tick(
            on_poll, [job_id, report_id], [status, table], api_name="quantize_poll", show_progress="hidden"
        )
