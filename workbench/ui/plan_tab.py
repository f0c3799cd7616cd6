"""Plan tab: the planner's inputs, a stacked bar of the GPU's memory, the concurrency-vs-context
curve and the `vllm serve` command. The numbers are the CLI's: both call memory.plan."""

import gradio as gr

from workbench import hardware, memory, models, plots
from workbench.ui.handlers import filled, shows_errors

_LENGTHS = [2048, 4096, 8192, 16384, 24576, 32768, 40960, 65536, 131072]


def run_plan(model, gpu_name, quant, group_size, max_model_len, gmu, kv_dtype, tp, pp, batched, num_seqs,
             version, weights_gib):
    """One call to the planner, formatted for the tab."""
    spec = models.find_model(model)
    gpu = hardware.find_gpu(gpu_name)
    max_model_len = int(filled(max_model_len, 32768))
    settings = memory.ServeSettings(
        max_model_len=max_model_len, gpu_memory_utilization=float(gmu) if gmu else None,
        kv_cache_dtype=kv_dtype, tensor_parallel_size=int(filled(tp, 1)), pipeline_parallel_size=int(filled(pp, 1)),
        max_num_batched_tokens=int(batched) if batched else None, max_num_seqs=int(filled(num_seqs, 256)),
        vllm_version=version or "0.33.0",
    )
    weights = float(weights_gib) if weights_gib else None
    group_size = int(filled(group_size, 128))
    plan = memory.plan(spec, gpu, quant, settings, group_size, weights)
    limit = spec.max_position_embeddings or max(_LENGTHS)
    rows = memory.sweep_context(spec, gpu, quant, settings, [n for n in _LENGTHS if n <= limit], group_size, weights)
    return plan.to_markdown(), plots.memory_bar(plan, gpu), plots.concurrency_curve(rows, spec.name, gpu.name), \
        " ".join(plan.vllm_args), plan.as_dict()


def build_plan_tab(ctx) -> None:
    with gr.Tab("Plan"):
        gr.Markdown("Will it fit, with which flags, for how many users? The planner follows vLLM's own arithmetic.")
        with gr.Row():
            model = gr.Dropdown(list(models.CATALOG), value="Qwen3-14B", label="Model (or a folder path)",
                                allow_custom_value=True)
            gpu = gr.Dropdown(list(hardware.GPU_CATALOG), value="RTX 3090", label="GPU")
            quant = gr.Dropdown(list(memory.QUANT_FORMATS), value="gptq-int4", label="Weights")
            group_size = gr.Number(128, label="Group size", precision=0)
        with gr.Row():
            max_model_len = gr.Number(32768, label="max_model_len", precision=0)
            gmu = gr.Number(None, label="gpu_memory_utilization (0 or empty: vLLM default)")
            kv_dtype = gr.Dropdown(["auto", "fp8"], value="auto", label="KV cache dtype")
            tp = gr.Number(1, label="Tensor parallel", precision=0)
            pp = gr.Number(1, label="Pipeline parallel", precision=0)
        with gr.Row():
            batched = gr.Number(None, label="max_num_batched_tokens (0 or empty: default)", precision=0)
            num_seqs = gr.Number(256, label="max_num_seqs", precision=0)
            version = gr.Textbox("0.33.0", label="vLLM version")
            weights_gib = gr.Number(None, label="Measured weights GiB (0 or empty: computed)")
        go = gr.Button("Plan", variant="primary")
        summary = gr.Markdown()
        bar = gr.Plot(label="Memory on one GPU")
        curve = gr.Plot(label="Concurrency vs context")
        command = gr.Textbox(label="vllm serve command", buttons=["copy"], elem_id="plan-command")
        raw = gr.JSON(label="Plan as JSON (same as `workbench plan --json`)")

        @shows_errors
        def on_plan(*values):
            return run_plan(*values)

        inputs = [model, gpu, quant, group_size, max_model_len, gmu, kv_dtype, tp, pp, batched, num_seqs, version,
                  weights_gib]
        go.click(on_plan, inputs=inputs, outputs=[summary, bar, curve, command, raw], api_name="plan")
