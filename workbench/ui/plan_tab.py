"""Plan tab: the planner's inputs, a stacked bar of the GPU's memory, the concurrency-vs-context
curve and the `vllm serve` command. The numbers are the CLI's: both make one planner.plan request."""

import gradio as gr

from workbench import planner, plots, reference
from workbench.serving import hardware, model_catalog
from workbench.ui.handlers import filled, shows_errors


def run_plan(
    model,
    gpu_name,
    quant,
    group_size,
    max_model_len,
    gmu,
    kv_dtype,
    tp,
    pp,
    batched,
    num_seqs,
    version,
    weights_gib,
    gpu_total_gib=None,
    log_text="",
    log_file=None,
):
    """One planner call (planner.plan), formatted for the tab; a pasted or uploaded start-up log calibrates it,
    as `workbench plan --calibrate-from LOG` does."""
    settings = planner.ServeSettings(
        max_model_len=int(filled(max_model_len, reference.MAX_MODEL_LEN)),
        gpu_memory_utilization=float(gmu) if gmu else None,
        kv_cache_dtype=kv_dtype,
        tensor_parallel_size=int(filled(tp, 1)),
        pipeline_parallel_size=int(filled(pp, 1)),
        max_num_batched_tokens=int(batched) if batched else None,
        max_num_seqs=int(num_seqs) if num_seqs else None,
    )
    log_path = (log_file if isinstance(log_file, str) else log_file.name) if log_file else None
    answer = planner.plan(
        planner.PlanRequest(
            model=model,
            gpu=gpu_name,
            gpu_total_gib=float(gpu_total_gib) if gpu_total_gib else None,
            quant=quant,
            group_size=int(filled(group_size, 128)),
            settings=settings,
            vllm_version=version or None,
            weights_gib=float(weights_gib) if weights_gib else None,
            log_path=log_path,
            log_text=log_text or None,
            log_source="the uploaded log" if log_path else "the pasted log",
            curve=True,
        )
    )
    if isinstance(answer, planner.CpuAnswer):  # a CPU-build log: the KV cache is the space set, so no bar or curve
        return answer.to_markdown(), None, None, answer.command, answer.as_dict()
    return (
        answer.to_markdown(),
        plots.memory_bar(answer.plan, answer.gpu),
        plots.concurrency_curve(list(answer.curve), answer.spec.name, answer.gpu.name),
        answer.command,
        answer.as_dict(),
    )


def build_plan_tab(ctx) -> None:
    with gr.Tab("Plan"):
        gr.Markdown("Will it fit, with which flags, for how many users? The planner follows vLLM's own arithmetic.")
        with gr.Row():
            model = gr.Dropdown(
                list(model_catalog.CATALOG),
                value=reference.MODEL,
                label="Model (or a folder path)",
                allow_custom_value=True,
            )
            gpu = gr.Dropdown(
                list(hardware.GPU_CATALOG),
                value=reference.GPU,
                label="GPU (or type another card's name)",
                allow_custom_value=True,
            )
            quant = gr.Dropdown(list(planner.QUANT_FORMATS), value=reference.QUANT, label="Weights")
            group_size = gr.Number(reference.GROUP_SIZE, label="Group size", precision=0)
        with gr.Row():
            max_model_len = gr.Number(reference.MAX_MODEL_LEN, label="max_model_len", precision=0)
            gmu = gr.Number(None, label="gpu_memory_utilization (0 or empty: vLLM default)")
            kv_dtype = gr.Dropdown(["auto", "fp8"], value="auto", label="KV cache dtype")
            tp = gr.Number(1, label="Tensor parallel", precision=0)
            pp = gr.Number(1, label="Pipeline parallel", precision=0)
        with gr.Row():
            batched = gr.Number(None, label="max_num_batched_tokens (0 or empty: default)", precision=0)
            num_seqs = gr.Number(None, label="max_num_seqs (0 or empty: default)", precision=0)
            version = gr.Textbox(
                "", label="vLLM version", placeholder=f"empty: the log's, else {planner.DEFAULT_VLLM_VERSION}"
            )
            weights_gib = gr.Number(None, label="Measured weights GiB (0 or empty: computed)")
            gpu_total = gr.Number(None, label="GPU memory GiB as CUDA reports it (for a card not in the list)")
        with gr.Accordion("Calibrate from your own vLLM start-up log", open=False):
            gr.Markdown(
                "Paste the log of a `vllm serve` start on your machine, or upload it: the planner fits its "
                "overheads to it and plans the settings above (another context, model or quantization)."
            )
            with gr.Row():
                log_text = gr.Textbox(label="Start-up log (paste)", lines=6, max_lines=12, elem_id="plan-log")
                log_file = gr.File(label="…or upload it", file_types=[".log", ".txt"], type="filepath")
        go = gr.Button("Plan", variant="primary")
        summary = gr.Markdown()
        bar = gr.Plot(label="Memory on one GPU")
        curve = gr.Plot(label="Concurrency vs context")
        command = gr.Textbox(label="vllm serve command", buttons=["copy"], elem_id="plan-command")
        raw = gr.JSON(label="Plan as JSON (same as `workbench plan --json`)")

        @shows_errors
        def on_plan(*values):
            return run_plan(*values)

        inputs = [
            model,
            gpu,
            quant,
            group_size,
            max_model_len,
            gmu,
            kv_dtype,
            tp,
            pp,
            batched,
            num_seqs,
            version,
            weights_gib,
            gpu_total,
            log_text,
            log_file,
        ]
        go.click(on_plan, inputs=inputs, outputs=[summary, bar, curve, command, raw], api_name="plan")
